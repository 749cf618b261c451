"""Position-id samplers: CREAM (reference recipe and variants) and its peers.

Every sampler turns a window of ``train_len`` (N) tokens into strictly increasing position ids
inside ``[0, target_len)`` (``[0, L)``). Segment-structured samplers (all but RandPos) return a
:class:`Segments`: per sample a head ``[0, L_h)``, a middle ``[P_s, P_e]`` (``P_e`` inclusive,
``L_m = P_e - P_s + 1``) and a tail ``[L - L_t, L)``, with ``L_h + L_m + L_t = N``.

Everything is vectorised over the number of samples ``n``; randomness comes only from the
``seed`` argument (an int or a ``np.random.Generator``), never from a global RNG.

The registry follows transformers' ``ROPE_INIT_FUNCTIONS``: one class per scheme with one shared
constructor signature ``(train_len, target_len, **params)``, collected in :data:`SAMPLERS`.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import stats

__all__ = [
    "Segments",
    "CreamSampler",
    "PoseSampler",
    "RandPosSampler",
    "ContiguousSampler",
    "SAMPLERS",
    "make_sampler",
    "MIDDLE_MODES",
    "CONTINUITY",
    "RELATIVITY",
]

CONTINUITY = 0  # branch code: L_h = L_t = k
RELATIVITY = 1  # branch code: L_h = L_t = floor(N / 3)
MIDDLE_MODES = ("reference", "truncnorm", "uniform")
REFERENCE_GRID_SIZE = 1000  # points of the official linspace(2, 2*factor, 1000) grid
RAND_FACTOR_CELLS = 1 << 16  # cells of the u -> rand_factor lookup table
SAMPLE_CHUNK = 1 << 15  # samples drawn per chunk in CreamSampler.sample (cache-sized)
IDS_BLOCK_ELEMENTS = 1 << 17  # ids built per block in Segments.position_ids (1 MiB of int64)
MAX_IDS_ELEMENTS = 2**31  # refuse to materialise more ids than this (16 GiB of int64)


# --------------------------------------------------------------------------- validation helpers
def _check_int(name: str, value: Any, low: int, high: int | None = None, hint: str = "") -> int:
    """Return ``value`` as an int or raise a ValueError naming the parameter and the range."""
    rng = f"[{low}, {high}]" if high is not None else f">= {low}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer {rng}{hint}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}={value} is out of range: valid is {rng}{hint}")
    return value


def _check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the range or raise a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    lo_txt = "-inf" if low is None else f"{low:g}"
    hi_txt = "inf" if high is None else f"{high:g}"
    rng = f"{'(' if low_open or low is None else '['}{lo_txt}, {hi_txt}{']' if high is not None else ')'}"
    bad = not np.isfinite(value)
    bad |= low is not None and (value <= low if low_open else value < low)
    bad |= high is not None and value > high
    if bad:
        raise ValueError(f"{name}={value:g} is out of range: valid is {rng}")
    return value


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        _check_int("seed", seed, low=0)
    return np.random.default_rng(seed)


def _check_n(n: Any) -> int:
    return _check_int("n", n, low=1)


# --------------------------------------------------------------------------- the data container
@dataclass(frozen=True)
class Segments:
    """``n`` sampled position vectors in head / middle / tail form (all arrays of shape ``(n,)``).

    Position ids of sample ``i`` are ``[0, head_len)`` then ``[mid_start, mid_end]`` (inclusive)
    then ``[target_len - tail_len, target_len)``. A segment may be empty for non-CREAM samplers
    (length 0; an empty middle has ``mid_end == mid_start - 1``).
    """

    head_len: np.ndarray  # (n,) L_h
    mid_start: np.ndarray  # (n,) P_s
    mid_end: np.ndarray  # (n,) P_e, inclusive
    tail_len: np.ndarray  # (n,) L_t
    branch: np.ndarray  # (n,) 0 continuity, 1 relativity, -1 not applicable
    train_len: int  # N
    target_len: int  # L
    rand_factor: np.ndarray | None = None  # (n,) CREAM's integer rand_factor, -1 where unused
    extras: dict = field(default_factory=dict)  # free-form per-sampler metadata

    def __post_init__(self) -> None:
        shapes = {a.shape for a in (self.head_len, self.mid_start, self.mid_end, self.tail_len, self.branch)}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"Segments arrays must all have the same shape (n,), got {shapes}")

    def __len__(self) -> int:
        return int(self.head_len.shape[0])

    @property
    def mid_len(self) -> np.ndarray:
        """``L_m = P_e - P_s + 1`` per sample, shape (n,)."""
        return self.mid_end - self.mid_start + 1

    @property
    def tail_start(self) -> np.ndarray:
        """First tail id ``L - L_t`` per sample, shape (n,)."""
        return self.target_len - self.tail_len

    def __getitem__(self, idx) -> Segments:
        """Row selection (int, slice, mask or index array) keeping the Segments form."""
        if isinstance(idx, numbers.Integral):
            idx = slice(int(idx), int(idx) + 1 if int(idx) != -1 else None)
        rf = None if self.rand_factor is None else self.rand_factor[idx]
        return Segments(self.head_len[idx], self.mid_start[idx], self.mid_end[idx],
                        self.tail_len[idx], self.branch[idx], self.train_len, self.target_len,
                        rf, dict(self.extras))

    def position_ids(self) -> np.ndarray:
        """Materialise the ids: ``(n, train_len)`` int64, row ``i`` strictly increasing.

        id[j] = j + offset, with offset 0 in the head, ``P_s - L_h`` in the middle and ``L - N``
        in the tail: the offsets are ``np.repeat``-ed per row block (cache-sized) and added to
        ``0 .. N-1`` in place, about two memory passes whatever the layouts (CREAM, PoSE, …).
        """
        n, big_n, big_l = len(self), self.train_len, self.target_len
        if n * big_n > MAX_IDS_ELEMENTS:
            raise ValueError(f"n * train_len = {n * big_n} ids exceed the limit {MAX_IDS_ELEMENTS}; "
                             "materialise fewer samples at a time (slice the Segments)")
        out = np.empty((n, big_n), dtype=np.int64)
        cols = np.arange(big_n, dtype=np.int64)
        offsets = np.stack([np.zeros(n, np.int64), self.mid_start - self.head_len,
                            np.full(n, big_l - big_n, np.int64)], axis=1)  # (n, 3)
        lengths = np.stack([self.head_len, self.mid_len, self.tail_len], axis=1)  # (n, 3)
        rows = max(1, IDS_BLOCK_ELEMENTS // big_n)
        for start in range(0, n, rows):  # row blocks, not samples one by one
            stop = min(n, start + rows)
            block = np.repeat(offsets[start:stop].ravel(), lengths[start:stop].ravel())
            np.add(block.reshape(stop - start, big_n), cols, out=out[start:stop])
        return out


# --------------------------------------------------------------------------- samplers
class _Sampler:
    """Shared interface: ``sample(n, seed) -> Segments`` and ``position_ids(n, seed)``."""

    name: ClassVar[str] = ""
    has_segments: ClassVar[bool] = True

    def __init__(self, train_len: int, target_len: int) -> None:
        self.train_len = _check_int("train_len", train_len, low=self._min_train_len)
        self.target_len = _check_int("target_len", target_len, low=self.train_len + 1,
                                     hint=" (must exceed train_len)")

    _min_train_len: ClassVar[int] = 2

    @property
    def factor(self) -> float:
        """``L / N``."""
        return self.target_len / self.train_len

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the sampler with :func:`make_sampler`."""
        return {"train_len": self.train_len, "target_len": self.target_len}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        raise NotImplementedError

    def position_ids(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """``(n, train_len)`` int64 ids, each row strictly increasing inside ``[0, target_len)``."""
        return self.sample(n, seed).position_ids()


class CreamSampler(_Sampler):
    """CREAM: head ``[0, L_h)``, a Gaussian-placed middle ``[P_s, P_e]``, tail ``[L - L_t, L)``.

    Parameters
    ----------
    train_len : N, tokens per training window (>= 3).
    target_len : L, the target context length (> N; a multiple of N in ``middle="reference"``).
    k : head/tail length of the *continuity* branch; default ``4 * factor`` (``4 L // N``).
        Valid: ``1 <= k <= (N - 1) // 2`` so the middle keeps at least one token.
    mu, sigma : mean (default ``1 + factor``) and scale (default 3) of the Gaussian over
        ``rand_factor`` on the axis ``[2, 2 * factor]``.
    p_continuity : probability of the continuity branch (``L_h = L_t = k``); otherwise
        relativity (``L_h = L_t = N // 3``).
    middle : ``"reference"`` — the official recipe bit for bit: ``u ~ U(0,1)``,
        ``rand_factor = int(interp(u, Phi((x - mu)/sigma), x))`` on ``x = linspace(2, 2f, 1000)``
        (a *clipped* Gaussian: mass outside the grid piles on its ends), then
        ``P_e ~ U{lo .. hi}`` with ``lo = int(L_h + (L_m - 1) * rf/2)``, ``hi = rf/2 * N - L_t - 1``
        (``hi`` floored when ``rf * N`` is odd);
        ``"truncnorm"`` — same axis, ``rand_factor`` from a renormalised truncated normal
        (``scipy.stats.truncnorm``), no end pile-up;
        ``"uniform"`` — ``P_e`` uniform over every feasible value ``[L_h + L_m - 1, L - L_t - 1]``.
    branch_block : consecutive samples that share one branch draw. 1 (default) draws per
        sample; the official script draws once per 3000-example preprocessing batch.
    """

    name = "cream"
    _min_train_len = 3

    def __init__(self, train_len: int, target_len: int, *, k: int | None = None,
                 mu: float | None = None, sigma: float = 3.0, p_continuity: float = 0.5,
                 middle: str = "reference", branch_block: int = 1) -> None:
        super().__init__(train_len, target_len)
        if not isinstance(middle, str) or middle not in MIDDLE_MODES:
            raise ValueError(f"middle={middle!r} is not a middle mode; valid: {', '.join(MIDDLE_MODES)}")
        self.middle = middle
        big_n, big_l = self.train_len, self.target_len
        if middle == "reference" and big_l % big_n:
            raise ValueError(
                f"target_len={big_l} must be a multiple of train_len={big_n} in middle='reference' "
                f"(factor L/N = {big_l / big_n:g} is not an integer; valid: L = m*N for m >= 2); "
                "use middle='truncnorm' or 'uniform' for non-integer factors")
        self.k = (4 * big_l) // big_n if k is None else k
        self.k = _check_int("k", self.k, low=1, high=(big_n - 1) // 2,
                            hint=f" for train_len={big_n} (the middle needs >= 1 token)")
        self.mu = 1.0 + self.factor if mu is None else _check_real("mu", mu)
        self.sigma = _check_real("sigma", sigma, low=0.0, low_open=True)
        self.p_continuity = _check_real("p_continuity", p_continuity, low=0.0, high=1.0)
        self.branch_block = _check_int("branch_block", branch_block, low=1)
        self._mu_default, self._k_default = mu is None, k is None

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "k": self.k, "mu": self.mu, "sigma": self.sigma,
                "p_continuity": self.p_continuity, "middle": self.middle,
                "branch_block": self.branch_block}

    # ---- rand_factor ------------------------------------------------------------------------
    @functools.cached_property
    def rand_factor_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The official grid ``x = linspace(2, 2*factor, 1000)`` and ``Phi((x - mu)/sigma)``."""
        x = np.linspace(2.0, 2.0 * self.factor, REFERENCE_GRID_SIZE)
        return x, stats.norm.cdf((x - self.mu) / self.sigma)

    def _truncnorm(self):
        lo, hi = 2.0, 2.0 * self.factor
        return stats.truncnorm((lo - self.mu) / self.sigma, (hi - self.mu) / self.sigma,
                               loc=self.mu, scale=self.sigma)

    def _rand_factor_exact(self, u: np.ndarray) -> np.ndarray:
        """The definition, evaluated directly (slow path, also the oracle for the table)."""
        if self.middle == "reference":
            x, cdf = self.rand_factor_grid
            return np.interp(u, cdf, x).astype(np.int64)  # np.interp clamps; astype truncates
        return self._truncnorm().ppf(u).astype(np.int64)

    @functools.cached_property
    def _rand_factor_table(self) -> np.ndarray:
        """``u -> rand_factor`` is a step function: tabulate it on 2**16 cells of [0, 1).

        A cell gets the common value of both (slightly widened) ends, or -1 when a step falls
        inside it; those few samples go through the exact definition, so results are identical
        to evaluating ``int(interp(u, cdf, x))`` sample by sample.
        """
        edges = np.arange(RAND_FACTOR_CELLS + 1) / RAND_FACTOR_CELLS
        left = self._rand_factor_exact(np.clip(edges[:-1] - 1e-12, 0.0, None))
        right = self._rand_factor_exact(np.minimum(edges[1:] + 1e-12, 1.0))
        return np.where(left == right, left, -1)

    def rand_factor_from_u(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms ``u`` in [0, 1) to integer ``rand_factor`` (int64, same shape as ``u``)."""
        if self.middle == "uniform":
            raise ValueError("rand_factor is not used by middle='uniform'")
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 1:
            return self.rand_factor_from_u(u.reshape(-1)).reshape(u.shape)
        rand_factor = self._rand_factor_table[(u * RAND_FACTOR_CELLS).astype(np.intp)]
        steps = np.flatnonzero(rand_factor < 0)
        if steps.size:
            rand_factor[steps] = self._rand_factor_exact(u[steps])
        return rand_factor

    def rand_factor_pmf(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact distribution of ``rand_factor``: ``(values, probabilities)``.

        Reference: ``u -> interp(u, cdf, x)`` is monotone, so ``rand_factor = r`` exactly for
        ``u`` in ``[t_r, t_{r+1})`` with ``t_r = interp(r, x, cdf)`` (the inverse of a
        piecewise-linear map); ``t_2 = 0`` and the clipped upper tail gives
        ``P(rf = 2f) = 1 - cdf[-1]``. Truncnorm: differences of its CDF at the integers.
        """
        if self.middle == "uniform":
            raise ValueError("rand_factor is not used by middle='uniform'")
        top = 2.0 * self.factor
        values = np.arange(2, int(np.floor(top)) + 1)
        if self.middle == "reference":
            x, cdf = self.rand_factor_grid
            edges = np.interp(values.astype(float), x, cdf)
            edges[0] = 0.0
            edges = np.append(edges, 1.0)
            # rf = 2f only when interp hits the grid end exactly, i.e. u >= cdf[-1]
            edges[-2] = cdf[-1]
        else:
            edges = self._truncnorm().cdf(np.append(values, values[-1] + 1).astype(float))
            edges[-1] = 1.0
        return values, np.diff(edges)

    # ---- sampling ---------------------------------------------------------------------------
    def segment_lengths(self, branch: np.ndarray) -> np.ndarray:
        """``L_h = L_t`` for each branch code: k for continuity, ``N // 3`` for relativity."""
        return np.where(branch == CONTINUITY, self.k, self.train_len // 3).astype(np.int64)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        """Draw ``n`` CREAM layouts.

        Draw order (fixed, for reproducibility): with ``branch_block > 1`` first one branch
        uniform per block; then, per chunk of ``SAMPLE_CHUNK`` samples, the branch uniforms (when
        ``branch_block == 1``), the uniforms ``u`` for rand_factor, and the uniforms placing ``P_e``.
        """
        n = _check_n(n)
        rng = _rng(seed)
        big_n, big_l = self.train_len, self.target_len
        if self.branch_block > 1:
            blocks = rng.random(-(-n // self.branch_block)) >= self.p_continuity
            branch = np.repeat(blocks, self.branch_block)[:n].astype(np.int64)
        else:
            branch = np.empty(n, dtype=np.int64)
        # (L_h = L_t, L_m) take two values only, and rand_factor a few: every per-sample quantity
        # is a table lookup into (branch, rand_factor) tables.
        edge_of = self.segment_lengths(np.array([CONTINUITY, RELATIVITY]))  # (2,)
        chunk_of = big_n - 2 * edge_of  # L_m, (2,)
        if self.middle == "uniform":
            n_values = 1
            lo_of = edge_of + chunk_of - 1  # the middle right after the head
            hi_of = big_l - edge_of - 1  # the middle right before the tail
        else:
            values = np.arange(int(2 * self.factor) + 1)  # possible rand_factor values (and below)
            n_values = len(values)
            # integer forms of int(L_h + (L_m - 1) * rf / 2) and floor(rf / 2 * N - L_t - 1)
            lo_of = (edge_of[:, None] + ((chunk_of[:, None] - 1) * values) // 2).ravel()
            hi_of = ((values * big_n) // 2 - edge_of[:, None] - 1).ravel()
        count_of = (hi_of - lo_of + 1).astype(np.float64)
        rand_factor = np.full(n, -1, dtype=np.int64)
        head_len, mid_start, mid_end = (np.empty(n, dtype=np.int64) for _ in range(3))
        # chunks keep every intermediate array in cache (about 2x faster than whole-array passes)
        for start in range(0, n, SAMPLE_CHUNK):
            stop = min(n, start + SAMPLE_CHUNK)
            if self.branch_block == 1:
                np.greater_equal(rng.random(stop - start), self.p_continuity, out=branch[start:stop],
                                 casting="unsafe")  # 0 continuity, 1 relativity
            br = branch[start:stop]
            code = br * n_values
            if self.middle != "uniform":
                rand_factor[start:stop] = self.rand_factor_from_u(rng.random(stop - start))
                code += rand_factor[start:stop]
            # P_e uniform on lo..hi: floor(v * count), v ~ U[0, 1) (relative bias < 2**-40 here)
            offset = rng.random(stop - start)
            offset *= count_of[code]
            np.add(lo_of[code], offset.astype(np.int64), out=mid_end[start:stop])
            np.subtract(mid_end[start:stop], (chunk_of - 1)[br], out=mid_start[start:stop])
            np.take(edge_of, br, out=head_len[start:stop])
        return Segments(head_len=head_len, mid_start=mid_start, mid_end=mid_end, tail_len=head_len.copy(),
                        branch=branch, train_len=big_n, target_len=big_l, rand_factor=rand_factor)


class PoseSampler(_Sampler):
    """PoSE (official repository, current version): two chunks, the second skipped by ``rt``.

    ``rt1 ~ U{1 .. (N+1)//2}``, ``rt ~ U{0 .. L-N}`` (both ends included, as Python's
    ``random.randint``); ids ``[0, rt1)`` then ``[rt1 + rt, N + rt)``. In :class:`Segments` the
    first chunk is the head, the second the middle, and the tail is empty.
    """

    name = "pose"

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        n = _check_n(n)
        rng = _rng(seed)
        big_n, big_l = self.train_len, self.target_len
        rt1 = rng.integers(1, (big_n + 1) // 2, size=n, endpoint=True)
        rt = rng.integers(0, big_l - big_n, size=n, endpoint=True)
        return Segments(head_len=rt1, mid_start=rt1 + rt, mid_end=big_n + rt - 1,
                        tail_len=np.zeros(n, np.int64), branch=np.full(n, -1, np.int64),
                        train_len=big_n, target_len=big_l)


class ContiguousSampler(_Sampler):
    """Plain fine-tuning / position interpolation: ids ``0 .. N-1`` (all in the head)."""

    name = "contiguous"
    _min_train_len = 1

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        n = _check_n(n)
        big_n = self.train_len
        full = np.full(n, big_n, dtype=np.int64)
        return Segments(head_len=full, mid_start=full.copy(), mid_end=full - 1,
                        tail_len=np.zeros(n, np.int64), branch=np.full(n, -1, np.int64),
                        train_len=big_n, target_len=self.target_len)


class RandPosSampler(_Sampler):
    """RandPos: N distinct integers uniform without replacement from ``[0, L)``, sorted.

    No segment structure: :meth:`sample` raises; use :meth:`position_ids`. Rows are drawn as the
    N smallest of L i.i.d. random keys (an exact uniform N-subset), in row blocks that bound
    memory to about ``block_elements`` keys at a time.
    """

    name = "randpos"
    has_segments = False
    _min_train_len = 1
    block_elements = 1 << 23  # random keys held at once (64 MiB of float64)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        raise ValueError("RandPos has no head/middle/tail structure; call position_ids(n, seed)")

    def position_ids(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        n = _check_n(n)
        rng = _rng(seed)
        big_n, big_l = self.train_len, self.target_len
        out = np.empty((n, big_n), dtype=np.int64)
        rows_per_block = max(1, self.block_elements // big_l)
        for start in range(0, n, rows_per_block):  # blocks of rows, not samples one by one
            stop = min(n, start + rows_per_block)
            keys = rng.random((stop - start, big_l))
            picked = np.argpartition(keys, big_n - 1, axis=1)[:, :big_n] if big_n < big_l else \
                np.broadcast_to(np.arange(big_l), (stop - start, big_l))
            out[start:stop] = np.sort(picked, axis=1)
        return out


SAMPLERS: dict[str, type[_Sampler]] = {
    "cream": CreamSampler,
    "pose": PoseSampler,
    "randpos": RandPosSampler,
    "contiguous": ContiguousSampler,
}


def make_sampler(name: str, **params: Any) -> _Sampler:
    """Build a sampler by registry name, e.g. ``make_sampler("cream", train_len=256, target_len=2048)``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(sorted(SAMPLERS))}")
    cls = SAMPLERS[name]
    try:
        return cls(**params)
    except TypeError as err:  # unexpected/missing keyword: say which are accepted
        import inspect

        accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        raise ValueError(f"bad parameters for sampler {name!r}: {err}; accepted: {', '.join(accepted)}") from None
