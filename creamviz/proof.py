"""Theorem B.1 for every size: the claims of :mod:`creamviz.theorem` proved with an SMT solver.

:mod:`creamviz.theorem` audits the statement by brute force, exactly but only up to a bound
(every configuration with N <= 12, L <= 48). Every quantity involved is an integer interval with
linear endpoints, so the same claims can be decided for *unbounded* N and L in linear integer
arithmetic. This module states them for the SMT solver z3 (``pip install creamviz[proof]``,
package ``z3-solver``): a claim comes back ``proved``, or with a concrete counterexample layout.

The layout ``(N, L, L_h, L_t, P_s)`` is five unbounded integers with the validity constraints of
:mod:`creamviz.theorem` (``N >= 3``, ``L >= N + 1``, ``L_h, L_m, L_t >= 1`` with
``L_m = N - L_h - L_t``, ``L_h <= P_s``, ``P_e = P_s + L_m - 1 <= L - L_t - 1``). ``|D_r|`` is
*not* taken from the closed form ``W + 2N - 3``: it is the size of the union of the six distance
intervals (within head / middle / tail, head-middle, middle-tail, head-tail), computed by a
sorting network on the interval starts and a sweep that cuts the union into disjoint pieces.
Claim 0 proves that this model is right — the six intervals hold exactly the distances
``p[i] - p[j]`` (``i >= j``) of the real id vector, and the sweep's pieces are disjoint and cover
exactly their union — so ``|D_r|`` is the sum of the pieces' sizes. Claims 1-6 are those of
docs/theorem.md (``W = max(L_h, L_m, L_t)``, ``L* = N + L_m + min(L_h, L_t) + 2W - 3``):

1. ``|D_r| <= min(L, W + 2N - 3)`` for every valid layout;
2. ``|D_r| = W + 2N - 3`` iff the four intervals ``[0, W-1]``, HM, MT, HT are pairwise disjoint;
3. :func:`creamviz.theorem.conditions_hold` (groups A / B) iff they are disjoint;
4. for ``L >= L*`` the maximum over placements is ``W + 2N - 3``, reached exactly where the
   conditions hold; for ``L < L*`` no placement meets them, so every maximiser breaks the "iff";
5. the paper's ``max(L_h - 1, P_e - P_s, L_t - 1) + 2N`` is never reached, and exceeds the
   maximum by exactly 2 when ``L >= L*`` (by more when ``L < L*``);
6. ``L >= 4N - 8`` implies ``L >= L*`` for every split.

A claim with a maximum over placements is proved with an explicit maximiser (the witness
placement of :func:`creamviz.theorem.min_target_len`) plus the bound for every placement, so every
obligation is quantifier-free. Two false variants (:data:`VARIANTS`: the paper's constant as the
maximum, and the "iff" for every L) are refuted with the smallest counterexample the solver
finds, where "maximal" is stated with a quantifier over all placements.

``import creamviz.proof`` works without z3 (the descriptions :data:`CLAIMS` / :data:`VARIANTS`
and :func:`distance_intervals` are plain Python); the solving functions import it on use and
raise ``ImportError`` naming the extra to install. Nothing else in creamviz imports z3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from creamviz import theorem
from creamviz.validation import check_choice, check_int

__all__ = [
    "CLAIMS",
    "VARIANTS",
    "ClaimSpec",
    "Layout",
    "Obligation",
    "ClaimResult",
    "DistanceIntervals",
    "available",
    "distance_intervals",
    "claim_0",
    "claim_1",
    "claim_2",
    "claim_3",
    "claim_4",
    "claim_5",
    "claim_6",
    "variant_paper_constant",
    "variant_iff_every_length",
    "prove",
    "prove_all",
    "encoding_at",
    "QUANTITIES",
    "describe_result",
]

TIMEOUT_MS = 60_000  # per solver call: each obligation is expected well under a minute on one core
MAX_SEARCH_TRAIN_LEN = 64  # smallest-counterexample search tries N = 3 .. this before taking any model


# --------------------------------------------------------------------------- the claims, in words
@dataclass(frozen=True)
class ClaimSpec:
    """One statement about Theorem B.1 and how this module decides it."""

    key: str  # "0" .. "6", or a variant's name
    title: str  # a few words
    statement: str  # the claim in the paper's symbols
    status: str  # what the solver establishes: "proved" (every N, L) or "refuted" (a counterexample)
    corrected: str = ""  # for a refuted statement: the corrected one that is proved


CLAIMS: tuple[ClaimSpec, ...] = (
    ClaimSpec("0", "the six-interval model",
              "D_r = {p[i] − p[j] : i ≥ j} of the real id vector is exactly the union of the six distance "
              "intervals, and the sweep cuts that union into pairwise disjoint pieces, so |D_r| is the sum "
              "of the pieces' sizes", "proved"),
    ClaimSpec("1", "upper bound",
              "|D_r| ≤ min(L, W + 2N − 3) for every valid layout", "proved"),
    ClaimSpec("2", "equality iff disjoint",
              "|D_r| = W + 2N − 3 ⟺ the four intervals [0, W−1], HM, MT, HT are pairwise disjoint", "proved"),
    ClaimSpec("3", "conditions iff disjoint",
              "the reconstructed conditions (group A or group B) ⟺ the four intervals are pairwise disjoint",
              "proved"),
    ClaimSpec("4", "the 'iff' exactly when L ≥ L*",
              "for L ≥ L*, max over placements of |D_r| = W + 2N − 3, reached exactly where the conditions hold; "
              "for L < L*, no placement meets the conditions, so every maximiser breaks the 'iff'", "proved"),
    ClaimSpec("5", "the paper's constant is off by 2",
              "max(L_h − 1, P_e − P_s, L_t − 1) + 2N is never reached; for L ≥ L* it exceeds the maximum by "
              "exactly 2, for L < L* by more", "proved"),
    ClaimSpec("6", "L ≥ 4N − 8 suffices",
              "L ≥ 4N − 8 implies L ≥ L* for every split (L_h, L_t)", "proved"),
)

VARIANTS: tuple[ClaimSpec, ...] = (
    ClaimSpec("paper_constant", "the paper's constant as the maximum",
              "for L ≥ L*, max over placements of |D_r| = max(L_h − 1, P_e − P_s, L_t − 1) + 2N", "refuted",
              corrected="for L ≥ L*, max over placements of |D_r| = max(L_h − 1, P_e − P_s, L_t − 1) + 2N − 2 "
                        "= W + 2N − 3 (claims 4 and 5)"),
    ClaimSpec("iff_every_length", "the 'iff' for every L",
              "for every valid (N, L, L_h, L_t), a placement is maximal ⟺ the conditions hold", "refuted",
              corrected="the 'iff' holds for every placement exactly when L ≥ L* (claim 4)"),
)


def available() -> bool:
    """True when the solver (package ``z3-solver``) can be imported (importing it if so)."""
    try:
        _z3()
    except ImportError:
        return False
    return True


def _z3():
    try:
        import z3
    except ImportError as err:  # pragma: no cover - exercised in a subprocess with z3 blocked
        raise ImportError("creamviz.proof needs the SMT solver z3: pip install 'creamviz[proof]' "
                          "(or pip install z3-solver)") from err
    return z3


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Layout:
    """One concrete layout, plain ints: N, L, L_h, L_t and the middle start P_s."""

    train_len: int  # N
    target_len: int  # L
    head_len: int  # L_h
    tail_len: int  # L_t
    mid_start: int  # P_s

    @property
    def mid_len(self) -> int:
        """``L_m = N - L_h - L_t``."""
        return self.train_len - self.head_len - self.tail_len

    @property
    def mid_end(self) -> int:
        """``P_e = P_s + L_m - 1`` (inclusive)."""
        return self.mid_start + self.mid_len - 1

    def position_ids(self) -> list[int]:
        """The N position ids: head, middle, tail."""
        return (list(range(self.head_len)) + list(range(self.mid_start, self.mid_end + 1))
                + list(range(self.target_len - self.tail_len, self.target_len)))

    def __str__(self) -> str:
        return (f"N = {self.train_len}, L = {self.target_len}, L_h = {self.head_len}, L_m = {self.mid_len}, "
                f"L_t = {self.tail_len}, P_s = {self.mid_start}")


@dataclass(frozen=True)
class Obligation:
    """One solver call: a statement checked for every valid layout, or a search for an example."""

    name: str  # its id: "1a", "4c", ... (see the docs page)
    statement: str  # in words
    verdict: str  # "proved" | "refuted" (counterexample in layout) | "found" (example in layout) | "absent"
    # (no such example exists) | "unknown" (the solver gave up)
    seconds: float  # solver time
    layout: Layout | None = None  # the counterexample or the example


@dataclass(frozen=True)
class ClaimResult:
    """The solver's verdict on one claim: ``proved``, or a ``counterexample`` layout (plain ints)."""

    key: str  # "0" .. "6" or a variant's name
    statement: str
    obligations: tuple[Obligation, ...]
    corrected: str = ""  # for a refuted statement, the corrected one (proved by the claims named there)
    example: Layout | None = field(default=None)  # a layout the claim says exists (claim 4: below L*)

    @property
    def proved(self) -> bool:
        """Every obligation proved (or, for an existence part, its example found)."""
        return all(o.verdict in ("proved", "found") for o in self.obligations)

    @property
    def counterexample(self) -> Layout | None:
        """The first refuted obligation's counterexample, else None."""
        return next((o.layout for o in self.obligations if o.verdict == "refuted"), None)

    @property
    def verdict(self) -> str:
        """``"proved"``, ``"refuted"`` or ``"unknown"`` (the solver gave up)."""
        if self.proved:
            return "proved"
        return "refuted" if self.counterexample is not None else "unknown"

    @property
    def seconds(self) -> float:
        """Solver time summed over the obligations."""
        return sum(o.seconds for o in self.obligations)


# --------------------------------------------------------------------------- intervals (plain ints)
@dataclass(frozen=True)
class DistanceIntervals:
    """The six distance intervals of one layout, inclusive ``(lo, hi)`` pairs (plain ints)."""

    layout: Layout
    intervals: dict[str, tuple[int, int]]  # within head / middle / tail, head–middle, middle–tail, head–tail
    merged: dict[str, tuple[int, int]]  # the four intervals of claims 2-3: [0, W-1], head–middle, middle–tail, head–tail
    overlaps: list[tuple[str, str, int, int]]  # (name, name, lo, hi) where two of the four overlap
    upper_bound: int  # W + 2N - 3, the sum of the four merged interval sizes
    paper_value: int  # max(L_h - 1, P_e - P_s, L_t - 1) + 2N
    span_size: int  # |D_r|: the size of the union
    covered: list[tuple[int, int]]  # D_r as maximal runs (lo, hi) of consecutive distances
    min_target_len: int  # L* = N + L_m + min(L_h, L_t) + 2W - 3
    conditions: bool  # group A or group B holds (creamviz.theorem.conditions_hold)


INTERVAL_NAMES = ("within head", "within middle", "within tail", "head–middle", "middle–tail", "head–tail")


def _six(big_l, head_len, mid_len, tail_len, mid_start, mid_end) -> list[tuple]:
    """The six intervals from the layout's numbers (ints or solver terms), in INTERVAL_NAMES order."""
    return [(0, head_len - 1),  # within head: j - i for 0 <= i <= j < L_h
            (0, mid_len - 1),  # within middle
            (0, tail_len - 1),  # within tail
            (mid_start - head_len + 1, mid_end),  # head-middle: [P_s - (L_h - 1), P_e - 0]
            (big_l - tail_len - mid_end, big_l - 1 - mid_start),  # middle-tail: [L - L_t - P_e, L - 1 - P_s]
            (big_l - tail_len - head_len + 1, big_l - 1)]  # head-tail: [L - L_t - (L_h - 1), L - 1]


def distance_intervals(layout: Layout) -> DistanceIntervals:
    """The six distance intervals of ``layout`` and the four they merge into, where those overlap,
    ``|D_r|`` (the size of the union, counted), the bound ``W + 2N - 3``, the paper's constant,
    ``L*`` and the conditions — the data of :func:`creamviz.figures.fig_layout_intervals`.
    Plain Python: no solver needed."""
    if not isinstance(layout, Layout):
        raise ValueError(f"layout must be a creamviz.proof.Layout, got {type(layout).__name__}")
    lay = _check_layout(layout)
    six = _six(lay.target_len, lay.head_len, lay.mid_len, lay.tail_len, lay.mid_start, lay.mid_end)
    covered: list[tuple[int, int]] = []  # D_r as runs: merge the intervals in order of their start
    for lo, hi in sorted(six):
        if covered and lo <= covered[-1][1] + 1:
            covered[-1] = (covered[-1][0], max(covered[-1][1], hi))
        else:
            covered.append((lo, hi))
    width = max(lay.head_len, lay.mid_len, lay.tail_len)
    merged = {"within (merged)": (0, width - 1), **dict(zip(INTERVAL_NAMES[3:], six[3:], strict=True))}
    names = list(merged)
    overlaps = []
    for a in range(4):
        for b in range(a + 1, 4):
            lo, hi = max(merged[names[a]][0], merged[names[b]][0]), min(merged[names[a]][1], merged[names[b]][1])
            if lo <= hi:
                overlaps.append((names[a], names[b], lo, hi))
    lengths = (lay.train_len, lay.target_len, lay.head_len, lay.tail_len)
    return DistanceIntervals(
        layout=lay, intervals=dict(zip(INTERVAL_NAMES, six, strict=True)), merged=merged, overlaps=overlaps,
        upper_bound=width + 2 * lay.train_len - 3,
        paper_value=max(lay.head_len - 1, lay.mid_len - 1, lay.tail_len - 1) + 2 * lay.train_len,
        span_size=sum(hi - lo + 1 for lo, hi in covered), covered=covered,
        min_target_len=theorem.min_target_len(lay.train_len, lay.head_len, lay.tail_len),
        conditions=bool(theorem.conditions_hold(*lengths, lay.mid_start)))


def _check_layout(layout: Layout) -> Layout:
    big_n = check_int("train_len", layout.train_len, 3)
    big_l = check_int("target_len", layout.target_len, big_n + 1, hint=" (must exceed train_len)")
    head = check_int("head_len", layout.head_len, 1, big_n - 2)
    tail = check_int("tail_len", layout.tail_len, 1, big_n - 1 - head)
    mid_len = big_n - head - tail
    start = check_int("mid_start", layout.mid_start, head, big_l - tail - mid_len,
                      hint=" (P_s >= L_h and P_e = P_s + L_m - 1 <= L - L_t - 1)")
    return Layout(big_n, big_l, head, tail, start)


# --------------------------------------------------------------------------- the encoding
def _max(z3, *xs):
    out = xs[0]
    for x in xs[1:]:
        out = z3.If(x > out, x, out)
    return out


def _min(z3, *xs):
    out = xs[0]
    for x in xs[1:]:
        out = z3.If(x < out, x, out)
    return out


def _union_pieces(z3, intervals: list[tuple]) -> list[tuple]:
    """Pairwise disjoint pieces whose union is the union of ``intervals`` (inclusive ``(lo, hi)``
    solver terms; an interval with ``hi < lo`` is empty): sort by start with an odd-even
    transposition network (n rounds of compare-swaps sort any n inputs), then sweep, keeping of
    each interval only what lies above everything before it. Claim 0 proves the pieces right."""
    ivs = list(intervals)
    n = len(ivs)
    for rnd in range(n):
        for i in range(rnd % 2, n - 1, 2):
            (lo_a, hi_a), (lo_b, hi_b) = ivs[i], ivs[i + 1]
            keep = lo_a <= lo_b
            ivs[i] = (z3.If(keep, lo_a, lo_b), z3.If(keep, hi_a, hi_b))
            ivs[i + 1] = (z3.If(keep, lo_b, lo_a), z3.If(keep, hi_b, hi_a))
    pieces = []
    reach = ivs[0][0] - 1  # largest distance covered so far (nothing yet: just below the first start)
    for lo, hi in ivs:
        pieces.append((_max(z3, lo, reach + 1), hi))
        reach = _max(z3, reach, hi)
    return pieces


@dataclass(frozen=True)
class _Terms:
    """The layout as solver terms and every quantity of the claims, at one middle start."""

    N: object
    L: object
    L_h: object
    L_t: object
    P_s: object
    L_m: object
    P_e: object
    W: object
    valid: object  # the layout is valid
    six: list  # six (lo, hi)
    pieces: list  # disjoint (lo, hi) pieces of their union
    span_size: object  # |D_r| = sum of the pieces' sizes
    four: list  # [0, W-1], HM, MT, HT
    disjoint: object  # the four are pairwise disjoint
    upper_bound: object  # W + 2N - 3
    paper_value: object  # max(L_h - 1, P_e - P_s, L_t - 1) + 2N
    group_a: object
    group_b: object
    conditions: object  # group A or group B
    min_target_len: object  # L*
    witness: object  # a maximising P_s for L >= L* (group A's if it fits, else group B's)


def _terms(z3, big_n, big_l, head_len, tail_len, mid_start) -> _Terms:
    mid_len = big_n - head_len - tail_len
    mid_end = mid_start + mid_len - 1
    width = _max(z3, head_len, mid_len, tail_len)
    valid = z3.And(big_n >= 3, big_l >= big_n + 1, head_len >= 1, tail_len >= 1, mid_len >= 1,
                   mid_start >= head_len, mid_end <= big_l - tail_len - 1)
    six = [(z3.IntVal(lo) if isinstance(lo, int) else lo, hi)
           for lo, hi in _six(big_l, head_len, mid_len, tail_len, mid_start, mid_end)]
    pieces = _union_pieces(z3, six)
    size = z3.Sum([_max(z3, hi - lo + 1, 0) for lo, hi in pieces])
    four = [(z3.IntVal(0), width - 1)] + six[3:]
    disjoint = z3.And([z3.Or(four[a][1] < four[b][0], four[b][1] < four[a][0])
                       for a in range(4) for b in range(a + 1, 4)])
    # theorem.conditions_hold, term by term
    group_a = z3.And(mid_start >= head_len + width - 1, 2 * mid_end <= big_l - tail_len - 1,
                     mid_start >= head_len + tail_len - 1)
    group_b = z3.And(mid_end <= big_l - tail_len - width, 2 * mid_start >= big_l + head_len - 1,
                     mid_end <= big_l - tail_len - head_len)
    min_l = big_n + mid_len + _min(z3, head_len, tail_len) + 2 * width - 3  # theorem.min_target_len
    # group A fits iff L >= N + L_h + L_m + 2W - 3 (P_s = L_h + W - 1); else group B (P_e = L - L_t - W)
    witness = z3.If(big_l >= big_n + head_len + mid_len + 2 * width - 3, head_len + width - 1,
                    big_l - tail_len - width - mid_len + 1)
    return _Terms(big_n, big_l, head_len, tail_len, mid_start, mid_len, mid_end, width, valid, six, pieces, size,
                  four, disjoint, width + 2 * big_n - 3,
                  _max(z3, head_len - 1, mid_end - mid_start, tail_len - 1) + 2 * big_n,
                  group_a, group_b, z3.Or(group_a, group_b), min_l, witness)


def _variables(z3):
    return z3.Ints("N L L_h L_t P_s")


def _layout_terms(z3):
    big_n, big_l, head, tail, start = _variables(z3)
    return _terms(z3, big_n, big_l, head, tail, start)


def _at(z3, t: _Terms, mid_start) -> _Terms:
    """The same layout lengths with another middle start."""
    return _terms(z3, t.N, t.L, t.L_h, t.L_t, mid_start)


# --------------------------------------------------------------------------- solving
def _model_layout(z3, model, t: _Terms, mid_start=None) -> Layout:
    def val(x):
        return model.eval(x, model_completion=True).as_long()

    return Layout(val(t.N), val(t.L), val(t.L_h), val(t.L_t), val(t.P_s if mid_start is None else mid_start))


def _check(z3, name: str, statement: str, formula, t: _Terms) -> Obligation:
    """Prove ``formula`` for every valid layout: ask for a valid layout where it fails."""
    solver = z3.Solver()
    solver.set("timeout", TIMEOUT_MS)
    solver.add(t.valid, z3.Not(formula))
    start = time.perf_counter()
    result = solver.check()
    seconds = time.perf_counter() - start
    if result == z3.unsat:
        return Obligation(name, statement, "proved", seconds)
    if result == z3.sat:
        return Obligation(name, statement, "refuted", seconds, _model_layout(z3, solver.model(), t))
    return Obligation(name, statement, "unknown", seconds)


def _search(z3, name: str, statement: str, constraints: list, t: _Terms, verdict: str) -> Obligation:
    """Find the smallest layout (N first, then L) meeting ``constraints``; ``verdict`` names what a
    found layout is ("refuted": a counterexample, "found": an example the claim promises).

    One fresh solver per query (z3's incremental mode handles the quantifier of "maximal" far
    worse): any model first, then the smallest N in 3 .. MAX_SEARCH_TRAIN_LEN, then, at that N,
    the smallest L by bisection. A query that times out during the shrinking counts as "none".
    """
    def query(*extra):
        solver = z3.Solver()
        solver.set("timeout", TIMEOUT_MS)
        solver.add(*constraints, *extra)
        result = solver.check()
        return result, (solver.model() if result == z3.sat else None)

    start = time.perf_counter()
    result, model = query()
    if model is not None:
        for big_n in range(3, MAX_SEARCH_TRAIN_LEN + 1):  # the smallest N with a model
            _, smaller = query(t.N == big_n)
            if smaller is not None:
                model = smaller
                break
        big_n = model.eval(t.N, model_completion=True).as_long()
        lo, hi = big_n + 1, model.eval(t.L, model_completion=True).as_long()
        while lo < hi:  # the smallest L at that N, by bisection
            mid = (lo + hi) // 2
            _, smaller = query(t.N == big_n, t.L <= mid)
            if smaller is not None:
                model, hi = smaller, smaller.eval(t.L, model_completion=True).as_long()
            else:
                lo = mid + 1
    seconds = time.perf_counter() - start
    if model is None:  # unsat: no counterexample exists (the statement holds) / the promised example does not
        outcome = {"refuted": "proved", "found": "absent"}[verdict] if result == z3.unsat else "unknown"
        return Obligation(name, statement, outcome, seconds)
    return Obligation(name, statement, verdict, seconds, _model_layout(z3, model, t))


def _maximal(z3, t: _Terms, name: str):
    """``P_s`` is a maximiser: no valid placement ``Q`` of the same lengths has a larger ``|D_r|``."""
    other = z3.Int(name)
    tq = _at(z3, t, other)
    return z3.ForAll([other], z3.Implies(tq.valid, tq.span_size <= t.span_size))


def claim_0() -> ClaimResult:
    """The model: the six intervals hold exactly the distances of the real id vector, and the
    sweep's pieces are pairwise disjoint and cover exactly their union (so ``|D_r|`` is their sum)."""
    z3 = _z3()
    t = _layout_terms(z3)
    i, j, d = z3.Ints("i j d")

    def pid(k):  # the k-th position id: head 0.., middle P_s.., tail L - L_t..
        return z3.If(k < t.L_h, k, z3.If(k < t.L_h + t.L_m, t.P_s + k - t.L_h, t.L - t.N + k))

    in_pairs = z3.Exists([i, j], z3.And(0 <= j, j <= i, i < t.N, pid(i) - pid(j) == d))
    in_six = z3.Or([z3.And(lo <= d, d <= hi) for lo, hi in t.six])
    in_pieces = z3.Or([z3.And(lo <= d, d <= hi) for lo, hi in t.pieces])
    apart = z3.And([z3.Or(t.pieces[a][1] < t.pieces[a][0], t.pieces[b][1] < t.pieces[b][0],
                          t.pieces[a][1] < t.pieces[b][0], t.pieces[b][1] < t.pieces[a][0])
                    for a in range(6) for b in range(a + 1, 6)])
    spec = CLAIMS[0]
    return ClaimResult(spec.key, spec.statement, (
        _check(z3, "0a", "for every d: d = p[i] − p[j] for some i ≥ j ⟺ d lies in one of the "
               "six intervals", z3.ForAll([d], in_pairs == in_six), t),
        _check(z3, "0b", "for every d: d lies in a piece ⟺ d lies in one of the six intervals",
               z3.ForAll([d], in_pieces == in_six), t),
        _check(z3, "0c", "the pieces are pairwise disjoint", apart, t),
    ))


def _obligations(z3, t: _Terms) -> dict[str, tuple[str, str, object]]:
    """The quantifier-free obligations of claims 1-6: ``{id: (claim, statement, formula)}``, each
    formula to hold at every valid layout. The proofs check them; the tests evaluate the same
    formulas at concrete layouts against brute force (:func:`encoding_at`)."""
    w = _at(z3, t, t.witness)  # the same lengths, middle at the witness placement
    above = t.L >= t.min_target_len
    exclusive = _max(z3, t.L_h - 1, t.L_m, t.L_t - 1) + 2 * t.N  # the paper's formula with P_e exclusive
    return {
        "1a": ("1", "|D_r| ≤ L", t.span_size <= t.L),
        "1b": ("1", "|D_r| ≤ W + 2N − 3", t.span_size <= t.upper_bound),
        "2": ("2", "|D_r| = W + 2N − 3 ⟺ the four intervals are pairwise disjoint",
              (t.span_size == t.upper_bound) == t.disjoint),
        "3": ("3", "the conditions (group A or B) ⟺ the four intervals are pairwise disjoint",
              t.conditions == t.disjoint),
        "4a": ("4", "for L ≥ L*, the witness placement is valid and reaches W + 2N − 3 (with 1b: the maximum)",
               z3.Implies(above, z3.And(w.valid, w.span_size == t.upper_bound))),
        "4b": ("4", "for L ≥ L*, at every placement: |D_r| = W + 2N − 3 (maximal) ⟺ the conditions hold",
               z3.Implies(above, (t.span_size == t.upper_bound) == t.conditions)),
        "4c": ("4", "for L < L*, the conditions hold at no placement",
               z3.Implies(z3.Not(above), z3.Not(t.conditions))),
        "5a": ("5", "|D_r| < max(L_h − 1, P_e − P_s, L_t − 1) + 2N at every placement (also with P_e exclusive, "
                    "P_e − P_s = L_m)", z3.And(t.span_size < t.paper_value, t.span_size < exclusive)),
        "5b": ("5", "for L ≥ L*, |D_r| ≤ paper − 2 at every placement, and the witness placement reaches paper − 2",
               z3.Implies(above, z3.And(t.span_size <= t.paper_value - 2, w.valid, w.span_size == w.paper_value - 2))),
        "5c": ("5", "for L < L*, |D_r| < paper − 2 at every placement",
               z3.Implies(z3.Not(above), t.span_size < t.paper_value - 2)),
        "6a": ("6", "L ≥ 4N − 8 ⟹ L ≥ L*", z3.Implies(t.L >= 4 * t.N - 8, above)),
        "6b": ("6", "L* = 4N − 8 when L_h = L_t = 1 (the bound cannot be lowered)",
               z3.Implies(z3.And(t.L_h == 1, t.L_t == 1), t.min_target_len == 4 * t.N - 8)),
    }


def _claim(key: str, extra: tuple[Obligation, ...] = ()) -> ClaimResult:
    z3 = _z3()
    t = _layout_terms(z3)
    checked = tuple(_check(z3, ident, statement, formula, t)
                    for ident, (claim, statement, formula) in _obligations(z3, t).items() if claim == key)
    spec = CLAIMS[int(key)]
    return ClaimResult(spec.key, spec.statement, checked + extra)


def claim_1() -> ClaimResult:
    """``|D_r| <= min(L, W + 2N - 3)`` for every valid layout."""
    return _claim("1")


def claim_2() -> ClaimResult:
    """``|D_r| = W + 2N - 3`` iff the four intervals are pairwise disjoint."""
    return _claim("2")


def claim_3() -> ClaimResult:
    """The reconstructed conditions (group A or B) iff the four intervals are pairwise disjoint."""
    return _claim("3")


def claim_4() -> ClaimResult:
    """For ``L >= L*`` the maximum is ``W + 2N - 3``, reached exactly where the conditions hold; for
    ``L < L*`` no placement meets the conditions (every maximiser breaks the "iff"), with the
    smallest such layout (a maximiser, quantified over all placements) as the example."""
    z3 = _z3()
    t = _layout_terms(z3)
    example = _search(z3, "4d", "some valid layout with L < L* has a maximal placement (over all placements) where "
                      "neither group holds", [t.valid, t.L < t.min_target_len, z3.Not(t.conditions),
                                              _maximal(z3, t, "Q")], t, "found")
    result = _claim("4", (example,))
    return ClaimResult(result.key, result.statement, result.obligations, example=example.layout)


def claim_5() -> ClaimResult:
    """The paper's constant is never reached; for ``L >= L*`` it is the maximum + 2, below more."""
    return _claim("5")


def claim_6() -> ClaimResult:
    """``L >= 4N - 8`` implies ``L >= L*`` for every split; and ``L* = 4N - 8`` at ``L_h = L_t = 1``."""
    return _claim("6")


def variant_paper_constant() -> ClaimResult:
    """Refute "for L >= L*, the maximum is the paper's constant": the smallest layout whose
    maximum over placements (quantified) differs from it, at a maximising placement."""
    z3 = _z3()
    t = _layout_terms(z3)
    other = z3.Int("Q")
    tq = _at(z3, t, other)
    differs = z3.ForAll([other], z3.Implies(tq.valid, tq.span_size != tq.paper_value))  # no placement reaches it
    spec = VARIANTS[0]
    return ClaimResult(spec.key, spec.statement, (
        _search(z3, "paper_constant", spec.statement,
                [t.valid, t.L >= t.min_target_len, _maximal(z3, t, "Q2"), differs], t, "refuted"),),
        corrected=spec.corrected)


def variant_iff_every_length() -> ClaimResult:
    """Refute "maximal iff the conditions hold, for every L": the smallest layout with a maximal
    placement (quantified over all placements) where neither group holds."""
    z3 = _z3()
    t = _layout_terms(z3)
    spec = VARIANTS[1]
    return ClaimResult(spec.key, spec.statement, (
        _search(z3, "iff_every_length", spec.statement,
                [t.valid, z3.Not(t.conditions), _maximal(z3, t, "Q")], t, "refuted"),),
        corrected=spec.corrected)


_FUNCTIONS = {"0": claim_0, "1": claim_1, "2": claim_2, "3": claim_3, "4": claim_4, "5": claim_5, "6": claim_6,
              "paper_constant": variant_paper_constant, "iff_every_length": variant_iff_every_length}


def prove(key: str) -> ClaimResult:
    """Run the solver on one claim (``"0"`` .. ``"6"``) or variant (``"paper_constant"``,
    ``"iff_every_length"``)."""
    key = check_choice("key", str(key), tuple(_FUNCTIONS))
    return _FUNCTIONS[key]()


def prove_all(*, variants: bool = True) -> dict[str, ClaimResult]:
    """Every claim (and, by default, the refuted variants), in order: ``{key: ClaimResult}``."""
    keys = [c.key for c in CLAIMS] + ([v.key for v in VARIANTS] if variants else [])
    return {key: prove(key) for key in keys}


def describe_result(result: ClaimResult) -> str:
    """One line per claim: verdict, solver time, and the counterexample or example if any."""
    label = f"claim {result.key}" if result.key.isdigit() else f"variant '{result.key}'"
    text = f"{label}: {result.verdict.upper()} in {result.seconds:.2f} s — {result.statement}"
    if result.counterexample is not None:
        text += f"\n    counterexample: {result.counterexample}"
        if result.corrected:
            text += f"\n    corrected (proved): {result.corrected}"
    if result.example is not None:
        text += f"\n    example: {result.example}"
    if result.verdict == "unknown":
        text += "\n    the solver gave up within its time limit"
    return text


# --------------------------------------------------------------------------- the encoding at concrete layouts
QUANTITIES = ("span_size", "upper_bound", "paper_value", "disjoint", "conditions", "min_target_len", "witness",
              "valid")  # the terms encoding_at() evaluates, besides the six intervals, the pieces and the obligations


def _evaluated_terms(z3, t: _Terms) -> dict[str, object]:
    out = {name: getattr(t, name) for name in QUANTITIES}
    for k, (lo, hi) in enumerate(t.six):
        out[f"six_lo{k}"], out[f"six_hi{k}"] = lo, hi
    for k, (lo, hi) in enumerate(t.pieces):
        out[f"piece_lo{k}"], out[f"piece_hi{k}"] = lo, hi
    for ident, (_, _, formula) in _obligations(z3, t).items():
        out[f"obligation_{ident}"] = formula
    return out


def _numpy_program(z3, terms: dict[str, object]):
    """Compile solver terms into a straight-line list of numpy operations over their shared DAG.

    Every node is one of the operations the encoding uses (integer constants, the five layout
    variables, ``+ - *``, comparisons, ``If``, ``And / Or / Not / Implies``, ``==``); anything
    else raises. Evaluating the program on arrays gives each term's value at many layouts at once
    — exactly what z3 computes, which the tests confirm against ``z3.simplify`` on a sample."""
    ops = {z3.Z3_OP_ADD: "add", z3.Z3_OP_SUB: "sub", z3.Z3_OP_MUL: "mul", z3.Z3_OP_UMINUS: "neg",
           z3.Z3_OP_LE: "le", z3.Z3_OP_LT: "lt", z3.Z3_OP_GE: "ge", z3.Z3_OP_GT: "gt", z3.Z3_OP_EQ: "eq",
           z3.Z3_OP_ITE: "ite", z3.Z3_OP_AND: "and", z3.Z3_OP_OR: "or", z3.Z3_OP_NOT: "not",
           z3.Z3_OP_IMPLIES: "implies", z3.Z3_OP_ANUM: "num", z3.Z3_OP_TRUE: "true", z3.Z3_OP_FALSE: "false",
           z3.Z3_OP_UNINTERPRETED: "var"}
    index: dict[int, int] = {}
    program: list[tuple] = []
    for root in terms.values():
        stack = [(root, False)]
        while stack:  # iterative post-order: the DAG is deep (sorting network, nested If)
            node, expanded = stack.pop()
            if node.get_id() in index:
                continue
            children = node.children()
            if not expanded:
                stack.append((node, True))
                stack.extend((c, False) for c in children if c.get_id() not in index)
                continue
            kind = node.decl().kind()
            if kind not in ops:
                raise ValueError(f"the encoding uses an operation the numpy evaluator lacks: {node.decl()}")
            payload = node.as_long() if kind == z3.Z3_OP_ANUM else str(node) if kind == z3.Z3_OP_UNINTERPRETED else None
            index[node.get_id()] = len(program)
            program.append((ops[kind], tuple(index[c.get_id()] for c in children), payload))
    outputs = {name: index[term.get_id()] for name, term in terms.items()}
    return program, outputs


def _run_program(program, outputs, env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    values: list = []
    for op, args, payload in program:
        a = [values[i] for i in args]
        if op == "num":
            v = payload
        elif op in ("true", "false"):
            v = op == "true"
        elif op == "var":
            v = env[payload]
        elif op == "add":
            v = sum(a[1:], a[0])
        elif op == "sub":
            v = a[0] - sum(a[1:], 0) if len(a) > 1 else -a[0]
        elif op == "mul":
            v = a[0]
            for x in a[1:]:
                v = v * x
        elif op == "neg":
            v = -a[0]
        elif op in ("le", "lt", "ge", "gt", "eq"):
            v = {"le": np.less_equal, "lt": np.less, "ge": np.greater_equal, "gt": np.greater,
                 "eq": np.equal}[op](a[0], a[1])
        elif op == "ite":
            v = np.where(a[0], a[1], a[2])
        elif op == "and":
            v = np.logical_and.reduce(np.broadcast_arrays(*a, True))
        elif op == "or":
            v = np.logical_or.reduce(np.broadcast_arrays(*a, False))
        elif op == "not":
            v = np.logical_not(a[0])
        else:  # implies
            v = np.logical_or(np.logical_not(a[0]), a[1])
        values.append(v)
    n = len(env["N"])
    return {name: np.broadcast_to(values[i], (n,)).copy() for name, i in outputs.items()}


def encoding_at(layouts, *, engine: str = "numpy") -> dict[str, np.ndarray]:
    """The encoding's own terms evaluated at concrete layouts, for checking it against brute force.

    ``layouts``: a sequence of :class:`Layout`. Returns ``{name: (n,) array}`` for the names in
    :data:`QUANTITIES` (``span_size`` is the encoded ``|D_r|``), ``six_lo0 .. six_hi5`` (the six
    intervals), ``piece_lo0 .. piece_hi5`` (the sweep's pieces) and ``obligation_<id>`` (the
    formulas the proofs of claims 1-6 check, e.g. ``obligation_4b``). ``engine="z3"`` substitutes
    the values and lets ``z3.simplify`` evaluate each term (about 6 ms a layout); ``"numpy"``
    (default) compiles the same terms once and evaluates them for all layouts together.
    """
    engine = check_choice("engine", engine, ("numpy", "z3"))
    layouts = list(layouts)
    if not layouts:
        raise ValueError("layouts must not be empty")
    for lay in layouts:
        if not isinstance(lay, Layout):
            raise ValueError(f"layouts must hold creamviz.proof.Layout values, got {type(lay).__name__}")
    z3 = _z3()
    variables = _variables(z3)
    terms = _evaluated_terms(z3, _terms(z3, *variables))
    columns = np.array([[lay.train_len, lay.target_len, lay.head_len, lay.tail_len, lay.mid_start]
                        for lay in layouts], dtype=np.int64)  # (n, 5)
    if engine == "numpy":
        program, outputs = _numpy_program(z3, terms)
        env = {str(v): columns[:, k] for k, v in enumerate(variables)}
        return _run_program(program, outputs, env)
    out: dict[str, list] = {name: [] for name in terms}
    for row in columns.tolist():
        subs = [(v, z3.IntVal(x)) for v, x in zip(variables, row, strict=True)]
        for name, term in terms.items():
            value = z3.simplify(z3.substitute(term, *subs))
            out[name].append(z3.is_true(value) if z3.is_bool(value) else value.as_long())
    return {name: np.array(values) for name, values in out.items()}
