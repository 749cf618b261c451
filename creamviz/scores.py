"""Accuracy and perplexity results from per-prompt records (pure numpy, no torch).

:mod:`creamviz.evaluate` runs models and returns these; :mod:`creamviz.figures` draws them.
``records`` are dicts with at least ``correct`` (bool) and the task's ``depth`` / ``length`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DepthCurve", "NiahGrid", "LengthCurve", "PplCurve", "depth_curve", "mean_over_seeds",
           "niah_grid_from_records"]


def _check_nonempty(name: str, values) -> list:
    values = list(values)
    if not values:
        raise ValueError(f"{name} is empty: ask for at least one")
    return values


def _group_mean(keys: np.ndarray, hits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted distinct ``keys``, the mean of ``hits`` and the count per key (numpy group-by)."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(uniq))
    return uniq, np.bincount(inverse, weights=hits.astype(float), minlength=len(uniq)) / counts, counts


def _depth_key(r: dict) -> float:
    """The depth an example was asked for (its realized depth if none was asked)."""
    d = r.get("target_depth")
    return round(float(r["depth"] if d is None else d), 6)


def _binomial_stderr(acc: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.sqrt(acc * (1 - acc) / np.maximum(n, 1))


@dataclass
class DepthCurve:
    """Accuracy by relative depth of the relevant item at one length (a Lost-in-the-Middle curve)."""

    task: str
    length: int  # L, tokens
    depths: np.ndarray  # (D,) relative position of the relevant item, 0 = start of the context
    accuracy: np.ndarray  # (D,) share correct
    stderr: np.ndarray  # (D,) binomial standard error, or std over seeds / sqrt(k) (mean_over_seeds)
    n: np.ndarray  # (D,) examples per depth (x seeds)
    raw: list[dict] = field(default_factory=list, repr=False)  # per-example records

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))

    def records(self) -> list[dict]:
        return [{"task": self.task, "length": self.length, "depth": float(d), "accuracy": float(a),
                 "stderr": float(s), "n": int(k)}
                for d, a, s, k in zip(self.depths, self.accuracy, self.stderr, self.n, strict=True)]


def depth_curve(records: Sequence[dict]) -> DepthCurve:
    """Group per-example records (one task and length) by their requested depth."""
    _check_nonempty("records", records)
    depths, acc, n = _group_mean(np.array([_depth_key(r) for r in records]),
                                 np.array([r["correct"] for r in records]))
    return DepthCurve(records[0]["task"], int(records[0]["length"]), depths.astype(float),
                      acc, _binomial_stderr(acc, n), n, list(records))


def mean_over_seeds(curves: Sequence[DepthCurve]) -> DepthCurve:
    """Average depth curves of several runs (e.g. fine-tuning seeds); stderr = std / sqrt(k)."""
    if not curves:
        raise ValueError("curves is empty")
    depths = curves[0].depths
    if any(c.depths.shape != depths.shape or not np.allclose(c.depths, depths) for c in curves):
        raise ValueError("all curves must share the same depths")
    acc = np.stack([c.accuracy for c in curves])  # (k, D)
    k = len(curves)
    stderr = acc.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else curves[0].stderr
    return DepthCurve(curves[0].task, curves[0].length, depths, acc.mean(axis=0), stderr,
                      sum(c.n for c in curves), [r for c in curves for r in c.raw])


@dataclass
class NiahGrid:
    """NIAH accuracy on the grid depth x length (heatmap: depth on y, length on x)."""

    lengths: np.ndarray  # (X,) L in tokens
    depths: np.ndarray  # (Y,) relative needle depth
    accuracy: np.ndarray  # (Y, X)
    n: np.ndarray  # (Y, X) examples per cell
    raw: list[dict] = field(default_factory=list, repr=False)

    def records(self) -> list[dict]:
        return [{"task": "niah", "length": int(L), "depth": float(d),
                 "accuracy": float(self.accuracy[i, j]), "n": int(self.n[i, j])}
                for i, d in enumerate(self.depths) for j, L in enumerate(self.lengths)]


def niah_grid_from_records(records: Sequence[dict]) -> NiahGrid:
    """Group per-example NIAH records into the depth x length grid (NaN where a cell has none)."""
    _check_nonempty("records", records)
    lengths, li = np.unique([int(r["length"]) for r in records], return_inverse=True)
    depths, di = np.unique([_depth_key(r) for r in records], return_inverse=True)
    cell = di * len(lengths) + li  # flat (depth, length) index of each record
    size = len(depths) * len(lengths)
    n = np.bincount(cell, minlength=size).reshape(len(depths), len(lengths))
    hits = np.bincount(cell, weights=[float(r["correct"]) for r in records], minlength=size)
    with np.errstate(invalid="ignore"):
        acc = hits.reshape(n.shape) / np.where(n > 0, n, np.nan)
    return NiahGrid(lengths, depths.astype(float), acc, n, list(records))


@dataclass
class LengthCurve:
    """Accuracy per context length (e.g. passkey by length)."""

    task: str
    lengths: np.ndarray  # (X,) tokens
    accuracy: np.ndarray  # (X,)
    stderr: np.ndarray  # (X,) binomial
    n: np.ndarray  # (X,)
    raw: list[dict] = field(default_factory=list, repr=False)

    def records(self) -> list[dict]:
        return [{"task": self.task, "length": int(L), "accuracy": float(a), "stderr": float(s),
                 "n": int(k)} for L, a, s, k in zip(self.lengths, self.accuracy, self.stderr, self.n,
                                                     strict=True)]


@dataclass
class PplCurve:
    """Mean next-token loss by position bucket at one length (token t predicted from tokens < t)."""

    length: int  # L, tokens per sequence
    bucket_start: np.ndarray  # (B,) first position of each bucket (inclusive)
    bucket_end: np.ndarray  # (B,) last position + 1
    nll: np.ndarray  # (B,) mean negative log-likelihood, nats/token
    n_tokens: np.ndarray  # (B,) tokens averaged

    @property
    def ppl(self) -> np.ndarray:  # (B,) perplexity = exp(nll)
        return np.exp(self.nll)

    def records(self) -> list[dict]:
        return [{"length": self.length, "bucket_start": int(a), "bucket_end": int(b),
                 "nll": float(x), "ppl": float(np.exp(x)), "n_tokens": int(k)}
                for a, b, x, k in zip(self.bucket_start, self.bucket_end, self.nll, self.n_tokens,
                                      strict=True)]


# ----------------------------------------------------------------------------- one call each
