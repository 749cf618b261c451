"""Relative-position coverage: which distances ``p[i] - p[j]`` a training sample exposes.

For one position-id vector ``p`` (length N, ids inside ``[0, L)``) the relative-position set is

    D_r = { p[i] - p[j] : i >= j }                                   (convention "i>=j")

so ``0`` is always in ``D_r`` (the pairs ``i == j``, a token attending to itself). Two other
conventions are available wherever it matters: ``"i>j"`` (strict pairs; for strictly increasing
ids this is ``D_r`` without 0, ``|D| - 1``) and ``"all"`` (every ordered pair, signed distances;
``2|D| - 1`` for increasing ids).

With three contiguous segments — head ``[0, L_h)``, middle ``[P_s, P_e]`` (``P_e`` inclusive,
``L_m = P_e - P_s + 1``), tail ``[L - L_t, L)`` — ``D_r`` is the union of six integer intervals:

    within head    [0, L_h - 1]          head-middle  [P_s - L_h + 1, P_e]
    within middle  [0, L_m - 1]          middle-tail  [L - L_t - P_e, L - 1 - P_s]
    within tail    [0, L_t - 1]          head-tail    [L - L_t - L_h + 1, L - 1]

An interval exists only when its segments are non-empty (PoSE has no tail, the contiguous
baseline has neither middle nor tail). The three within-segment intervals all start at 0, so
they merge into ``[0, W - 1]`` with ``W = max(L_h, L_m, L_t)``; the union of the remaining four
intervals is taken per sample with a sort of four columns — O(1) per sample, vectorised.

RandPos has no segments: its samples go through the ``*_from_ids`` functions, which test
``d in D_r`` with an exact FFT autocorrelation of the sample's indicator vector (bounded work).
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.fft

from creamviz.samplers import Segments
from creamviz.segment_stats import bin_edges, rebin

__all__ = [
    "CONVENTIONS",
    "relative_distances",
    "span_size_from_ids",
    "span_size",
    "segment_intervals",
    "distance_counts",
    "distance_counts_from_ids",
    "first_covering_sample",
    "first_covering_sample_from_ids",
    "coverage_curve",
    "distance_frequency",
    "bin_mean",
]

CONVENTIONS = ("i>=j", "i>j", "all")  # which pairs (i, j) count; see the module docstring
MAX_BRUTE_LEN = 1 << 14  # longest id vector relative_distances accepts (N^2/2 = 1.3e8 pairs)
MAX_BITMAP = 1 << 28  # largest distance range marked in a boolean bitmap (256 MiB)
BLOCK_ELEMENTS = 1 << 22  # pair differences / FFT values held at once (32 MiB of int64)
MAX_FFT_WORK = 1 << 32  # n * L limit of the FFT path (about a minute on one core)
CHUNK = 1 << 15  # samples per vectorised chunk: temporaries stay cache-sized (2.4x faster at 1M)
MAX_DISTANCE_LEN = 1 << 27  # longest per-distance array (L,) built (1 GiB of int64)
MAX_TABLE_CELLS = 1 << 28  # log2(L) x L cells of first_covering_sample's range-min table (1 GiB of int32)


def _check_distance_len(big_l: int, *, levels: bool = False) -> None:
    """Refuse per-distance arrays over [0, L) (and the log2(L) x L range-min table) that are too big."""
    cells = big_l * max(1, big_l.bit_length()) if levels else big_l
    limit = MAX_TABLE_CELLS if levels else MAX_DISTANCE_LEN
    if big_l > MAX_DISTANCE_LEN or cells > limit:
        raise ValueError(f"target_len={big_l} needs {cells} per-distance cells, which exceed the limit "
                         f"{limit} ({limit * 8 / 2**30:.0f} GiB); use a smaller target_len")


# --------------------------------------------------------------------------- validation
def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} is not valid; valid: {', '.join(map(repr, CONVENTIONS))}")
    return convention


def _as_int_array(name: str, values, ndim: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D integer array, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_ids(ids, target_len: int | None) -> tuple[np.ndarray, int]:
    """(n, N) strictly increasing rows inside [0, target_len); returns (ids, target_len)."""
    ids = _as_int_array("ids", ids, 2)
    if ids.min() < 0:
        raise ValueError(f"ids must be >= 0, got min {ids.min()}")
    if target_len is None:
        target_len = int(ids.max()) + 1
    if isinstance(target_len, bool) or not isinstance(target_len, numbers.Integral) or target_len < 1:
        raise ValueError(f"target_len must be an integer >= 1, got {target_len!r}")
    target_len = int(target_len)
    _check_distance_len(target_len)
    if ids.max() >= target_len:
        raise ValueError(f"ids must lie in [0, target_len={target_len}), got max {ids.max()}")
    if ids.shape[1] > 1 and np.any(np.diff(ids, axis=1) <= 0):
        raise ValueError("ids rows must be strictly increasing (as every sampler returns them)")
    return ids, target_len


def _check_segments(segments: Segments) -> tuple[np.ndarray, ...]:
    """A non-empty Segments (valid by construction); return int64 (head_len, mid_start, mid_end, tail_len)."""
    if not isinstance(segments, Segments):
        raise ValueError(f"segments must be a creamviz.samplers.Segments, got {type(segments).__name__}; "
                         "for raw id arrays (RandPos) use the *_from_ids functions")
    if len(segments) == 0:
        raise ValueError("segments must hold at least one sample, got 0")
    _check_distance_len(segments.target_len)
    return tuple(np.asarray(getattr(segments, name)).astype(np.int64, copy=False)
                 for name in ("head_len", "mid_start", "mid_end", "tail_len"))


# --------------------------------------------------------------------------- brute force
def relative_distances(position_ids, *, convention: str = "i>=j") -> np.ndarray:
    """Sorted distinct relative distances of ONE position-id vector, by brute force over pairs.

    ``position_ids``: (N,) integers, any scheme (need not be increasing). ``convention``:
    ``"i>=j"`` (default, ``D_r = {p[i] - p[j] : i >= j}``, includes 0 from ``i == j``),
    ``"i>j"`` (strict pairs) or ``"all"`` (every ordered pair, signed).
    Returns an int64 array, sorted ascending. Works in row blocks of about ``BLOCK_ELEMENTS``
    differences; refuses ``N > MAX_BRUTE_LEN`` and id ranges wider than ``MAX_BITMAP / 2``.
    """
    _check_convention(convention)
    p = _as_int_array("position_ids", position_ids, 1)
    n = len(p)
    if n > MAX_BRUTE_LEN:
        raise ValueError(f"len(position_ids)={n} exceeds the brute-force limit MAX_BRUTE_LEN={MAX_BRUTE_LEN} "
                         "(N^2/2 pairs); use span_size / distance_counts on Segments instead")
    base = int(p.min())
    width = int(p.max()) - base  # distances lie in [-width, width]
    if 2 * width + 1 > MAX_BITMAP:
        raise ValueError(f"id range {width + 1} is too wide for the distance bitmap (limit {MAX_BITMAP // 2})")
    seen = np.zeros(2 * width + 1, dtype=bool)  # seen[d + width]
    rows_per_block = max(1, BLOCK_ELEMENTS // n)
    cols = np.arange(n)
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        diff = p[start:stop, None] - p[None, :]  # (rows, N): p[i] - p[j]
        if convention == "all":
            seen[diff.ravel() + width] = True
            continue
        rows = np.arange(start, stop)[:, None]
        keep = cols[None, :] <= rows if convention == "i>=j" else cols[None, :] < rows
        seen[diff[keep] + width] = True
    return np.flatnonzero(seen) - width


def span_size_from_ids(ids, *, convention: str = "i>=j") -> np.ndarray:
    """``|D_r|`` of every row of ``ids`` (n, N), brute force over all pairs, batched.

    Same definition as :func:`relative_distances` (``len(relative_distances(row))`` per row),
    vectorised over rows for the exhaustive audits. Rows need not be increasing. Returns (n,) int64.
    """
    _check_convention(convention)
    ids = _as_int_array("ids", ids, 2)
    n, big_n = ids.shape
    if big_n > MAX_BRUTE_LEN:
        raise ValueError(f"ids.shape[1]={big_n} exceeds the brute-force limit MAX_BRUTE_LEN={MAX_BRUTE_LEN}")
    width = int(ids.max() - ids.min())
    if 2 * width + 1 > MAX_BITMAP:
        raise ValueError(f"id range {width + 1} is too wide for the distance bitmap (limit {MAX_BITMAP // 2})")
    ii, jj = np.meshgrid(np.arange(big_n), np.arange(big_n), indexing="ij")
    keep = {"i>=j": ii >= jj, "i>j": ii > jj, "all": np.ones_like(ii, dtype=bool)}[convention]
    pi, pj = ii[keep], jj[keep]  # (pairs,) index pairs that count
    out = np.empty(n, dtype=np.int64)
    bins = 2 * width + 1
    rows_per_block = max(1, min(BLOCK_ELEMENTS // max(1, len(pi)), BLOCK_ELEMENTS // bins))
    for start in range(0, n, rows_per_block):
        block = ids[start:start + rows_per_block]  # (b, N)
        b = len(block)
        diff = block[:, pi] - block[:, pj] + width  # (b, pairs) in [0, 2 width]
        seen = np.zeros((b, bins), dtype=bool)
        seen[np.arange(b)[:, None], diff] = True
        out[start:start + b] = seen.sum(axis=1)
    return out


# --------------------------------------------------------------------------- closed form
def _chunks(n: int):
    """Row slices of at most CHUNK samples."""
    return (slice(start, min(n, start + CHUNK)) for start in range(0, n, CHUNK))


def _pieces(h, s, e, t, big_l: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Disjoint pieces of D_r as 4 (lo, hi) column pairs of (n,) int64 arrays; empty: hi < lo."""
    m = e - s + 1
    has_h, has_m, has_t = h > 0, m > 0, t > 0
    zero, none = np.zeros_like(h), np.full_like(h, -1)
    hm, mt, ht = has_h & has_m, has_m & has_t, has_h & has_t
    # (start, end) per interval; an absent interval is [0, -1], which covers nothing
    starts = [zero,  # within head / middle / tail merged: [0, W - 1]
              np.where(hm, s - h + 1, 0),  # head-middle
              np.where(mt, big_l - t - e, 0),  # middle-tail
              np.where(ht, big_l - t - h + 1, 0)]  # head-tail
    ends = [np.maximum(np.maximum(h, m), t) - 1,
            np.where(hm, e, none),
            np.where(mt, big_l - 1 - s, none),
            np.where(ht, big_l - 1, none)]
    # Sort by start for the sweep. Absent intervals ([0, -1]) cover nothing wherever they sit;
    # among present ones [0, W-1] starts first and head-tail last (its start L - L_t - L_h + 1
    # exceeds P_s - L_h + 1 and L - L_t - P_e in a valid layout), so one compare-swap remains.
    swap = starts[1] > starts[2]
    starts[1], starts[2] = np.minimum(starts[1], starts[2]), np.maximum(starts[1], starts[2])
    ends[1], ends[2] = np.where(swap, ends[2], ends[1]), np.where(swap, ends[1], ends[2])
    lows = []
    reach = none  # largest distance covered by the earlier intervals
    for start, end in zip(starts, ends, strict=True):  # sweep: keep what lies beyond `reach`
        lows.append(np.maximum(start, reach + 1))
        reach = np.maximum(reach, end)
    return lows, ends


def segment_intervals(head_len, mid_start, mid_end, tail_len, target_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The disjoint pieces of ``D_r`` (convention ``i>=j``) per sample, from raw layout arrays.

    Inputs are (n,) int arrays of a valid layout (see :class:`Segments`) and ``L``. Returns
    ``(lo, hi)``, each (n, 4) int64: piece ``c`` of sample ``i`` is ``[lo[i, c], hi[i, c]]``;
    empty pieces have ``hi < lo``. The non-empty pieces are pairwise disjoint and in increasing
    order, so ``|D_r| = sum(max(0, hi - lo + 1))``.
    """
    h, s, e, t = (np.asarray(a, dtype=np.int64) for a in (head_len, mid_start, mid_end, tail_len))
    lows, highs = _pieces(h, s, e, t, int(target_len))
    return np.stack(lows, axis=1), np.stack(highs, axis=1)


def span_size(segments: Segments, *, convention: str = "i>=j") -> np.ndarray:
    """``|D_r|`` of every sample of ``segments`` in closed form: (n,) int64, O(1) per sample.

    The union of the six integer intervals (module docstring); equals
    ``len(relative_distances(ids_i, convention=convention))`` for every sample ``i``.
    ``"i>j"`` gives ``|D_r| - 1`` and ``"all"`` gives ``2 |D_r| - 1`` (ids strictly increase).
    Empty segments (PoSE's tail, the contiguous baseline's middle and tail) are handled.
    """
    _check_convention(convention)
    head_len, mid_start, mid_end, tail_len = _check_segments(segments)
    size = np.zeros(len(head_len), dtype=np.int64)  # (n,)
    for rows in _chunks(len(head_len)):
        lows, highs = _pieces(head_len[rows], mid_start[rows], mid_end[rows], tail_len[rows], segments.target_len)
        for lo, hi in zip(lows, highs, strict=True):
            size[rows] += np.maximum(hi - lo + 1, 0)
    if convention == "i>j":
        return size - 1
    if convention == "all":
        return 2 * size - 1
    return size


def distance_counts(segments: Segments) -> np.ndarray:
    """How many samples contain each distance ``d in [0, L)`` in their ``D_r``: (L,) int64.

    Difference array over the disjoint pieces of every sample: O(n + L), no per-sample loop.
    """
    head_len, mid_start, mid_end, tail_len = _check_segments(segments)
    big_l = segments.target_len
    delta = np.zeros(big_l + 1, dtype=np.int64)  # (L + 1,) difference array
    for rows in _chunks(len(head_len)):
        lows, highs = _pieces(head_len[rows], mid_start[rows], mid_end[rows], tail_len[rows], big_l)
        lo, hi = np.concatenate(lows), np.concatenate(highs)  # (4 * chunk,) pieces
        keep = hi >= lo
        delta += np.bincount(lo[keep], minlength=big_l + 1)  # +1 where a piece starts
        delta -= np.bincount(hi[keep] + 1, minlength=big_l + 1)  # -1 just after it ends
    return np.cumsum(delta[:big_l])


# --------------------------------------------------------------------------- raw ids (RandPos)
def _fft_blocks(ids: np.ndarray, target_len: int, max_work: int):
    """Yield ``(start, has)``: ``has[b, d]`` is True iff ``d in D_r`` of row ``start + b``.

    ``has`` is the autocorrelation of the row's 0/1 indicator over [0, L) (number of pairs at
    distance d), computed with a real FFT of length >= 2L and rounded: exact, since the values
    are integers <= N and float64 round-off stays far below 0.5 at these sizes.
    """
    n, _ = ids.shape
    if n * target_len > max_work:
        raise ValueError(f"n * target_len = {n * target_len} exceeds the FFT work limit max_work={max_work}; "
                         "pass fewer samples")
    nfft = scipy.fft.next_fast_len(2 * target_len, real=True)
    rows_per_block = max(1, BLOCK_ELEMENTS // nfft)
    for start in range(0, n, rows_per_block):
        block = ids[start:start + rows_per_block]  # (b, N)
        b = len(block)
        indicator = np.zeros((b, target_len), dtype=np.float64)
        indicator[np.arange(b)[:, None], block] = 1.0
        spec = scipy.fft.rfft(indicator, n=nfft, axis=1)
        auto = scipy.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=nfft, axis=1)[:, :target_len]
        yield start, auto > 0.5  # (b, L)


def distance_counts_from_ids(ids, target_len: int | None = None, *, max_work: int = MAX_FFT_WORK) -> np.ndarray:
    """:func:`distance_counts` for raw ids (n, N) with strictly increasing rows (e.g. RandPos).

    Exact, by FFT autocorrelation per row in blocks: O(n L log L) time, bounded memory; refuses
    ``n * L > max_work``. ``target_len`` defaults to ``ids.max() + 1``. Returns (L,) int64.
    """
    ids, big_l = _check_ids(ids, target_len)
    counts = np.zeros(big_l, dtype=np.int64)
    for _, has in _fft_blocks(ids, big_l, max_work):
        counts += has.sum(axis=0)
    return counts


# --------------------------------------------------------------------------- coverage curves
def _range_min_assign(lo: np.ndarray, hi: np.ndarray, value: np.ndarray, size: int, fill: int) -> np.ndarray:
    """``out[d] = min(value[k] for pieces k with lo[k] <= d <= hi[k])`` (``fill`` if none): (size,).

    Sparse-table trick: a piece of length ``len`` is covered by two aligned-length blocks of
    size ``2^floor(log2 len)``; block minima are recorded per level and pushed down level by level.
    O(pieces + size log size), vectorised.
    """
    levels = max(1, int(size).bit_length())
    dtype = np.int32 if max(fill, int(value.max(initial=0))) < np.iinfo(np.int32).max else np.int64
    table = np.full((levels, size), fill, dtype=dtype)  # (levels, L): half the memory in int32
    value = value.astype(dtype)
    length = hi - lo + 1
    k = np.floor(np.log2(length)).astype(np.int64)
    k -= (np.left_shift(1, k) > length)  # guard against float rounding of log2
    k += (np.left_shift(1, k + 1) <= length)
    flat = table.reshape(-1)
    np.minimum.at(flat, k * size + lo, value)
    np.minimum.at(flat, k * size + hi - np.left_shift(1, k) + 1, value)
    for level in range(levels - 1, 0, -1):
        half = 1 << (level - 1)
        np.minimum(table[level - 1], table[level], out=table[level - 1])
        np.minimum(table[level - 1, half:], table[level, :size - half], out=table[level - 1, half:])
    return table[0].astype(np.int64)


def first_covering_sample(segments: Segments) -> np.ndarray:
    """Index of the first sample whose ``D_r`` contains ``d``, for each ``d in [0, L)``: (L,) int64.

    ``n`` (the number of samples) where no sample contains ``d``.
    """
    head_len, mid_start, mid_end, tail_len = _check_segments(segments)
    big_l, n = segments.target_len, len(head_len)
    _check_distance_len(big_l, levels=True)
    lo, hi = segment_intervals(head_len, mid_start, mid_end, tail_len, big_l)
    sample = np.broadcast_to(np.arange(n, dtype=np.int64)[:, None], lo.shape)
    keep = hi >= lo
    return _range_min_assign(lo[keep], hi[keep], sample[keep], big_l, n)


def first_covering_sample_from_ids(ids, target_len: int | None = None, *,
                                   max_work: int = MAX_FFT_WORK) -> np.ndarray:
    """:func:`first_covering_sample` for raw ids (n, N) with strictly increasing rows: (L,) int64."""
    ids, big_l = _check_ids(ids, target_len)
    n = len(ids)
    first = np.full(big_l, n, dtype=np.int64)
    for start, has in _fft_blocks(ids, big_l, max_work):
        hit = has.any(axis=0)
        new = hit & (first == n)  # blocks come in order, so the first hit is the smallest index
        first[new] = start + np.argmax(has[:, new], axis=0)
    return first


def coverage_curve(samples: Segments | np.ndarray, target_len: int | None = None) -> np.ndarray:
    """Fraction of ``[0, L)`` covered by the union of ``D_r`` after ``1, 2, ..., n`` samples: (n,).

    ``samples``: a :class:`Segments` (closed form) or raw ids (n, N) (FFT path, e.g. RandPos;
    then ``target_len`` is L, default ``ids.max() + 1``). Non-decreasing, values in (0, 1].
    """
    if isinstance(samples, Segments):
        if target_len is not None and target_len != samples.target_len:
            raise ValueError(f"target_len={target_len} disagrees with segments.target_len={samples.target_len}")
        first, n, big_l = first_covering_sample(samples), len(samples), samples.target_len
    else:
        ids, big_l = _check_ids(samples, target_len)
        first, n = first_covering_sample_from_ids(ids, big_l), len(ids)
    new_per_sample = np.bincount(first[first < n], minlength=n)  # (n,) distances first seen at sample k
    return np.cumsum(new_per_sample) / big_l


def distance_frequency(samples: Segments | np.ndarray, target_len: int | None = None) -> np.ndarray:
    """Fraction of samples whose ``D_r`` contains ``d``, for each ``d in [0, L)``: (L,) float64."""
    if isinstance(samples, Segments):
        if target_len is not None and target_len != samples.target_len:
            raise ValueError(f"target_len={target_len} disagrees with segments.target_len={samples.target_len}")
        return distance_counts(samples) / len(samples)
    ids, big_l = _check_ids(samples, target_len)
    return distance_counts_from_ids(ids, big_l) / len(ids)


def bin_mean(values, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Average a (L,) per-distance array over ``n_bins`` equal bins for plotting.

    Returns ``(centers, means)``, each (n_bins,) (fewer if ``L < n_bins``): bin centre in
    distance units and the mean value inside the bin.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {values.shape}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1, got {n_bins!r}")
    edges = bin_edges(len(values), min(int(n_bins), len(values)))
    return (edges[:-1] + edges[1:] - 1) / 2.0, rebin(values, edges)
