"""Comparing two nested trees of arrays (torch first): one row per leaf, and the error that
names the first leaf out of tolerance."""

from __future__ import annotations

import math

import numpy as np


class EquivalenceError(AssertionError):
    """The twins disagree; `path` names the tensor, `context` the case and step."""

    def __init__(self, message, context="", path="", max_abs=math.nan, bound=math.nan):
        super().__init__(message)
        self.context, self.path, self.max_abs, self.bound = context, path, max_abs, bound


def _leaves(a, b, path):
    """Yield (path, a, b, problem) for every leaf of two nested dict/list/tuple trees."""
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            yield path, a, b, f"is a {type(a).__name__} in torch, a {type(b).__name__} in tensorflow"
            return
        only_a, only_b = [k for k in a if k not in b], [k for k in b if k not in a]
        if only_a or only_b:
            yield path, a, b, f"keys differ: only torch {only_a[:5]}, only tensorflow {only_b[:5]}"
            return
        for k in a:
            yield from _leaves(a[k], b[k], f"{path}.{k}" if path else str(k))
        return
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
            yield path, a, b, "sequence lengths differ"
            return
        for i, (x, y) in enumerate(zip(a, b)):
            yield from _leaves(x, y, f"{path}[{i}]")
        return
    yield path, a, b, None


def _row(path, a, b, scale=None):
    a, b = np.asarray(a), np.asarray(b)
    row = {
        "path": path,
        "shape": tuple(b.shape),
        "dtype": str(b.dtype),
        "max_abs": 0.0,
        "max_rel": 0.0,
        "scale": 0.0,
        "problem": None,
    }
    if a.shape != b.shape:
        row["problem"] = f"shape {a.shape} in torch, {b.shape} in tensorflow"
    elif a.dtype != b.dtype:
        row["problem"] = f"dtype {a.dtype} in torch, {b.dtype} in tensorflow"
    elif a.size:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        nan_a, nan_b = np.isnan(a64), np.isnan(b64)
        if (nan_a != nan_b).any():
            row["problem"] = f"NaN in one twin only ({int((nan_a != nan_b).sum())} elements)"
            row["max_abs"] = row["max_rel"] = math.inf
            return row
        keep = ~nan_a
        diff = np.abs(a64[keep] - b64[keep])
        row["max_abs"] = float(diff.max()) if diff.size else 0.0
        row["scale"] = float(np.abs(b64[keep]).max()) if diff.size else 0.0
        if scale is not None:
            row["scale"] = float(scale)
        if row["scale"] > 0:
            row["max_rel"] = row["max_abs"] / row["scale"]
        else:
            row["max_rel"] = 0.0 if row["max_abs"] == 0 else math.inf
    return row


def compare(a, b, path="", scale=None) -> list[dict]:
    """One row per leaf of two nested trees (torch first): path, shape, dtype, max_abs,
    max_rel (max abs / scale), scale (max |tf| of the leaf, or the given one), and a problem
    string for a structural difference (keys, lengths, shapes, dtypes, NaN placement) or None."""
    rows = []
    for p, x, y, problem in _leaves(a, b, path):
        if problem:
            rows.append(
                {
                    "path": p,
                    "shape": None,
                    "dtype": None,
                    "max_abs": math.inf,
                    "max_rel": math.inf,
                    "scale": 0.0,
                    "problem": problem,
                }
            )
        else:
            rows.append(_row(p, x, y, scale))
    return rows


def violation(row, atol, rtol, context=""):
    """The EquivalenceError for a compare() row outside atol + rtol * scale, else None."""
    where = f"{context}: " if context else ""
    if row["problem"]:
        return EquivalenceError(f"{where}{row['path']} {row['problem']}", context, row["path"])
    bound = atol + rtol * row["scale"]
    if row["max_abs"] <= bound:
        return None
    return EquivalenceError(
        f"{where}{row['path']} differs, max abs {row['max_abs']:.2g} > {bound:.2g} "
        f"(max rel {row['max_rel']:.2g}, atol {atol:g}, rtol {rtol:g})",
        context,
        row["path"],
        row["max_abs"],
        bound,
    )


def assert_close_tree(a, b, atol=0.0, rtol=0.0, path="", context=""):
    """Raise EquivalenceError naming the first leaf (in tree order) that is not close."""
    for row in compare(a, b, path):
        err = violation(row, atol, rtol, context)
        if err is not None:
            raise err


def _flatten(tree, path="") -> dict:
    """{path: leaf} of a nested dict/list tree, paths spelled as compare() spells them."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(tree, (list, tuple)):
        out = {}
        for i, v in enumerate(tree):
            out.update(_flatten(v, f"{path}[{i}]"))
        return out
    return {path: tree}
