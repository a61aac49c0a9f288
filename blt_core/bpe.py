"""Byte-pair encoding as OpenAI's tiktoken does it, so BLT patches can be set beside the tokens
of real, widely used vocabularies: GPT-2 (r50k_base), GPT-4 (cl100k_base), GPT-4o (o200k_base).

    enc = bpe.encoding("cl100k_base")
    tokens = enc.encode("Bytes, not tokens.")      # Tokens(ids, starts, lengths): byte spans

The vocabularies are tiktoken's own files (MIT), shipped xz-compressed in `blt_core/bpe_vocab/`
and checked against the sha256 that tiktoken pins for them when they load, so nothing is
downloaded. Encoding is tiktoken's `encode_ordinary` (special-token text such as
"<|endoftext|>" is plain text): the text is split into pieces by the vocabulary's regular
expression, then each piece's bytes are merged pairwise, lowest rank first (leftmost among
equal ranks), until no adjacent pair is in the vocabulary. A heap keeps a piece of n bytes
O(n log n) (a 1 MB run of one letter is one piece). tests/test_bpe.py checks the ids against
tiktoken itself on a corpus of texts.

The expressions are tiktoken's, written for Rust's regex crate; `python_pattern` translates
them for Python's `re`: \\p{..} classes are built from `unicodedata` (Python 3.11: Unicode 14,
so letters first assigned in a later Unicode version count as symbols here), \\s is Unicode's
White_Space list, and `$` is the end of the text.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import lzma
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

VOCAB_DIR = Path(__file__).parent / "bpe_vocab"

# tiktoken_ext/openai_public.py (tiktoken 0.14), pattern strings as written there
_R50K = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|"""
           r"""\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


@dataclass(frozen=True)
class Vocabulary:
    name: str
    label: str              # the models that use it
    pattern: str            # tiktoken's pre-tokenizer expression (Rust regex syntax)
    sha256: str             # of the uncompressed .tiktoken file, as tiktoken pins it
    n_tokens: int           # mergeable tokens (special tokens not counted)


VOCABULARIES = {v.name: v for v in [
    Vocabulary("r50k_base", "GPT-2, GPT-3", _R50K,
               "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930", 50_256),
    Vocabulary("cl100k_base", "GPT-4, GPT-3.5", _CL100K,
               "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", 100_256),
    Vocabulary("o200k_base", "GPT-4o", _O200K,
               "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", 199_998),
]}

# Unicode's White_Space property (what \s means in Rust's regex crate; Python's \s also takes
# the C0 separators U+001C..U+001F)
WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
CATEGORIES = ("L", "Lu", "Ll", "Lt", "Lm", "Lo", "M", "N")


@functools.cache
def _category_classes() -> dict[str, str]:
    """{category: the body of a character class of its code points}, e.g. 'L' -> 'A-Za-z...'."""
    members: dict[str, list[int]] = {c: [] for c in CATEGORIES}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] in "LMN":
            members[cat[0]].append(cp)
            if cat in members:
                members[cat].append(cp)
    return {c: _ranges(cps) for c, cps in members.items()}


def _ranges(cps: list[int]) -> str:
    out, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        out.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "".join(out)


def python_pattern(pattern: str) -> str:
    """A tiktoken (Rust regex) pre-tokenizer expression as a Python `re` expression: \\p{X}, \\s
    and \\S spelled out as classes (inside a [...] as their members), `$` as \\Z."""
    classes = _category_classes()
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1]
            if nxt == "p":
                name = pattern[i + 3:pattern.index("}", i)]
                body = classes[name]
                out.append(body if in_class else f"[{body}]")
                i = pattern.index("}", i) + 1
                continue
            if nxt == "s":
                out.append(WHITE_SPACE if in_class else f"[{WHITE_SPACE}]")
            elif nxt == "S":
                if in_class:
                    raise ValueError("\\S inside a character class is not supported")
                out.append(f"[^{WHITE_SPACE}]")
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ch == "$" and not in_class:
            ch = r"\Z"
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Tokens:
    """A text's tokens: ids, and each token's byte span in the text's UTF-8 encoding."""
    ids: list[int]
    starts: list[int]
    lengths: list[int]


class Encoding:
    """One vocabulary: `ranks` maps each token's bytes to its id (= its merge rank)."""

    CACHED_PIECE_BYTES = 32        # short pieces recur (words): their merges are memoized

    def __init__(self, vocab: Vocabulary, ranks: dict[bytes, int]):
        self.vocab, self.ranks = vocab, ranks
        self.name = vocab.name
        self.splitter = re.compile(python_pattern(vocab.pattern))
        self._piece_cache: dict[bytes, tuple[int, ...]] = {}

    def encode(self, text: str) -> Tokens:
        ids, starts, lengths, offset = [], [], [], 0
        for match in self.splitter.finditer(text):
            piece, at = match.group().encode("utf-8"), 0
            for size in self._merge(piece):
                ids.append(self.ranks[piece[at:at + size]])
                starts.append(offset + at)
                lengths.append(size)
                at += size
            offset += at
        if offset != len(text.encode("utf-8")):      # the expression left a gap (never for these three)
            raise VocabularyError(f"{self.name}: the pre-tokenizer covered {offset} of the text's bytes")
        return Tokens(ids, starts, lengths)

    def count(self, text: str) -> int:
        return sum(len(self._merge(m.group().encode("utf-8"))) for m in self.splitter.finditer(text))

    def _merge(self, piece: bytes) -> tuple[int, ...]:
        """The byte lengths of the tokens the piece becomes."""
        if piece in self.ranks:
            return (len(piece),)
        if len(piece) <= self.CACHED_PIECE_BYTES:
            cached = self._piece_cache.get(piece)
            if cached is None:
                if len(self._piece_cache) > 200_000:      # bound the memo on adversarial input
                    self._piece_cache.clear()
                cached = self._piece_cache[piece] = byte_pair_merge(piece, self.ranks)
            return cached
        return byte_pair_merge(piece, self.ranks)


def byte_pair_merge(piece: bytes, ranks: dict[bytes, int]) -> tuple[int, ...]:
    """Merge adjacent parts of `piece` (one byte each to start), always the pair whose joined
    bytes have the lowest rank, leftmost among equal ranks, until no adjacent pair is a token.
    Returns the parts' byte lengths. Parts are a linked list by start offset (`end[i]`: where
    the part starting at i ends); the heap holds candidate pairs, checked when popped."""
    n = len(piece)
    end = list(range(1, n + 1))
    alive = [True] * n
    prev = list(range(-1, n - 1))
    heap = [(ranks[piece[i:i + 2]], i, i + 2) for i in range(n - 1) if piece[i:i + 2] in ranks]
    heapq.heapify(heap)
    while heap:
        _, i, pair_end = heapq.heappop(heap)
        j = end[i] if alive[i] else n
        if j >= n or end[j] != pair_end:
            continue                                        # stale: a part changed since
        end[i], alive[j] = pair_end, False                  # merge part j into part i
        if pair_end < n:
            prev[pair_end] = i
            _push(heap, piece, ranks, i, end[pair_end])
        if prev[i] >= 0:
            _push(heap, piece, ranks, prev[i], pair_end)
    lengths, i = [], 0
    while i < n:
        lengths.append(end[i] - i)
        i = end[i]
    return tuple(lengths)


def _push(heap, piece, ranks, start, stop):
    rank = ranks.get(piece[start:stop])
    if rank is not None:
        heapq.heappush(heap, (rank, start, stop))


class VocabularyError(RuntimeError):
    pass


def load_ranks(vocab: Vocabulary, directory: Path = VOCAB_DIR) -> dict[bytes, int]:
    """The vocabulary's .tiktoken file ('<base64 token> <rank>' per line), checked against the
    sha256 tiktoken pins, as {token bytes: rank}."""
    path = directory / f"{vocab.name}.tiktoken.xz"
    try:
        raw = lzma.decompress(path.read_bytes())
    except (OSError, lzma.LZMAError) as err:
        raise VocabularyError(f"cannot read vocabulary {vocab.name} from {path}: {err}") from None
    found = hashlib.sha256(raw).hexdigest()
    if found != vocab.sha256:
        raise VocabularyError(f"{path} is not tiktoken's {vocab.name}: sha256 {found}, expected {vocab.sha256}")
    ranks = {}
    for line in raw.splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    if len(ranks) != vocab.n_tokens:
        raise VocabularyError(f"{vocab.name}: {len(ranks)} tokens, expected {vocab.n_tokens}")
    return ranks


@functools.cache
def encoding(name: str) -> Encoding:
    """The named vocabulary's encoder, loaded once (0.1-0.5 s; 10-40 MB of Python objects)."""
    if name not in VOCABULARIES:
        raise ValueError(f"unknown tokenizer {name!r}; known: {', '.join(VOCABULARIES)}")
    vocab = VOCABULARIES[name]
    return Encoding(vocab, load_ranks(vocab))


def load_all() -> None:
    """Load every vocabulary now (a server's worker does at its start, so no request waits)."""
    for name in VOCABULARIES:
        encoding(name)
