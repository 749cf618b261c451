"""Position-id samplers: CREAM (reference recipe and variants) and its peers.

Every sampler turns a window of ``train_len`` (N) tokens into strictly increasing position ids
inside ``[0, target_len)`` (``[0, L)``). Segment-structured samplers (all but RandPos) return a
:class:`Segments`: per sample a head ``[0, L_h)``, a middle ``[P_s, P_e]`` (``P_e`` inclusive,
``L_m = P_e - P_s + 1``) and a tail ``[L - L_t, L)``, with ``L_h + L_m + L_t = N``.

Everything is vectorised over the number of samples ``n``; randomness comes only from the
``seed`` argument (an int or a ``np.random.Generator``), never from a global RNG.

The registry follows transformers' ``ROPE_INIT_FUNCTIONS``: one class per scheme with one shared
constructor signature ``(train_len, target_len, **params)``, collected in :data:`SAMPLERS`. Each
scheme declares its parameters once (:class:`Param` in ``Sampler.parameters``); validation, run
metadata, the CLI flags and the widgets' controls are all built from that declaration. Add your
own scheme with :class:`Sampler` + :func:`register_sampler` (docs/custom_sampler.md).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import stats

from creamviz.validation import check_int, check_real

__all__ = [
    "Segments",
    "Param",
    "Sampler",
    "register_sampler",
    "unregister_sampler",
    "sampler_parameters",
    "load_sampler_plugins",
    "check_n",
    "check_position_ids",
    "make_rng",
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
MAX_IDS_ELEMENTS = 1 << 28  # refuse to materialise more ids than this (2 GiB of int64)
MAX_SAMPLES = 1 << 26  # refuse to draw more layouts per call (about 2 GiB of per-sample arrays)
MAX_TARGET_LEN = 1 << 53  # L bound: placements use float64 arithmetic, exact below 2**53
MAX_RAND_FACTOR_FACTOR = 1 << 16  # largest L / N with a rand_factor (tables hold 2 L / N values)
INT32_SAFE = 1 << 30  # Segments use int32 when L stays below this (sums of two ids cannot overflow)
RANDPOS_MAX_TARGET_LEN = 1 << 26  # RandPos holds L random keys per sample (512 MiB of float64)
TRUNCNORM_MIN_WIDTH = 1e-9  # truncnorm axis [2, 2f] in units of sigma below which the law is refused
RANDPOS_MAX_KEYS = 1 << 30  # n * L random keys per call (about 10 s on one core)


# --------------------------------------------------------------------------- validation helpers




def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from an int seed, a Generator (used as is) or None (fresh entropy)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        check_int("seed", seed, low=0)
    return np.random.default_rng(seed)


def _check_n(n: Any) -> int:
    return check_int("n", n, low=1, high=MAX_SAMPLES,
                      hint=" (draw more in several calls; each call holds a few arrays of n integers)")


def _index_dtype(target_len: int) -> type:
    """int32 when every id and every sum of two ids fits, else int64."""
    return np.int32 if target_len < INT32_SAFE else np.int64


def _check_ids_size(n: int, big_n: int) -> None:
    """Refuse an (n, N) int64 id matrix above MAX_IDS_ELEMENTS, naming the estimate."""
    if n * big_n > MAX_IDS_ELEMENTS:
        raise ValueError(f"n * train_len = {n} * {big_n} = {n * big_n} ids ({n * big_n * 8 / 2**30:.1f} GiB "
                         f"of int64) exceed the limit {MAX_IDS_ELEMENTS} ({MAX_IDS_ELEMENTS * 8 / 2**30:.0f} GiB); "
                         "materialise fewer samples at a time (slice the Segments, or call with a smaller n)")


check_n = _check_n  # public: a sampler's `n` argument as an int >= 1, or a ValueError


def check_position_ids(ids: Any, n: int, train_len: int, target_len: int, *, sampler: str = "sampler") -> np.ndarray:
    """The boundary check on every sampler's output (built-in and plugin): ``ids`` must be an
    ``(n, N)`` integer array with every row strictly increasing inside ``[0, L)``; returns it as
    int64, else a ValueError naming ``sampler``, the first bad row and what is wrong.

    Cost: one pass over the ids in row blocks (``np.diff`` of a block), no copy of the whole matrix."""
    arr = np.asarray(ids)
    if arr.shape != (n, train_len):
        raise ValueError(f"sampler {sampler!r} returned position ids of shape {arr.shape}; valid is "
                         f"(n, train_len) = ({n}, {train_len})")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"sampler {sampler!r} returned position ids of dtype {arr.dtype}; valid is an "
                         f"integer dtype")
    rows = max(1, IDS_BLOCK_ELEMENTS // max(1, train_len))
    for start in range(0, n, rows):
        block = arr[start:start + rows]
        bad = (block[:, 0] < 0) | (block[:, -1] >= target_len)
        if train_len > 1:
            bad |= np.any(np.diff(block, axis=1) <= 0, axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = block[i]
            what = (f"id {int(row.min())} < 0" if row.min() < 0 else
                    f"id {int(row.max())} >= target_len={target_len}" if row.max() >= target_len else
                    "ids not strictly increasing (repeated or decreasing)")
            raise ValueError(f"sampler {sampler!r} returned invalid position ids in row {start + i}: {what}; "
                             f"valid: each row strictly increasing in [0, target_len={target_len})")
    return arr.astype(np.int64, copy=False)


def _checked_position_ids(method: Callable) -> Callable:
    """Wrap a sampler class's ``position_ids`` with :func:`check_position_ids` (see ``__init_subclass__``)."""
    @functools.wraps(method)
    def position_ids(self, n, seed=None, *args, **kwargs):
        ids = method(self, n, seed, *args, **kwargs)
        return check_position_ids(ids, _check_n(n), self.train_len, self.target_len, sampler=self.name)

    position_ids._checked = True
    return position_ids


def _checked_sample(method: Callable) -> Callable:
    """Wrap a sampler class's ``sample``: the Segments must hold n layouts of the sampler's N and L."""
    @functools.wraps(method)
    def sample(self, n, seed=None, *args, **kwargs):
        seg = method(self, n, seed, *args, **kwargs)
        if not isinstance(seg, Segments):
            raise ValueError(f"sampler {self.name!r}.sample returned {type(seg).__name__}; valid is a Segments")
        if (len(seg), seg.train_len, seg.target_len) != (_check_n(n), self.train_len, self.target_len):
            raise ValueError(f"sampler {self.name!r}.sample returned {len(seg)} layouts of train_len="
                             f"{seg.train_len}, target_len={seg.target_len}; valid is n={n} layouts of "
                             f"train_len={self.train_len}, target_len={self.target_len}")
        return seg

    sample._checked = True
    return sample
make_rng = _rng  # public: a np.random.Generator from a sampler's `seed` argument


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
        """Validate the layout: a Segments always materialises into valid ids.

        Checks shapes and integer dtypes, ``L_h, L_m, L_t >= 0``, ``L_h + L_m + L_t = N`` and that
        the three pieces are ordered and disjoint inside ``[0, L)`` (``L_h <= P_s`` and
        ``P_e <= L - L_t - 1`` when the middle is non-empty, ``L_h + L_t <= L``).
        """
        names = ("head_len", "mid_start", "mid_end", "tail_len", "branch")
        arrays = [np.asarray(getattr(self, name)) for name in names]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"Segments arrays must all have the same shape (n,), got {shapes}")
        for name, arr in zip(names, arrays, strict=True):
            if not np.issubdtype(arr.dtype, np.integer):
                raise ValueError(f"Segments.{name} must hold integers, got dtype {arr.dtype}")
            object.__setattr__(self, name, arr)
        big_n = check_int("train_len", self.train_len, low=1)
        big_l = check_int("target_len", self.target_len, low=big_n, high=MAX_TARGET_LEN,
                           hint=" (L >= N)")
        if self.rand_factor is not None:
            rf = np.asarray(self.rand_factor)
            if rf.shape != arrays[0].shape or not np.issubdtype(rf.dtype, np.integer):
                raise ValueError(f"Segments.rand_factor must be an integer array of shape {arrays[0].shape}, "
                                 f"got {rf.dtype} {rf.shape}")
        if arrays[0].size == 0:
            return
        head, start, end, tail = (a.astype(np.int64, copy=False) for a in arrays[:4])
        mid = end - start + 1
        for name, arr in (("head_len", head), ("tail_len", tail), ("mid_len (P_e - P_s + 1)", mid)):
            if arr.min() < 0:
                i = int(np.argmin(arr))
                raise ValueError(f"Segments.{name} must be >= 0; sample {i} has {arr[i]}")
        total = head + mid + tail
        if np.any(total != big_n):
            i = int(np.flatnonzero(total != big_n)[0])
            raise ValueError(f"segment lengths must add up to train_len={big_n}; sample {i} has "
                             f"L_h + L_m + L_t = {total[i]}")
        bad = (mid > 0) & ((start < head) | (end > big_l - tail - 1))
        bad |= head + tail > big_l
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"sample {i} overlaps or leaves [0, target_len={big_l}): head [0, {head[i]}), "
                             f"middle [{start[i]}, {end[i]}], tail [{big_l - tail[i]}, {big_l})")

    @classmethod
    def _from_valid(cls, **fields: Any) -> Segments:
        """Build without re-validating: for layouts valid by construction (the samplers' output,
        property-tested over their whole parameter space, and row subsets of a valid Segments)."""
        obj = object.__new__(cls)
        for name in cls.__dataclass_fields__:
            object.__setattr__(obj, name, fields.get(name, {} if name == "extras" else None))
        return obj

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
        if isinstance(idx, numbers.Integral) and not isinstance(idx, bool):
            n = len(self)
            if not -n <= int(idx) < n:
                raise IndexError(f"sample index {int(idx)} is out of range for {n} samples "
                                 f"(valid: {-n} .. {n - 1})")
            idx = int(idx) % n
            idx = slice(idx, idx + 1)
        rf = None if self.rand_factor is None else self.rand_factor[idx]
        rows = {name: getattr(self, name)[idx] for name in ("head_len", "mid_start", "mid_end", "tail_len", "branch")}
        if rows["head_len"].ndim != 1:
            raise IndexError(f"Segments rows are selected by an int, a slice, a mask or an index array, got {idx!r}")
        return Segments._from_valid(**rows, train_len=self.train_len, target_len=self.target_len,
                                    rand_factor=rf, extras=dict(self.extras))

    def position_ids(self) -> np.ndarray:
        """Materialise the ids: ``(n, train_len)`` int64, row ``i`` strictly increasing.

        id[j] = j + offset, with offset 0 in the head, ``P_s - L_h`` in the middle and ``L - N``
        in the tail: the offsets are ``np.repeat``-ed per row block (cache-sized) and added to
        ``0 .. N-1`` in place, about two memory passes whatever the layouts (CREAM, PoSE, …).
        """
        n, big_n, big_l = len(self), self.train_len, self.target_len
        _check_ids_size(n, big_n)
        out = np.empty((n, big_n), dtype=np.int64)
        cols = np.arange(big_n, dtype=np.int64)
        offsets = np.stack([np.zeros(n, np.int64), self.mid_start.astype(np.int64) - self.head_len,
                            np.full(n, big_l - big_n, np.int64)], axis=1)  # (n, 3)
        lengths = np.stack([self.head_len, self.mid_len, self.tail_len], axis=1)  # (n, 3)
        rows = max(1, IDS_BLOCK_ELEMENTS // big_n)
        for start in range(0, n, rows):  # row blocks, not samples one by one
            stop = min(n, start + rows)
            block = np.repeat(offsets[start:stop].ravel(), lengths[start:stop].ravel())
            np.add(block.reshape(stop - start, big_n), cols, out=out[start:stop])
        return out


# --------------------------------------------------------------------------- parameter declaration
@dataclass(frozen=True)
class Param:
    """One sampler parameter, declared once on its sampler class (``Sampler.parameters``).

    The constructor's validation, :attr:`Sampler.params` (run metadata), the ``creamviz train``
    flag, and the traits and controls of the explorer and the launcher are all built from it.
    Bounds and the default rule may depend on the window: give a number or a function of
    ``(train_len, target_len)`` = ``(N, L)``.
    """

    name: str  # keyword of the constructor, trait and run-metadata key; flag --name-with-dashes
    kind: type  # int, float or str
    default: Any  # value when not given; None = derived from (N, L) by `auto`
    help: str  # one line for the CLI and the control's tooltip (paper symbols welcome)
    symbol: str = ""  # paper symbol shown on controls, e.g. "σ"
    low: Any = None  # smallest valid value: a number, f(N, L), or None (unbounded)
    high: Any = None  # largest valid value: a number, f(N, L), or None (unbounded)
    low_open: bool = False  # `low` itself is invalid (σ > 0)
    choices: tuple = ()  # valid values of a str parameter
    auto: Callable[[int, int], Any] | None = None  # default rule f(N, L) when `default` is None
    auto_text: str = ""  # the default rule in words, e.g. "4·L/N"
    hint: str = ""  # appended to range errors; may use {train_len} and {target_len}
    ui: Any = None  # slider (min, max, step), or f(N, L) giving it, where the valid range is unbounded
    log_scale: bool = False  # slider on a log scale (scales such as σ)

    def __post_init__(self) -> None:
        if self.kind not in (int, float, str):
            raise ValueError(f"Param {self.name!r}: kind must be int, float or str, got {self.kind!r}")
        if not self.name.isidentifier() or self.name in _RESERVED:
            raise ValueError(f"Param name {self.name!r} must be an identifier other than {', '.join(_RESERVED)}")
        if self.default is None and self.auto is None:
            raise ValueError(f"Param {self.name!r}: default None needs an `auto` rule f(train_len, target_len)")
        if self.kind is str and not self.choices:
            raise ValueError(f"Param {self.name!r}: a str parameter needs its `choices`")

    def bounds(self, train_len: int, target_len: int) -> tuple[Any, Any]:
        """``(low, high)`` valid for this window (None where unbounded)."""
        def at(b):
            return b(train_len, target_len) if callable(b) else b
        return at(self.low), at(self.high)

    def default_for(self, train_len: int, target_len: int) -> Any:
        """The value used when the parameter is not given (or given as None)."""
        return self.auto(train_len, target_len) if self.default is None else self.default

    def resolve(self, value: Any, train_len: int, target_len: int) -> Any:
        """``value`` checked against the declaration (None -> the default); ValueError otherwise."""
        if value is None and self.default is None:  # the rule f(N, L): say so when it gives a bad value
            try:
                return self.resolve(self.auto(train_len, target_len), train_len, target_len)
            except ValueError as err:
                raise ValueError(f"{err}; {self.name} is the default {self.auto_text or 'rule'} at "
                                 f"train_len={train_len}, target_len={target_len}: set {self.name} explicitly "
                                 "or change N / L") from None
        if value is None:
            value = self.default
        if self.kind is str:
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"{self.name}={value!r} is not valid; valid: {', '.join(self.choices)}")
            return value
        low, high = self.bounds(train_len, target_len)
        if self.kind is int:
            hint = self.hint.format(train_len=train_len, target_len=target_len)
            return check_int(self.name, value, low=-(2**63) if low is None else low, high=high, hint=hint)
        return check_real(self.name, value, low=low, high=high, low_open=self.low_open)


_RESERVED = ("train_len", "target_len", "method", "name")


# --------------------------------------------------------------------------- samplers
class Sampler:
    """Base class of every position sampler (public: subclass it and :func:`register_sampler`).

    Contract of a subclass:

    - ``name``: the registry name (``make_sampler(name, ...)``, ``--sampler name``, the explorers'
      method lists).
    - ``parameters``: a tuple of :class:`Param`, one per keyword the scheme takes beyond
      ``train_len`` (N) and ``target_len`` (L). The base ``__init__`` validates and stores each as an
      attribute (``self.<name>``, defaults resolved), then calls :meth:`check` for rules that tie
      several parameters together. Do not override ``__init__``.
    - ``sample(n, seed) -> Segments``: ``n`` layouts, vectorised, randomness only from
      ``make_rng(seed)`` (an int seed or a ``np.random.Generator``); every row's ids strictly increase
      inside ``[0, L)`` and number exactly N. Schemes without a head / middle / tail form set
      ``has_segments = False`` and override :meth:`position_ids` instead (``(n, N)`` int64 ids).
    - ``min_train_len``: the smallest N the scheme accepts.

    Everything else comes for free: ``params`` (run metadata, enough to rebuild the sampler),
    equality, ``repr``, the CLI flags, the explorer's and the launcher's controls, coverage and
    the sampling figures, training through :class:`creamviz.training.PositionCollator`.
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = ()
    has_segments: ClassVar[bool] = True
    min_train_len: ClassVar[int] = 2

    def __init__(self, train_len: int, target_len: int, **params: Any) -> None:
        self.train_len = check_int("train_len", train_len, low=self.min_train_len)
        self.target_len = check_int("target_len", target_len, low=self.train_len + 1, high=MAX_TARGET_LEN,
                                     hint=" (must exceed train_len)")
        declared = {p.name for p in self.parameters}
        unknown = sorted(set(params) - declared)
        if unknown:
            accepted = ", ".join(["train_len", "target_len", *(p.name for p in self.parameters)])
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for sampler {self.name!r}; "
                             f"accepted: {accepted}")
        for p in self.parameters:
            setattr(self, p.name, p.resolve(params.get(p.name), self.train_len, self.target_len))
        self.check()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [p.name for p in cls.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"{cls.__name__}.parameters declares a name twice: {names}")
        # help() and IDEs show the declared keywords instead of **params
        import inspect

        kw = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default) for p in cls.parameters]
        pos = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in ("train_len", "target_len")]
        cls.__signature__ = inspect.Signature(pos + kw)
        # every sampler's output passes the boundary check, whoever wrote the class
        for attr, wrap in (("position_ids", _checked_position_ids), ("sample", _checked_sample)):
            method = cls.__dict__.get(attr)
            if callable(method) and not getattr(method, "_checked", False):
                setattr(cls, attr, wrap(method))

    def check(self) -> None:
        """Rules tying several parameters together (override; raise ValueError naming them)."""

    @property
    def factor(self) -> float:
        """``L / N``."""
        return self.target_len / self.train_len

    @property
    def params(self) -> dict[str, Any]:
        """Constructor arguments, enough to rebuild the sampler with :func:`make_sampler`."""
        return {"train_len": self.train_len, "target_len": self.target_len,
                **{p.name: getattr(self, p.name) for p in self.parameters}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    __hash__ = None  # mutable attributes: equal samplers need not hash alike

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        raise NotImplementedError

    def position_ids(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """``(n, train_len)`` int64 ids, each row strictly increasing inside ``[0, target_len)``."""
        _check_ids_size(_check_n(n), self.train_len)  # before drawing anything
        return self.sample(n, seed).position_ids()


class CreamSampler(Sampler):
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
    min_train_len = 3
    parameters = (
        Param("k", int, None, "head/tail length L_h = L_t of the continuity branch", symbol="k",
              low=1, high=lambda big_n, big_l: (big_n - 1) // 2,
              auto=lambda big_n, big_l: (4 * big_l) // big_n, auto_text="4·L/N",
              hint=" for train_len={train_len} (the middle needs >= 1 token)"),
        Param("mu", float, None, "mean of the Gaussian over rand_factor on [2, 2·L/N]", symbol="μ",
              auto=lambda big_n, big_l: 1.0 + big_l / big_n, auto_text="1 + L/N",
              ui=lambda big_n, big_l: (-10.0, max(64.0, 4.0 * big_l / big_n), 0.25)),
        Param("sigma", float, 3.0, "scale of the Gaussian over rand_factor", symbol="σ", low=0.0,
              low_open=True, ui=(0.05, 40.0, 0.01), log_scale=True),
        Param("p_continuity", float, 0.5, "probability of the continuity branch (else relativity, "
              "L_h = L_t = N/3)", symbol="p", low=0.0, high=1.0, ui=(0.0, 1.0, 0.01)),
        Param("middle", str, "reference", "placement of the middle [P_s, P_e]: the official recipe, "
              "a truncated normal, or uniform", choices=MIDDLE_MODES),
        Param("branch_block", int, 1, "consecutive samples sharing one branch draw (official: 3000)",
              low=1, ui=(1, 4096, 1)),
    )

    def check(self) -> None:
        big_n, big_l = self.train_len, self.target_len
        if self.middle != "uniform" and self.factor > MAX_RAND_FACTOR_FACTOR:
            raise ValueError(
                f"target_len / train_len = {self.factor:g} is out of range for middle={self.middle!r}: valid is "
                f"<= {MAX_RAND_FACTOR_FACTOR} (rand_factor tables hold 2 L / N values per branch); "
                "use middle='uniform' for larger factors")
        if self.middle == "reference" and big_l % big_n:
            raise ValueError(
                f"target_len={big_l} must be a multiple of train_len={big_n} in middle='reference' "
                f"(factor L/N = {big_l / big_n:g} is not an integer; valid: L = m*N for m >= 2); "
                "use middle='truncnorm' or 'uniform' for non-integer factors")
        if self.middle == "truncnorm":
            edges = self._truncnorm_edges
            if not (np.isfinite(edges).all() and (np.diff(edges) >= 0).all()):
                lo, hi = (2.0 - self.mu) / self.sigma, (2.0 * self.factor - self.mu) / self.sigma
                raise ValueError(
                    f"mu={self.mu:g}, sigma={self.sigma:g} give a truncated normal on [2, {2 * self.factor:g}] whose "
                    f"CDF scipy cannot evaluate (standardised bounds {lo:.3g}, {hi:.3g}); valid: finite mu and "
                    "sigma > 0 with a finite, non-decreasing CDF there (move mu towards the axis or shrink sigma; "
                    "a sigma dwarfing the axis is middle='uniform')")

    # ---- rand_factor ------------------------------------------------------------------------
    @functools.cached_property
    def rand_factor_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The official grid ``x = linspace(2, 2*factor, 1000)`` and ``Phi((x - mu)/sigma)``."""
        x = np.linspace(2.0, 2.0 * self.factor, REFERENCE_GRID_SIZE)
        with np.errstate(over="ignore"):  # a tiny sigma overflows to +-inf: Phi is then exactly 0 or 1
            return x, stats.norm.cdf((x - self.mu) / self.sigma)

    def _truncnorm(self):
        lo, hi = 2.0, 2.0 * self.factor
        return stats.truncnorm((lo - self.mu) / self.sigma, (hi - self.mu) / self.sigma,
                               loc=self.mu, scale=self.sigma)

    @functools.cached_property
    def _truncnorm_edges(self) -> np.ndarray:
        """Truncnorm CDF at ``r = 2 .. floor(2 f)``, first value forced to 0: ``rand_factor = r``
        exactly for ``u`` in ``[F(r), F(r + 1))`` (the floor of the quantile, without the quantile)."""
        values = np.arange(2, int(np.floor(2.0 * self.factor)) + 1, dtype=np.float64)
        lo, hi = (2.0 - self.mu) / self.sigma, (2.0 * self.factor - self.mu) / self.sigma
        if not hi - lo > TRUNCNORM_MIN_WIDTH:  # sigma dwarfs the axis (scipy recurses without end there)
            return np.full(len(values), np.nan)
        try:
            with np.errstate(all="ignore"):
                edges = self._truncnorm().cdf(values)
        except (RecursionError, ArithmeticError):
            return np.full(len(values), np.nan)
        edges[0] = 0.0
        return edges

    def _rand_factor_exact(self, u: np.ndarray) -> np.ndarray:
        """The definition, evaluated directly (slow path, also the oracle for the table).

        Reference: ``int(interp(u, Phi((x - mu) / sigma), x))``. Truncnorm: ``floor`` of the
        quantile, i.e. the ``r`` with ``F(r) <= u < F(r + 1)`` (exact, no quantile round-off).
        """
        if self.middle == "reference":
            x, cdf = self.rand_factor_grid
            return np.interp(u, cdf, x).astype(np.int64)  # np.interp clamps; astype truncates
        return np.searchsorted(self._truncnorm_edges, u, side="right").astype(np.int64) + 1

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
        if u.size and not (u.min() >= 0.0 and u.max() < 1.0):  # also catches NaN
            raise ValueError(f"u must lie in [0, 1), got values in [{u.min()}, {u.max()}]")
        if self.middle == "truncnorm":
            return self._rand_factor_exact(u)  # a search in 2 f - 1 edges is already fast
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
            edges = np.append(self._truncnorm_edges, 1.0)
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
        dtype = _index_dtype(big_l)
        # one (6, n) block for every output row: a single large allocation (the kernel backs it with
        # huge pages), much cheaper to fault in than six separate arrays
        block = np.empty((6, n), dtype=dtype)
        head_len, mid_start, mid_end, tail_len, branch, rand_factor = block
        if self.branch_block > 1:
            blocks = rng.random(-(-n // self.branch_block)) >= self.p_continuity
            branch[:] = blocks[np.arange(n) // self.branch_block]  # never n-rounded-up sized
        # (L_h = L_t, L_m) take two values only, and rand_factor a few: every per-sample quantity
        # is a table lookup into (branch, rand_factor) tables.
        edge_of = self.segment_lengths(np.array([CONTINUITY, RELATIVITY])).astype(dtype)  # (2,)
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
        lo_of = lo_of.astype(dtype)
        if self.middle == "uniform":
            rand_factor.fill(-1)
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
            np.add(lo_of[code], offset.astype(dtype), out=mid_end[start:stop])
            np.subtract(mid_end[start:stop], (chunk_of - 1)[br], out=mid_start[start:stop])
            np.take(edge_of, br, out=head_len[start:stop])
            tail_len[start:stop] = head_len[start:stop]
        return Segments._from_valid(head_len=head_len, mid_start=mid_start, mid_end=mid_end,
                                    tail_len=tail_len, branch=branch, train_len=big_n, target_len=big_l,
                                    rand_factor=rand_factor)


class PoseSampler(Sampler):
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
        dtype = _index_dtype(big_l)
        rt1 = rng.integers(1, (big_n + 1) // 2, size=n, endpoint=True).astype(dtype)
        rt = rng.integers(0, big_l - big_n, size=n, endpoint=True).astype(dtype)
        return Segments._from_valid(head_len=rt1, mid_start=rt1 + rt, mid_end=big_n + rt - 1,
                                    tail_len=np.zeros(n, dtype), branch=np.full(n, -1, dtype),
                                    train_len=big_n, target_len=big_l)


class ContiguousSampler(Sampler):
    """Plain fine-tuning / position interpolation: ids ``0 .. N-1`` (all in the head)."""

    name = "contiguous"
    min_train_len = 1

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        n = _check_n(n)
        big_n = self.train_len
        dtype = _index_dtype(self.target_len)
        full = np.full(n, big_n, dtype=dtype)
        return Segments._from_valid(head_len=full, mid_start=full.copy(), mid_end=full - 1,
                                    tail_len=np.zeros(n, dtype), branch=np.full(n, -1, dtype),
                                    train_len=big_n, target_len=self.target_len)


class RandPosSampler(Sampler):
    """RandPos: N distinct integers uniform without replacement from ``[0, L)``, sorted.

    No segment structure: :meth:`sample` raises; use :meth:`position_ids`. Rows are drawn as the
    N smallest of L i.i.d. random keys (an exact uniform N-subset), in row blocks that bound
    memory to about ``block_elements`` keys at a time. Work grows with ``n * L``: ``L`` is at
    most ``RANDPOS_MAX_TARGET_LEN`` and one call draws at most ``RANDPOS_MAX_KEYS`` keys.
    """

    name = "randpos"
    has_segments = False
    min_train_len = 1
    block_elements = 1 << 23  # random keys held at once (64 MiB of float64)

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> Segments:
        raise ValueError("RandPos has no head/middle/tail structure; call position_ids(n, seed)")

    def check(self) -> None:
        if self.target_len > RANDPOS_MAX_TARGET_LEN:
            raise ValueError(f"target_len={self.target_len} is out of range for RandPos: valid is "
                             f"[{self.train_len + 1}, {RANDPOS_MAX_TARGET_LEN}] (each sample draws L random keys, "
                             f"{self.target_len * 8 / 2**30:.1f} GiB of float64 here)")

    def position_ids(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        n = _check_n(n)
        big_n, big_l = self.train_len, self.target_len
        _check_ids_size(n, big_n)
        if n * big_l > RANDPOS_MAX_KEYS:
            raise ValueError(f"n * target_len = {n} * {big_l} = {n * big_l} random keys exceed the RandPos limit "
                             f"{RANDPOS_MAX_KEYS} (about {n * big_l / 1e8:.0f} s at 1e8 keys/s); pass a smaller n")
        rng = _rng(seed)
        out = np.empty((n, big_n), dtype=np.int64)
        rows_per_block = max(1, self.block_elements // big_l)
        for start in range(0, n, rows_per_block):  # blocks of rows, not samples one by one
            stop = min(n, start + rows_per_block)
            keys = rng.random((stop - start, big_l))
            picked = np.argpartition(keys, big_n - 1, axis=1)[:, :big_n] if big_n < big_l else \
                np.broadcast_to(np.arange(big_l), (stop - start, big_l))
            out[start:stop] = np.sort(picked, axis=1)
        return out


SAMPLERS: dict[str, type[Sampler]] = {}  # registry name -> class; add schemes with register_sampler


def register_sampler(cls: type[Sampler] | None = None, *, replace: bool = False):
    """Add a :class:`Sampler` subclass to :data:`SAMPLERS` under ``cls.name`` (usable as a decorator).

    Registered once, a scheme is available to :func:`make_sampler`, ``creamviz train --sampler``,
    the explorers' method lists and training. A parameter name shared with another registered
    sampler must have the same kind (they share one flag and one control). ``replace=True``
    overwrites an existing name.
    """
    if cls is None:
        return functools.partial(register_sampler, replace=replace)
    if not (isinstance(cls, type) and issubclass(cls, Sampler)):
        raise ValueError(f"register_sampler needs a subclass of creamviz.samplers.Sampler, got {cls!r}")
    if not isinstance(cls.name, str) or not cls.name.isidentifier():
        raise ValueError(f"{cls.__name__}.name={cls.name!r} must be a non-empty identifier (the registry name)")
    if cls.name in SAMPLERS and not replace and SAMPLERS[cls.name] is not cls:
        raise ValueError(f"a sampler named {cls.name!r} is already registered ({SAMPLERS[cls.name].__name__}); "
                         "pass replace=True to overwrite it")
    others = {p.name: (other, p) for other in SAMPLERS.values() if other.name != cls.name for p in other.parameters}
    for p in cls.parameters:
        if p.name in others and others[p.name][1].kind is not p.kind:
            other, q = others[p.name]
            raise ValueError(f"{cls.__name__} declares {p.name}: {p.kind.__name__}, but sampler {other.name!r} "
                             f"declares it as {q.kind.__name__}; shared names share one flag and control")
    SAMPLERS[cls.name] = cls
    return cls


def unregister_sampler(name: str) -> type[Sampler]:
    """Remove ``name`` from :data:`SAMPLERS` (returns its class)."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS.pop(name)


def sampler_parameters() -> dict[str, Param]:
    """Every registered sampler's parameters by name (the union; names shared across samplers
    are one entry). The CLI and the explorers build their flags and controls from this."""
    out: dict[str, Param] = {}
    for cls in SAMPLERS.values():
        for p in cls.parameters:
            out.setdefault(p.name, p)
    return out


def load_sampler_plugins() -> list[str]:
    """Register the samplers other packages advertise under the entry-point group
    ``creamviz.samplers`` (``name = "package.module:SamplerClass"``); returns their names."""
    from importlib.metadata import entry_points

    names = []
    for entry in entry_points(group="creamviz.samplers"):
        cls = entry.load()
        if SAMPLERS.get(cls.name) is not cls:
            register_sampler(cls)
        names.append(cls.name)
    return names


for _cls in (CreamSampler, PoseSampler, RandPosSampler, ContiguousSampler):
    register_sampler(_cls)


def make_sampler(name: str, **params: Any) -> Sampler:
    """Build a sampler by registry name, e.g. ``make_sampler("cream", train_len=256, target_len=2048)``."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(sorted(SAMPLERS))}")
    cls = SAMPLERS[name]
    missing = [n for n in ("train_len", "target_len") if n not in params]
    if missing:
        raise ValueError(f"sampler {name!r} needs {' and '.join(missing)}")
    return cls(**params)
