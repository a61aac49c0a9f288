"""Source code: Go, Rust, C, JavaScript and Python from the toolchains' and libraries' own sources.

One document per file (a long file is cut into documents by the build), each headed by its path as
a comment; tests and test data left out. The Go, Rust and C trees are sampled to a byte budget, and
a further slice of the files not taken is kept as never-trained-on text (`heldout_unseen_code_<lang>`).
"""
from __future__ import annotations

import tarfile

from .packages import Packages, apt
from .source import Document, Source
from .text import decode

GO, RUST, GLIBC, TYPESCRIPT, PYTHON = apt("golang-1.19-src", "rust-src", "glibc-source", "node-typescript",
                                          "libpython3.11-stdlib")


def files(package, root: str, suffixes: tuple[str, ...], keep, comment: str = "//"):
    def documents(packages: Packages):
        base = packages.path(package, root)
        for f in sorted(base.rglob("*")):
            rel = f.relative_to(base).as_posix()
            if f.suffix in suffixes and f.is_file() and keep(rel):
                yield Document(rel, f"{comment} {rel}\n{decode(f.read_bytes())}")
    return documents


def go_file(rel: str) -> bool:
    return not rel.endswith("_test.go") and "/testdata/" not in f"/{rel}"


def rust_file(rel: str) -> bool:
    return rel.startswith(("library/", "compiler/")) and "/tests/" not in rel and not rel.endswith("/tests.rs")


def python_file(rel: str) -> bool:
    return not rel.startswith(("test/", "idlelib/idle_test/", "lib2to3/tests/")) and "/tests/" not in rel


def glibc(packages: Packages):
    """The .c and .h files inside the glibc tarball that glibc-source ships (no tests, no locale data)."""
    (tarball,) = packages.path(GLIBC, "usr/src/glibc").glob("glibc-*.tar.xz")
    with tarfile.open(tarball) as tar:
        for member in tar:
            rel = member.name.split("/", 1)[-1]
            name = rel.rsplit("/", 1)[-1]
            if (member.isfile() and name.endswith((".c", ".h")) and not name.startswith("tst-")
                    and not rel.startswith("localedata/")):
                yield Document(rel, f"// {rel}\n{decode(tar.extractfile(member).read())}")


SOURCES = [
    Source("go", (GO,), "BSD-3-Clause", "code_go", files(GO, "usr/share/go-1.19/src", (".go",), go_file),
           "the Go 1.19 standard library and toolchain", left_out="tests and testdata; past 12 MB (files sampled)",
           budget=12_000_000, unseen_budget=300_000, dedupe="document"),
    Source("rust", (RUST,), "MIT OR Apache-2.0", "code_rust",
           files(RUST, "usr/src/rustc-1.63.0", (".rs",), rust_file), "the Rust 1.63 standard library and compiler",
           left_out="tests; past 12 MB (files sampled)", budget=12_000_000, unseen_budget=300_000,
           dedupe="document"),
    Source("glibc", (GLIBC,), "LGPL-2.1+", "code_c", glibc, "the GNU C library 2.36 (.c and .h)",
           left_out="tests (tst-*), locale data; past 10 MB (files sampled)", budget=10_000_000,
           unseen_budget=300_000, dedupe="document"),
    Source("typescript", (TYPESCRIPT,), "Apache-2.0", "code_javascript",
           files(TYPESCRIPT, "usr/share/nodejs/typescript/lib", (".js",), lambda rel: rel == "typescript.js"),
           "the TypeScript 4.8 compiler as JavaScript (typescript.js, not minified)",
           left_out="the other bundles in lib/ (the same compiler again)", dedupe="document"),
    Source("python", (PYTHON,), "PSF-2.0", "code_python",
           files(PYTHON, "usr/lib/python3.11", (".py",), python_file, comment="#"),
           "the Python 3.11 standard library", left_out="tests", dedupe="document"),
]
