"""Stored files by name: the one rule for plot_data/ and the export folder, shared by the file
endpoints (files.py) and the figures (figures.py).

A name is a file of a folder when, symlinks followed, it is a regular file directly inside that
folder. A symlink out of the folder, a loop (`ln -s loop loop`, a -> b -> a) or an entry that
cannot be read counts as no file at all: listings skip it, fetching it is a 404.
"""
from __future__ import annotations

from pathlib import Path


def resolved(path: Path) -> Path | None:
    """path with every symlink followed; None when they loop or the path cannot be read."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):      # RuntimeError: Python < 3.13's "Symlink loop from ..."
        return None


def file_in(folder: Path, name: str) -> Path | None:
    """The resolved regular file `name` directly inside folder, or None (see the module docstring)."""
    root, path = resolved(folder), resolved(Path(folder) / name)
    if root is None or path is None or path.parent != root:
        return None
    try:
        return path if path.is_file() else None
    except OSError:
        return None
