"""tiktoken's own encodings over the shipped vocabulary files: tiktoken_ext.openai_public's
definitions (pattern, special tokens), its loader checking the sha256 it pins; nothing is
downloaded. The reference for blt_core.bpe's token ids."""
from __future__ import annotations

import lzma
import os
import tempfile
from pathlib import Path
from unittest import mock

import tiktoken
import tiktoken.load
from tiktoken_ext import openai_public

from blt_core import bpe


def tiktoken_encodings() -> dict[str, tiktoken.Encoding]:
    with tempfile.TemporaryDirectory() as folder:
        local = {}
        for name in bpe.VOCABULARIES:
            local[name] = Path(folder) / f"{name}.tiktoken"
            local[name].write_bytes(lzma.decompress((bpe.VOCAB_DIR / f"{name}.tiktoken.xz").read_bytes()))

        def load(url, expected_hash):               # the URL's file name, read from the local copy
            return tiktoken.load.load_tiktoken_bpe(str(local[url.rsplit("/", 1)[1].removesuffix(".tiktoken")]),
                                                   expected_hash)

        with mock.patch.object(openai_public, "load_tiktoken_bpe", load), \
                mock.patch.dict(os.environ, {"TIKTOKEN_CACHE_DIR": ""}):     # no cache: read the file
            return {name: tiktoken.Encoding(**getattr(openai_public, name)()) for name in bpe.VOCABULARIES}
