import pytest
import torch

from blt_core import ByteTokenizer
from blt_core.hash_embedding import ngram_hashes

IDS = torch.tensor([ByteTokenizer().encode("my name is")])

# Test vectors from the reference spec (exact mod-2**64 arithmetic, P = 1000000007, V = 500002).
VECTORS = {
    3: [443987, 245324, 222431, 177454, 49679, 369833, 346140, 246329, 257314, 329734, 478030],
    4: [437197, 241614, 499803, 92981, 412278, 390458, 263958, 339201, 116879, 402659, 154035],
    8: [172383, 320688, 324181, 339215, 208897, 325590, 131923, 299004, 354181, 8223, 395207],
}


@pytest.mark.parametrize("n", sorted(VECTORS))
def test_reference_vectors(n):
    assert ngram_hashes(IDS, n, 1000000007, 500002)[0].tolist() == VECTORS[n]


def test_python_big_int_definition():
    """The same hash from its definition with Python integers (wrap to signed 64 bits)."""
    ids = [0, 0] + IDS[0].tolist()
    for prime in (5915587277, 3367900313):
        expected = []
        for t in range(2, len(ids)):
            h = sum(ids[t - 2 + i] * pow(prime, i) for i in range(3)) % (1 << 64)
            h = h - (1 << 64) if h >= 1 << 63 else h
            expected.append(h % 97)
        assert ngram_hashes(IDS, 3, prime, 97)[0].tolist() == expected


def test_matches_transformers():
    blt = pytest.importorskip("transformers.models.blt.modeling_blt")
    ids = torch.randint(0, 260, (3, 50))
    for n in (2, 3, 6, 8):
        for prime in (1000000007, 9576890767):
            assert torch.equal(ngram_hashes(ids, n, prime, 500002),
                               blt.byte_group_hash_function(ids, n, prime, 500002))


def test_the_last_positions_rows_and_sums_are_the_full_windows():
    """The decoding step's path (the n-grams ending at a window's last byte, as column products)
    gives the rows and the sums, bit for bit, of the whole window's rolling hashes at that byte:
    windows shorter than the longest n-gram (left zeros) and byte ids near 255 included."""
    from blt_core.hash_embedding import HashNgramEmbedding
    emb = HashNgramEmbedding((3, 4, 5, 6, 7, 8), 2, 500002, 8)
    torch.nn.init.normal_(emb.weight)
    window = torch.randint(0, 260, (5, 8))
    window[0, :6] = 0                                                    # the stream's second byte
    window[1] = 255
    x = torch.randn(5, 8, 8)
    full = torch.stack(emb.table_rows(window), dim=-1)[:, -1]
    assert torch.equal(emb.last_rows(window), full)
    assert torch.equal(emb.add_last(x[:, -1:], window), emb.add_to(x, window)[:, -1:])
