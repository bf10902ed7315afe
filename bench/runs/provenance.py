"""Which version of the code trained a record: `code_hash`, the SHA-256 over the source files
that decide training, the twins (impls/) and the framework-neutral core (bench/core/).

Each file enters by its path relative to the package root (POSIX, sorted) and its bytes, so a
file edited, added, removed or renamed changes the hash, while time stamps, the checkout's
location and anything outside those two folders (the CLI, the tables, the tests) do not.
Computed once per process. The hash is stored in every record beside `spec_hash`; it is not
part of the identity hash, so experiment ids do not depend on it.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the bench and impls packages
CODE_FOLDERS = ("impls", "bench/core")
SUFFIXES = (".py",)


def source_files(root: Path = ROOT) -> list[Path]:
    """The files the hash covers, sorted by their relative POSIX path."""
    files = [
        p
        for folder in CODE_FOLDERS
        for p in (root / folder).rglob("*")
        if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def hash_files(files, root: Path) -> str:
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


@functools.cache
def code_hash(root: Path = ROOT) -> str:
    """SHA-256 (hex) of the training code under `root`; computed once per process."""
    return hash_files(source_files(root), root)
