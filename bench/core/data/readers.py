"""Readers for the stored formats: IDX files (gzipped or not), a Keras ``.npz`` and the
deeplearning.net MNIST pickle. Every failure is a one-line :class:`DataError` naming the file."""

from __future__ import annotations

import functools
import gzip
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .base import EXPECTED_SHA256, IMAGE_SHAPE, REINSTALL, SPLITS, DataError, _sha256, _Source

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def _idx_candidates(folder: Path, split: str, what: str) -> list[Path]:
    prefix = _IDX_PREFIX[split]
    kind = "idx3" if what == "images" else "idx1"
    names = [f"{prefix}-{what}-{kind}-ubyte", f"{prefix}-{what}.{kind}-ubyte"]
    return [folder / (n + ext) for n in names for ext in ("", ".gz")]


def _idx_file(folder: Path, split: str, what: str) -> Path | None:
    for p in _idx_candidates(folder, split, what):
        if p.is_file():
            return p
    return None


def _has_idx(folder: Path) -> bool:
    return folder.is_dir() and any(_idx_file(folder, s, w) is not None for s in SPLITS for w in ("images", "labels"))


def _read_bytes(path: Path, fix: str) -> bytes:
    """Read a file, gunzipping it when it starts with the gzip magic; errors name the file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
            fh.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=fh) as gz:
                    return gz.read()
            return fh.read()
    except FileNotFoundError:
        raise DataError(f"{path} is missing: {fix}") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        reason = str(e) or type(e).__name__
        raise DataError(f"{path} is corrupt (truncated or damaged gzip: {reason}): {fix}") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e}): {fix}") from None


def _parse_idx_images(buf: bytes, path: Path, fix: str) -> np.ndarray:
    if len(buf) < 16:
        raise DataError(f"{path} is corrupt (only {len(buf)} bytes, no IDX header): {fix}")
    magic, n, rows, cols = struct.unpack(">IIII", buf[:16])
    if magic != _IDX_IMAGES_MAGIC:
        raise DataError(f"{path} is not an IDX image file (magic number {magic}, expected {_IDX_IMAGES_MAGIC}): {fix}")
    if (rows, cols) != IMAGE_SHAPE:
        raise DataError(f"{path} holds {rows}x{cols} images, expected 28x28: {fix}")
    want = 16 + n * rows * cols
    if len(buf) != want:
        state = "truncated" if len(buf) < want else "too long"
        raise DataError(
            f"{path} is corrupt ({state}: header says {n} images = {want} bytes, file has {len(buf)}): {fix}"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def _parse_idx_labels(buf: bytes, path: Path, fix: str) -> np.ndarray:
    if len(buf) < 8:
        raise DataError(f"{path} is corrupt (only {len(buf)} bytes, no IDX header): {fix}")
    magic, n = struct.unpack(">II", buf[:8])
    if magic != _IDX_LABELS_MAGIC:
        raise DataError(f"{path} is not an IDX label file (magic number {magic}, expected {_IDX_LABELS_MAGIC}): {fix}")
    want = 8 + n
    if len(buf) != want:
        state = "truncated" if len(buf) < want else "too long"
        raise DataError(
            f"{path} is corrupt ({state}: header says {n} labels = {want} bytes, file has {len(buf)}): {fix}"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=8).astype(np.int64)


def _read_idx_split(src: _Source, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    files = {}
    for what in ("images", "labels"):
        p = _idx_file(src.path, split, what)
        if p is None:
            name = _idx_candidates(src.path, split, what)[0].name
            if src.kind == "debian":
                msg = (
                    f"Fashion-MNIST is incomplete: {name}[.gz] is missing from {src.path}; reinstall it with {src.fix}"
                )
            else:
                msg = f"{name}[.gz] is missing from {src.path} ({src.label}): {src.fix}"
            raise DataError(msg)
        files[what] = p
    images = _parse_idx_images(_read_bytes(files["images"], src.fix), files["images"], src.fix)
    labels = _parse_idx_labels(_read_bytes(files["labels"], src.fix), files["labels"], src.fix)
    if len(images) != len(labels):
        raise DataError(
            f"{files['images']} has {len(images)} images but {files['labels'].name} has {len(labels)} labels: {src.fix}"
        )
    where = f"{src.label}: {files['images']}"
    return images, labels, where


def _read_npz_split(src: _Source, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    xk, yk = f"x_{split}", f"y_{split}"
    try:
        with np.load(src.path, allow_pickle=False) as z:
            missing = [k for k in (xk, yk) if k not in z.files]
            if missing:
                raise DataError(
                    f"{src.path} has no {', '.join(missing)} (keys: {', '.join(z.files) or 'none'}); "
                    f"a Keras mnist.npz holds x_train y_train x_test y_test: {src.fix}"
                )
            x, y = z[xk], z[yk]
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{src.path} is corrupt or not an .npz ({e}): {src.fix}") from None
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{src.path}: {xk} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28): {src.fix}")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{src.path}: {yk} is {y.dtype} {y.shape}, expected integer (N,): {src.fix}")
    if len(x) != len(y):
        raise DataError(f"{src.path}: {xk} has {len(x)} images but {yk} has {len(y)} labels: {src.fix}")
    return np.array(x, dtype=np.uint8), np.asarray(y).astype(np.int64), f"{src.label}: {src.path}"


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles the deeplearning.net MNIST pickle and refuses any other global (no code runs)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")
        if module == "_codecs":
            import codecs

            return codecs.encode
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # pragma: no cover - NumPy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def _pickle_bytes(x, y, part: str, n: int, path: Path, fix: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(x, np.ndarray) and x.ndim == 2 and x.shape == (n, 784)):
        shape = getattr(x, "shape", type(x).__name__)
        raise DataError(f"{path}: the {part} images are {shape}, expected ({n}, 784): {fix}")
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: the {part} labels are {y.dtype} {y.shape}, expected int ({n},): {fix}")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    scaled = x * x.dtype.type(256)  # exact: 256 is a power of two
    b = np.rint(scaled)
    err = float(np.max(np.abs(scaled - b))) if b.size else 0.0
    if not (err < 1e-3 and b.min() >= 0 and b.max() <= 255):
        raise DataError(
            f"{path}: the {part} images are not byte/256 (max error {err:.3g}, range "
            f"{b.min():g}..{b.max():g}), so the original bytes cannot be recovered: {fix}"
        )
    return b.astype(np.uint8).reshape(n, *IMAGE_SHAPE), y.astype(np.int64)


def decoded_cache_file() -> Path:
    """Where the decoded MNIST bytes are kept between processes: $GENBENCH_CACHE_DIR, else
    $XDG_CACHE_HOME/genbench, else ~/.cache/genbench; one file, mnist-decoded.npz."""
    root = os.environ.get("GENBENCH_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genbench"
    return Path(root) / "mnist-decoded.npz"


def _is_standard_mnist(splits: dict) -> bool:
    return all(_sha256(*splits[s]) == EXPECTED_SHA256[("mnist", s)] for s in SPLITS)


def _cached_decoded(key: str):
    """The decoded splits from the cache file when it was written from this very file (path,
    size and mtime) and its bytes are still the standard MNIST (SHA-256, 0.05 s); else None."""
    try:
        with np.load(decoded_cache_file(), allow_pickle=False) as z:
            if str(z["source"]) != key:
                return None
            splits = {s: (z[f"{s}_images"], z[f"{s}_labels"]) for s in SPLITS}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return splits if _is_standard_mnist(splits) else None


def _store_decoded(key: str, splits: dict) -> None:
    """Keep the standard MNIST's decoded bytes for the next process (atomically; a cache that
    cannot be written is skipped). Anything else read from a pickle is not kept."""
    if not _is_standard_mnist(splits):
        return
    target = decoded_cache_file()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            arrays = {f"{s}_{part}": a for s in SPLITS for part, a in zip(("images", "labels"), splits[s])}
            np.savez(fh, source=np.array(key), **arrays)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)


@functools.lru_cache(maxsize=2)
def _read_mnist_pickle(path: Path, stamp: tuple) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The deeplearning.net pickle, decoded to bytes (2 s: gzip and 220 MB of floats), or the
    same bytes from the decoded cache (decoded_cache_file) that the first reader left."""
    key = f"{Path(path).resolve()}|{stamp}"
    cached = _cached_decoded(key)
    if cached is not None:
        return cached
    out = _decode_mnist_pickle(path)
    _store_decoded(key, out)
    return out


def _decode_mnist_pickle(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    fix = f"reinstall it with `{REINSTALL['mnist']}`"
    try:
        with gzip.open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"MNIST not found: {path} is missing; {fix}") from None
    except (
        EOFError,
        zlib.error,
        OSError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        MemoryError,
    ) as e:
        reason = str(e) or type(e).__name__
        raise DataError(f"{path} is corrupt ({reason}): {fix}") from None
    if not (isinstance(obj, tuple) and len(obj) == 3 and all(isinstance(p, tuple) and len(p) == 2 for p in obj)):
        raise DataError(f"{path} is not the (train, valid, test) MNIST pickle: {fix}")
    (xtr, ytr), (xva, yva), (xte, yte) = obj
    del obj
    tr = _pickle_bytes(xtr, ytr, "train", 50000, path, fix)
    va = _pickle_bytes(xva, yva, "validation", 10000, path, fix)
    te = _pickle_bytes(xte, yte, "test", 10000, path, fix)
    # deeplearning.net split the official training set 50000 + 10000, in order.
    train = (np.concatenate([tr[0], va[0]]), np.concatenate([tr[1], va[1]]))
    return {"train": train, "test": te}
