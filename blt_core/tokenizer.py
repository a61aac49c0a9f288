"""Byte tokenizer: text <-> byte ids, the BLT way.

Ids 0..3 are special, bytes b = 0..255 become b + 4 (vocabulary 260), as in Meta's BLT and
transformers' `BltTokenizer`:

    0 BOE  begin-of-example filler (left padding of hash n-gram windows)
    1 BOS  begin of sequence
    2 EOS  end of sequence
    3 PAD  padding (transformers' pad id; Meta's optional BPE delimiter)

Text is encoded as UTF-8 without normalisation. Decoding never raises: special ids are dropped
and invalid UTF-8 becomes U+FFFD.
"""
from __future__ import annotations

BOE_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
SPECIAL_NAMES = ("boe", "bos", "eos", "pad")     # by id
OFFSET = 4
VOCAB_SIZE = 256 + OFFSET


class ByteTokenizer:
    boe_id, bos_id, eos_id, pad_id = BOE_ID, BOS_ID, EOS_ID, PAD_ID
    offset = OFFSET
    vocab_size = VOCAB_SIZE

    def __init__(self, add_bos: bool = True, add_eos: bool = False):
        self.add_bos = add_bos
        self.add_eos = add_eos

    def encode(self, text: str | bytes, add_bos: bool | None = None, add_eos: bool | None = None) -> list[int]:
        """Text (UTF-8 encoded) or raw bytes -> ids, with BOS/EOS per the flags (defaults from init)."""
        data = to_bytes(text)
        ids = [b + OFFSET for b in data]
        if self.add_bos if add_bos is None else add_bos:
            ids.insert(0, BOS_ID)
        if self.add_eos if add_eos is None else add_eos:
            ids.append(EOS_ID)
        return ids

    def decode_bytes(self, ids) -> bytes:
        """Ids -> raw bytes; special ids (< 4) are dropped. Accepts lists and 1-D tensors."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        bad = [i for i in ids if not 0 <= int(i) < VOCAB_SIZE]
        if bad:
            raise ValueError(f"token ids must be in [0, {VOCAB_SIZE}), found {bad[:5]}")
        return bytes(int(i) - OFFSET for i in ids if int(i) >= OFFSET)

    def decode(self, ids) -> str:
        """Ids -> text; invalid UTF-8 is replaced by U+FFFD, never an exception."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def batch_encode(self, texts, pad_id: int = PAD_ID, **flags) -> tuple[list[list[int]], list[int]]:
        """Several texts -> right-padded rows of equal length and the true length of each row."""
        rows = [self.encode(t, **flags) for t in texts]
        width = max((len(r) for r in rows), default=0)
        return [r + [pad_id] * (width - len(r)) for r in rows], [len(r) for r in rows]


def to_bytes(text: str | bytes | bytearray) -> bytes:
    """str -> UTF-8 bytes (lone surrogates are an error naming the position); bytes pass through."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    if not isinstance(text, str):
        raise TypeError(f"expected str or bytes, found {type(text).__name__}")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"text is not valid Unicode at character {err.start}: {err.reason}") from None
