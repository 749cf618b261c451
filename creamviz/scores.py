"""Accuracy and perplexity results from per-prompt records (pure numpy, no torch).

:mod:`creamviz.evaluate` runs models and returns these; :mod:`creamviz.figures` draws them.
``records`` are dicts with at least ``correct`` (bool) and the task's ``depth`` / ``length`` keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DepthCurve", "NiahGrid", "LengthCurve", "PplCurve", "PplByLength", "depth_curve", "mean_over_seeds",
           "niah_grid_from_records", "records_label"]


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
    d = r.get("depth") if d is None else d
    if isinstance(d, bool) or not isinstance(d, int | float | np.integer | np.floating) or not 0.0 <= d <= 1.0:
        raise ValueError(f"record depth={d!r} is not valid: valid is a number in [0, 1]")  # also NaN
    return round(float(d), 6)


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
    mode: str = ""  # whose task rules (e.g. "RULER verbatim", "byte-scaled (tiny model)")
    scorer: str = ""  # the scorer's name (tasks.SCORERS)
    budget: int | None = None  # generation budget, new tokens

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def label(self) -> str:
        """``task (mode; scorer, budget N new tokens)``: what every number of this curve is."""
        parts = [p for p in (self.mode, self.scorer) if p]
        if self.budget is not None:
            parts.append(f"budget {self.budget}")
        return f"{self.task} ({'; '.join(parts)})" if parts else self.task

    def records(self) -> list[dict]:
        return [{"task": self.task, "mode": self.mode, "scorer": self.scorer, "budget": self.budget,
                 "length": self.length, "depth": float(d), "accuracy": float(a), "stderr": float(s), "n": int(k)}
                for d, a, s, k in zip(self.depths, self.accuracy, self.stderr, self.n, strict=True)]


def _correct(records: Sequence[dict]) -> np.ndarray:
    """The ``correct`` column as booleans; anything but True / False / 0 / 1 is refused."""
    out = []
    for i, r in enumerate(records):
        c = r.get("correct")
        if isinstance(c, bool | np.bool_) or (isinstance(c, int | np.integer) and c in (0, 1)):
            out.append(bool(c))
        else:
            raise ValueError(f"records[{i}]['correct']={c!r} is not valid: valid is True / False (or 0 / 1)")
    return np.array(out)


def _one_label(records: Sequence[dict], key: str, *, required: bool = True):
    """The single value of ``key`` over ``records``; two values would merge different runs."""
    values = {r.get(key) for r in records}
    if required and None in values:
        raise ValueError(f"records lack {key!r}; every record needs one")
    if len(values) > 1:
        raise ValueError(f"records mix {key}s {sorted(map(str, values))}: one curve holds one {key}; "
                         "split them first")
    return values.pop()


def depth_curve(records: Sequence[dict]) -> DepthCurve:
    """Group per-example records (one task, length, scorer and budget) by their requested depth."""
    _check_nonempty("records", records)
    task, length = _one_label(records, "task"), int(_one_label(records, "length"))
    scorer, budget, mode = (_one_label(records, k, required=False) for k in ("scorer", "budget", "mode"))
    depths, acc, n = _group_mean(np.array([_depth_key(r) for r in records]), _correct(records))
    return DepthCurve(task, length, depths.astype(float), acc, _binomial_stderr(acc, n), n, list(records),
                      mode or "", scorer or "", None if budget is None else int(budget))


def mean_over_seeds(curves: Sequence[DepthCurve]) -> DepthCurve:
    """Average depth curves of several runs (e.g. fine-tuning seeds); stderr = std / sqrt(k).
    The curves must share task, length, scorer, budget and depths."""
    if not curves:
        raise ValueError("curves is empty")
    for attr in ("task", "length", "scorer", "budget", "mode"):
        values = {getattr(c, attr) for c in curves}
        if len(values) > 1:
            raise ValueError(f"curves mix {attr}s {sorted(map(str, values))}: average runs of one {attr} only")
    depths = curves[0].depths
    if any(c.depths.shape != depths.shape or not np.allclose(c.depths, depths) for c in curves):
        raise ValueError("all curves must share the same depths")
    acc = np.stack([c.accuracy for c in curves])  # (k, D)
    k = len(curves)
    stderr = acc.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else curves[0].stderr
    c0 = curves[0]
    return DepthCurve(c0.task, c0.length, depths, acc.mean(axis=0), stderr, sum(c.n for c in curves),
                      [r for c in curves for r in c.raw], c0.mode, c0.scorer, c0.budget)


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
    _correct(records)
    _one_label(records, "task")
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


@dataclass
class PplByLength:
    """Sliding-window perplexity at several evaluation lengths (the long-context extension papers'
    table: N, ..., L, beyond L)."""

    lengths: np.ndarray  # (X,) window length in tokens
    nll: np.ndarray  # (X,) mean negative log-likelihood of the scored tokens, nats/token
    n_tokens: np.ndarray  # (X,) tokens scored at each length (the same stretch of text for every length)
    stride: int | None  # window step; None: one window per length-sized chunk (CREAM's --truncate)
    text: str = ""  # what was scored

    @property
    def ppl(self) -> np.ndarray:  # (X,)
        return np.exp(self.nll)

    def records(self) -> list[dict]:
        return [{"length": int(L), "nll": float(x), "ppl": float(np.exp(x)), "n_tokens": int(k),
                 "stride": self.stride, "text": self.text}
                for L, x, k in zip(self.lengths, self.nll, self.n_tokens, strict=True)]


def records_label(records: Sequence[dict]) -> str:
    """``mode; scorer, budget N`` of per-example records (what their accuracy means), "" if unlabelled;
    several values are listed, never merged silently."""
    parts = []
    for key, fmt in (("mode", "{}"), ("scorer", "{}"), ("budget", "budget {} new tokens")):
        values = sorted({str(r[key]) for r in records if r.get(key) is not None})
        if values:
            parts.append(fmt.format(" / ".join(values)))
    return "; ".join(parts)


# ----------------------------------------------------------------------------- one call each
