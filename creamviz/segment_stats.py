"""Summary statistics of sampled positions, ready for the figure builders.

Pure numpy, O(n + L) per call through difference arrays: no (n, N) id matrix is materialised for
segment-structured samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creamviz.samplers import Segments

__all__ = ["SEGMENT_NAMES", "PositionUsage", "MiddlePlacement", "segment_usage", "position_usage",
           "middle_placement", "bin_edges", "rebin"]

SEGMENT_NAMES = ("head", "middle", "tail")
MAX_POSITIONS = 1 << 27  # longest per-position array (L,) built (1 GiB of int64)


def _check_positions(target_len: int) -> None:
    if target_len > MAX_POSITIONS:
        raise ValueError(f"target_len={target_len} per-position counts exceed the limit {MAX_POSITIONS} "
                         f"({MAX_POSITIONS * 8 / 2**30:.0f} GiB of int64); use a smaller target_len")


def bin_edges(target_len: int, bins: int | None) -> np.ndarray:
    """Integer bin edges over ``[0, L)``: ``bins`` (at most L) nearly equal bins, shape (bins + 1,)."""
    if bins is None or (isinstance(bins, int | np.integer) and not isinstance(bins, bool) and bins >= target_len):
        _check_positions(target_len)
        return np.arange(target_len + 1)
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ValueError(f"bins must be an integer >= 1 (or None for one bin per position), got {bins!r}")
    return np.unique(np.linspace(0, target_len, bins + 1).round().astype(np.int64))


def _interval_counts(starts: np.ndarray, stops: np.ndarray, size: int) -> np.ndarray:
    """How many half-open intervals ``[start, stop)`` cover each integer of ``[0, size)``."""
    keep = stops > starts
    diff = np.bincount(starts[keep], minlength=size + 1)[: size + 1].astype(np.int64)
    diff -= np.bincount(stops[keep], minlength=size + 1)[: size + 1]
    return np.cumsum(diff[:size])


def rebin(per_position: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of ``per_position`` inside each bin ``[edges[i], edges[i+1])``."""
    sums = np.add.reduceat(per_position.astype(np.float64), edges[:-1])
    return sums / np.diff(edges)


@dataclass(frozen=True)
class PositionUsage:
    """Fraction of samples whose ids use each absolute position, averaged inside bins.

    ``edges`` (bins + 1,) are integer bin edges over [0, L); each value in ``fractions`` is an
    array (bins,) in [0, 1]. Keys are segment names (head/middle/tail) or ``"all"``.
    """

    edges: np.ndarray
    fractions: dict[str, np.ndarray]
    n_samples: int
    target_len: int

    @property
    def centers(self) -> np.ndarray:
        return (self.edges[:-1] + self.edges[1:] - 1) / 2.0


def segment_usage(segments: Segments, *, bins: int | None = 512) -> PositionUsage:
    """Per segment (head / middle / tail): fraction of samples using each position of [0, L)."""
    big_l, n = segments.target_len, len(segments)
    if n == 0:
        raise ValueError("segments must hold at least one sample, got 0")
    _check_positions(big_l)
    edges = bin_edges(big_l, bins)
    intervals = {
        "head": (np.zeros(n, np.int64), segments.head_len),
        "middle": (segments.mid_start, segments.mid_end + 1),
        "tail": (segments.tail_start, np.full(n, big_l, np.int64)),
    }
    fractions = {name: rebin(_interval_counts(a, b, big_l), edges) / n for name, (a, b) in intervals.items()}
    return PositionUsage(edges, fractions, n, big_l)


def position_usage(samples: Segments | np.ndarray, *, target_len: int | None = None,
                   bins: int | None = 512) -> PositionUsage:
    """Fraction of samples using each position (all segments together), key ``"all"``.

    ``samples`` is a :class:`Segments` or an id array ``(n, N)`` (RandPos), for which
    ``target_len`` is required.
    """
    if isinstance(samples, Segments):
        seg = segment_usage(samples, bins=bins)
        total = sum(seg.fractions.values())
        return PositionUsage(seg.edges, {"all": total}, seg.n_samples, seg.target_len)
    ids = np.asarray(samples)
    if ids.ndim != 2:
        raise ValueError(f"position ids must have shape (n, N), got {ids.shape}")
    if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"position ids must be a non-empty integer array (n, N), got {ids.dtype} {ids.shape}")
    if target_len is None or ids.min() < 0 or ids.max() >= target_len:
        raise ValueError(f"target_len={target_len!r} must be given and exceed every id (ids in "
                         f"[{ids.min()}, {ids.max()}])")
    _check_positions(int(target_len))
    edges = bin_edges(target_len, bins)
    counts = np.bincount(ids.ravel(), minlength=target_len)
    return PositionUsage(edges, {"all": rebin(counts, edges) / ids.shape[0]}, ids.shape[0], target_len)


@dataclass(frozen=True)
class MiddlePlacement:
    """Histograms (probability per bin) of the middle's start P_s, end P_e and centre.

    ``edges`` (bins + 1,) over [0, L); ``p_start``, ``p_end``, ``p_center`` (bins,) sum to 1;
    ``rand_factor_values`` / ``rand_factor_freq`` the empirical rand_factor distribution
    (empty when the sampler does not use one).
    """

    edges: np.ndarray
    p_start: np.ndarray
    p_end: np.ndarray
    p_center: np.ndarray
    rand_factor_values: np.ndarray
    rand_factor_freq: np.ndarray
    n_samples: int
    target_len: int


def middle_placement(segments: Segments, *, bins: int | None = 256) -> MiddlePlacement:
    """Where the middle lands: histograms of P_s, P_e, (P_s + P_e) / 2, and rand_factor counts."""
    big_l, n = segments.target_len, len(segments)
    if n == 0:
        raise ValueError("segments must hold at least one sample, got 0")
    edges = bin_edges(big_l, bins)

    def hist(values: np.ndarray) -> np.ndarray:
        return np.histogram(values, bins=edges)[0] / n

    rf = segments.rand_factor
    if rf is not None and (rf >= 0).any():
        counts = np.bincount(rf[rf >= 0])
        values = np.flatnonzero(counts)
        values = np.arange(values.min(), values.max() + 1)
        freq = counts[values] / (rf >= 0).sum()
    else:
        values, freq = np.array([], np.int64), np.array([])
    return MiddlePlacement(edges, hist(segments.mid_start), hist(segments.mid_end),
                           hist((segments.mid_start + segments.mid_end) / 2.0), values, freq, n, big_l)
