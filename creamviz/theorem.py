"""An exact, brute-force audit of the paper's Theorem B.1 on the spanning size ``|D_r|``.

Setting (conventions of docs/CREAM.md): N position ids in ``[0, L)``, head ``[0, L_h)``, middle
``[P_s, P_e]`` with ``P_e`` inclusive (``L_m = P_e - P_s + 1``), tail ``[L - L_t, L)``,
``L_h + L_m + L_t = N``, all three segments non-empty, and
``D_r = {p[i] - p[j] : i >= j}`` (0 included). For fixed ``(N, L, L_h, L_t)`` the only free
choice is the middle placement ``P_s in [L_h, L - L_t - L_m]``.

The seed's statement: *if N << L, |D_r| reaches its maximum iff one of two groups of
inequalities holds, where max |D_r| = max(L_h - 1, P_e - P_s, L_t - 1) + 2N.*

What the interval structure gives (``W = max(L_h, L_m, L_t)``; see :mod:`creamviz.coverage`):
``D_r = [0, W-1] ∪ HM ∪ MT ∪ HT`` with HM ``[P_s - L_h + 1, P_e]`` (size ``L_h + L_m - 1``),
MT ``[L - L_t - P_e, L - 1 - P_s]`` (size ``L_m + L_t - 1``) and HT ``[L - L_t - L_h + 1, L - 1]``
(size ``L_h + L_t - 1``). Their sizes add up to ``W + 2N - 3`` whatever the placement, so
``|D_r| <= W + 2N - 3`` with equality iff the four intervals are pairwise disjoint — which
:func:`conditions_hold` spells out as two groups of inequalities. Everything here is checked
against brute force over the real id vectors (:func:`creamviz.coverage.span_size_from_ids`).

Findings (every configuration with N <= 12, L <= 48 brute-forced; see docs/theorem.md):

- the constant is refuted: the true maximum is ``W + 2N - 3`` (``D_r`` with 0), two less than
  the seed's ``max(L_h - 1, P_e - P_s, L_t - 1) + 2N = W + 2N - 1``; without 0 it is three
  less, and no checked convention (0 in or out, signed distances, ``P_e`` exclusive) gives it;
- the "iff" holds with the conditions of :func:`conditions_hold` exactly when
  ``L >= L* = N + L_m + min(L_h, L_t) + 2W - 3`` (:func:`min_target_len`, at most ``4N - 8``);
  below ``L*`` no placement satisfies them, yet the maximum is still reached somewhere;
- so "N << L" can be made exact: ``L >= L*``, and ``L >= 4N - 8`` suffices for every split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from creamviz.coverage import CONVENTIONS, _pieces, span_size_from_ids
from creamviz.validation import check_int

__all__ = [
    "TheoremAudit",
    "RegionMap",
    "placements",
    "spans",
    "max_span",
    "upper_bound",
    "paper_value",
    "conditions_hold",
    "min_target_len",
    "audit",
    "audit_all",
    "summarize_audits",
    "describe_audit",
    "AuditSummary",
    "region_map",
]

BRUTE_FORCE_PAIRS = 1 << 22  # audit() uses brute force when placements * N^2 is at most this
MAX_PLACEMENTS = 1 << 26  # L - N + 1 placements held at once by placements() / audit() (512 MiB of int64)
MAX_AUDITS = 200_000  # configurations audit_all() runs (about a minute on one core)
MAX_AUDIT_PLACEMENTS = 1 << 26  # placements summed over audit_all()'s configurations (memory of the result)
MAX_REGION_CELLS = 1 << 25  # head lengths x L cells of region_map() (several (H, L) arrays)


# --------------------------------------------------------------------------- validation
def _check_config(train_len, target_len, head_len, tail_len) -> tuple[int, int, int, int, int]:
    """Validate (N, L, L_h, L_t) with three non-empty segments; return them and L_m."""
    big_n = check_int("train_len", train_len, 3, hint=" (head, middle and tail need a token each)")
    big_l = check_int("target_len", target_len, big_n + 1, hint=" (must exceed train_len)")
    head_len = check_int("head_len", head_len, 1, big_n - 2)
    tail_len = check_int("tail_len", tail_len, 1, big_n - 1 - head_len,
                          hint=f" (the middle needs >= 1 token when head_len={head_len})")
    return big_n, big_l, head_len, tail_len, big_n - head_len - tail_len


def _check_convention(convention: str) -> str:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention={convention!r} is not valid; valid: {', '.join(map(repr, CONVENTIONS))}")
    return convention


def _to_convention(size, convention: str):
    """Map ``|D_r|`` (i>=j) to the other conventions (ids strictly increase)."""
    return {"i>=j": size, "i>j": size - 1, "all": 2 * size - 1}[convention]


# --------------------------------------------------------------------------- closed form
def placements(train_len: int, target_len: int, head_len: int, tail_len: int) -> np.ndarray:
    """Every feasible middle start ``P_s`` for these lengths: ``L_h .. L - L_t - L_m``, (P,) int64."""
    big_n, big_l, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    count = big_l - big_n + 1
    if count > MAX_PLACEMENTS:
        raise ValueError(f"target_len={big_l}: L - N + 1 = {count} placements exceed the limit {MAX_PLACEMENTS} "
                         f"({count * 8 / 2**20:.0f} MiB of int64 per array); use a smaller target_len")
    return np.arange(head_len, big_l - tail_len - mid_len + 1, dtype=np.int64)


def spans(train_len: int, target_len: int, head_len: int, tail_len: int, mid_start=None, *,
          convention: str = "i>=j") -> np.ndarray:
    """Closed-form ``|D_r|`` at each ``mid_start`` (default: every feasible placement), int64."""
    _check_convention(convention)
    big_n, big_l, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    starts = placements(big_n, big_l, head_len, tail_len) if mid_start is None else \
        _check_mid_start(mid_start, big_l, head_len, tail_len, mid_len)
    flat = np.atleast_1d(starts).ravel()
    full = np.full_like(flat, head_len)
    lows, highs = _pieces(full, flat, flat + mid_len - 1, np.full_like(flat, tail_len), big_l)
    size = sum(np.maximum(hi - lo + 1, 0) for lo, hi in zip(lows, highs, strict=True))
    return _to_convention(size, convention).reshape(np.shape(starts))


def _check_mid_start(mid_start, big_l: int, head_len: int, tail_len: int, mid_len: int) -> np.ndarray:
    starts = np.asarray(mid_start)
    if starts.size == 0 or not np.issubdtype(starts.dtype, np.integer):
        raise ValueError(f"mid_start must be a non-empty integer scalar or array, got {mid_start!r}")
    starts = starts.astype(np.int64)
    lo, hi = head_len, big_l - tail_len - mid_len
    if starts.min() < lo or starts.max() > hi:
        bad = starts[(starts < lo) | (starts > hi)].ravel()[0]
        raise ValueError(f"mid_start={bad} is out of range: valid is [{lo}, {hi}] (P_s >= L_h and "
                         f"P_e = P_s + L_m - 1 <= L - L_t - 1)")
    return starts


def upper_bound(train_len: int, target_len: int, head_len: int, tail_len: int, *,
                convention: str = "i>=j") -> int:
    """``W + 2N - 3`` (``W = max(L_h, L_m, L_t)``): the sum of the four interval sizes, an upper
    bound on ``|D_r|`` for every placement, reached iff the intervals are disjoint."""
    big_n, _, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    return int(_to_convention(max(head_len, mid_len, tail_len) + 2 * big_n - 3, _check_convention(convention)))


def paper_value(train_len: int, target_len: int, head_len: int, tail_len: int, *,
                middle_end: str = "inclusive") -> int:
    """The seed's constant ``max(L_h - 1, P_e - P_s, L_t - 1) + 2N``.

    ``middle_end="inclusive"`` reads ``P_e - P_s = L_m - 1`` (this project's convention);
    ``"exclusive"`` reads ``P_e - P_s = L_m`` (a middle ``[P_s, P_e)``). It does not depend on
    the placement, only on the lengths.
    """
    big_n, _, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    if middle_end not in ("inclusive", "exclusive"):
        raise ValueError(f"middle_end={middle_end!r} is not valid; valid: 'inclusive', 'exclusive'")
    pe_minus_ps = mid_len - 1 if middle_end == "inclusive" else mid_len
    return max(head_len - 1, pe_minus_ps, tail_len - 1) + 2 * big_n


def max_span(train_len: int, target_len: int, head_len: int, tail_len: int, *,
             convention: str = "i>=j") -> tuple[int, np.ndarray]:
    """Largest ``|D_r|`` over every feasible middle placement, and the ``P_s`` values reaching it.

    Exhaustive over ``P_s in [L_h, L - L_t - L_m]`` with the closed form. Returns
    ``(max, mid_starts)`` with ``mid_starts`` (k,) int64, sorted.
    """
    starts = placements(train_len, target_len, head_len, tail_len)
    size = spans(train_len, target_len, head_len, tail_len, starts, convention=convention)
    best = int(size.max())
    return best, starts[size == best]


def conditions_hold(train_len: int, target_len: int, head_len: int, tail_len: int, mid_start) -> np.ndarray:
    """The reconstructed conditions of Theorem B.1 at each ``mid_start`` (``P_s``): bool array.

    With ``P_e = P_s + L_m - 1`` and ``W = max(L_h, L_m, L_t)``, one of two groups must hold:

    (A) middle nearer the head — the head-middle distances all lie below the middle-tail ones:
        ``P_s >= L_h + W - 1``            (head-middle clears the within-segment ``[0, W-1]``)
        ``2 P_e <= L - L_t - 1``          (head-middle ends before middle-tail starts)
        ``P_s >= L_h + L_t - 1``          (middle-tail ends before head-tail starts)
    (B) middle nearer the tail — the mirror image (``p -> L - 1 - p`` swaps head and tail):
        ``P_e <= L - L_t - W``            (middle-tail clears ``[0, W-1]``)
        ``2 P_s >= L + L_h - 1``          (middle-tail ends before head-middle starts)
        ``P_e <= L - L_t - L_h``          (head-middle ends before head-tail starts)

    Each group says exactly that the four intervals ``[0, W-1]``, head-middle, middle-tail and
    head-tail are pairwise disjoint (the other pairs follow from the listed ones), i.e. that
    ``|D_r|`` equals its upper bound ``W + 2N - 3``. ``mid_start``: int or int array of feasible
    placements; the result has its shape.
    """
    big_n, big_l, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    p_s = _check_mid_start(mid_start, big_l, head_len, tail_len, mid_len)
    p_e = p_s + mid_len - 1
    width = max(head_len, mid_len, tail_len)
    group_a = (p_s >= head_len + width - 1) & (2 * p_e <= big_l - tail_len - 1) & (p_s >= head_len + tail_len - 1)
    group_b = (p_e <= big_l - tail_len - width) & (2 * p_s >= big_l + head_len - 1) & (p_e <= big_l - tail_len - head_len)
    return group_a | group_b


def min_target_len(train_len: int, head_len: int, tail_len: int) -> int:
    """Smallest L at which some placement satisfies :func:`conditions_hold`: the exact "N << L".

    Group A is satisfiable iff ``L >= N + L_h + L_m + 2W - 3`` (put ``P_s = L_h + W - 1``),
    group B iff ``L >= N + L_t + L_m + 2W - 3``; so ``L* = N + L_m + min(L_h, L_t) + 2W - 3``
    (at most ``4N - 8``, proved for every N by :func:`creamviz.proof.claim_6`). For ``L >= L*`` the
    maximum equals the upper bound ``W + 2N - 3``.
    """
    big_n, _, head_len, tail_len, mid_len = _check_config(train_len, train_len + 1, head_len, tail_len)
    width = max(head_len, mid_len, tail_len)
    return big_n + mid_len + min(head_len, tail_len) + 2 * width - 3


# --------------------------------------------------------------------------- the audit
@dataclass(frozen=True)
class TheoremAudit:
    """Theorem B.1 checked at one ``(N, L, L_h, L_t)``, placement by placement."""

    train_len: int  # N
    target_len: int  # L
    head_len: int  # L_h
    tail_len: int  # L_t
    convention: str  # which pairs count in D_r ("i>=j": with 0)
    mid_starts: np.ndarray  # (P,) every feasible P_s
    spans: np.ndarray  # (P,) |D_r| per placement (brute force when brute_force)
    max_span: int  # the true maximum over placements
    maximisers: np.ndarray  # P_s values reaching max_span
    upper_bound: int  # W + 2N - 3 in this convention (sum of the interval sizes)
    paper_value: int  # max(L_h - 1, P_e - P_s, L_t - 1) + 2N, P_e inclusive
    paper_value_matches: bool  # paper_value == max_span
    paper_value_exclusive: int  # the same formula read with P_e exclusive (P_e - P_s = L_m)
    conditions: np.ndarray  # (P,) bool, conditions_hold per placement
    iff_holds: bool  # (span == max) == conditions at every placement
    counterexamples: np.ndarray  # (k,) P_s where the two sides disagree
    min_target_len: int  # L* from min_target_len(); the iff is predicted to hold iff L >= L*
    brute_force: bool  # spans come from the pairs of the real id vectors
    closed_form_matches: bool | None  # closed form == brute force at every placement (None: not run)

    @property
    def mid_len(self) -> int:
        """``L_m = N - L_h - L_t``."""
        return self.train_len - self.head_len - self.tail_len

    @property
    def paper_offset(self) -> int:
        """``paper_value - max_span`` (0 when the constant is right)."""
        return self.paper_value - self.max_span

    @property
    def counterexample_kinds(self) -> dict[str, np.ndarray]:
        """Counterexamples split by side: ``max_without_conditions`` / ``conditions_without_max``."""
        is_max = self.spans == self.max_span
        return {"max_without_conditions": self.mid_starts[is_max & ~self.conditions],
                "conditions_without_max": self.mid_starts[~is_max & self.conditions]}


def _layout_ids(big_n: int, big_l: int, head_len: int, tail_len: int, starts: np.ndarray) -> np.ndarray:
    """Real id vectors for every placement: (P, N) int64."""
    mid_len = big_n - head_len - tail_len
    ids = np.empty((len(starts), big_n), dtype=np.int64)
    ids[:, :head_len] = np.arange(head_len)
    ids[:, head_len:head_len + mid_len] = starts[:, None] + np.arange(mid_len)
    ids[:, head_len + mid_len:] = np.arange(big_l - tail_len, big_l)
    return ids


def audit(train_len: int, target_len: int, head_len: int, tail_len: int, *, convention: str = "i>=j",
          brute_force: bool | None = None) -> TheoremAudit:
    """Check every part of Theorem B.1 at one configuration, over every middle placement.

    ``brute_force``: ``True`` computes ``|D_r|`` from all pairs of the real id vectors (and
    compares it with the closed form), ``False`` uses the closed form only, ``None`` (default)
    uses brute force when ``placements * N^2 <= BRUTE_FORCE_PAIRS``.
    """
    _check_convention(convention)
    big_n, big_l, head_len, tail_len, mid_len = _check_config(train_len, target_len, head_len, tail_len)
    starts = placements(big_n, big_l, head_len, tail_len)
    closed = spans(big_n, big_l, head_len, tail_len, starts, convention=convention)
    if brute_force is None:
        brute_force = len(starts) * big_n * big_n <= BRUTE_FORCE_PAIRS
    if brute_force:
        size = span_size_from_ids(_layout_ids(big_n, big_l, head_len, tail_len, starts), convention=convention)
        closed_ok: bool | None = bool(np.array_equal(size, closed))
    else:
        size, closed_ok = closed, None
    best = int(size.max())
    is_max = size == best
    cond = conditions_hold(big_n, big_l, head_len, tail_len, starts)
    paper = paper_value(big_n, big_l, head_len, tail_len)
    return TheoremAudit(
        train_len=big_n, target_len=big_l, head_len=head_len, tail_len=tail_len, convention=convention,
        mid_starts=starts, spans=size, max_span=best, maximisers=starts[is_max],
        upper_bound=upper_bound(big_n, big_l, head_len, tail_len, convention=convention),
        paper_value=paper, paper_value_matches=paper == best,
        paper_value_exclusive=paper_value(big_n, big_l, head_len, tail_len, middle_end="exclusive"),
        conditions=cond, iff_holds=bool(np.array_equal(is_max, cond)), counterexamples=starts[is_max != cond],
        min_target_len=min_target_len(big_n, head_len, tail_len), brute_force=bool(brute_force),
        closed_form_matches=closed_ok)


def audit_all(max_train_len: int, max_target_len: int, *, min_train_len: int = 3, convention: str = "i>=j",
              brute_force: bool | None = None) -> list[TheoremAudit]:
    """:func:`audit` at every ``3 <= N <= max_train_len``, ``N < L <= max_target_len``,
    ``L_h, L_t >= 1`` with ``L_h + L_t <= N - 1``. Returns the audits in that loop order."""
    max_train_len = check_int("max_train_len", max_train_len, 3)
    min_train_len = check_int("min_train_len", min_train_len, 3, max_train_len)
    max_target_len = check_int("max_target_len", max_target_len, max_train_len + 1,
                                hint=" (must exceed max_train_len)")
    configs = placements_total = 0  # counted before anything runs
    for big_n in range(min_train_len, max_train_len + 1):
        splits = (big_n - 1) * (big_n - 2) // 2  # (L_h, L_t) with L_h, L_t >= 1, L_h + L_t <= N - 1
        n_lengths = max_target_len - big_n
        configs += splits * n_lengths
        placements_total += splits * n_lengths * (n_lengths + 3) // 2  # sum over L of L - N + 1
    if configs > MAX_AUDITS or placements_total > MAX_AUDIT_PLACEMENTS:
        raise ValueError(
            f"audit_all({max_train_len}, {max_target_len}) would run {configs} audits over {placements_total} "
            f"placements; that exceeds the limit of {MAX_AUDITS} audits / {MAX_AUDIT_PLACEMENTS} placements "
            "(time and the memory of the result); lower max_train_len or max_target_len")
    out = []
    for big_n in range(min_train_len, max_train_len + 1):
        for big_l in range(big_n + 1, max_target_len + 1):
            for head_len in range(1, big_n - 1):
                for tail_len in range(1, big_n - head_len):
                    out.append(audit(big_n, big_l, head_len, tail_len, convention=convention,
                                     brute_force=brute_force))
    return out


class AuditSummary(dict):
    """The counts of :func:`summarize_audits` (a plain ``dict``) that display as a two-column table,
    one line per part of the statement, in a notebook (``_repr_html_``) and as text (``str``)."""

    ROWS = (  # (key, what it counts); the denominator is "configs" unless it is named
        ("configs", "configurations (N, L, L_h, L_t) audited"),
        ("brute_forced", "… checked by brute force over every middle placement"),
        ("closed_form_mismatches", "closed-form |D_r| ≠ brute force"),
        ("paper_value_matches", "paper's constant max(L_h−1, P_e−P_s, L_t−1) + 2N equals the true max"),
        ("paper_offsets", "paper's constant − true max (distinct values)"),
        ("max_equals_upper_bound", "true max reaches the bound W + 2N − 3"),
        ("iff_holds", "the 'iff' holds (maximal placements = those meeting the conditions)"),
        ("iff_as_predicted", "'iff' holds exactly when L ≥ L*"),
        ("configs_L_ge_Lstar", "configurations with L ≥ L*"),
        ("iff_holds_when_L_ge_Lstar", "… of which the 'iff' holds"),
    )

    def _lines(self) -> list[tuple[str, str]]:
        total = self["configs"]
        out = []
        for key, what in self.ROWS:
            value = self[key]
            if key == "paper_offsets":
                shown = ", ".join(f"{v:+d}" for v in value)
            elif key == "configs":
                shown = f"{value:,}"
            elif key == "iff_holds_when_L_ge_Lstar":
                shown = f"{value:,} of {self['configs_L_ge_Lstar']:,}"
            else:
                shown = f"{value:,} of {total:,}"
            out.append((what, shown))
        return out

    def __str__(self) -> str:
        lines = self._lines()
        width = max(len(w) for w, _ in lines)
        return "\n".join(f"{w:<{width}}  {v}" for w, v in lines)

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td style='text-align:left'>{html.escape(w)}</td>"
                       f"<td style='text-align:right'>{html.escape(v)}</td></tr>" for w, v in self._lines())
        return ("<table><thead><tr><th style='text-align:left'>Theorem B.1 sweep</th>"
                f"<th style='text-align:right'>count</th></tr></thead><tbody>{rows}</tbody></table>")

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's plain-text display
        printer.text(str(self))


def summarize_audits(audits: list[TheoremAudit]) -> AuditSummary:
    """Counts over a sweep: how often each part of the statement holds, and the constant's offsets.

    Keys: ``configs``; ``paper_value_matches``; ``paper_offsets`` (sorted distinct
    ``paper_value - max_span``); ``max_equals_upper_bound``; ``iff_holds``;
    ``iff_as_predicted`` (``iff_holds == (L >= L*)``); ``iff_holds_when_L_ge_Lstar`` and
    ``configs_L_ge_Lstar``; ``brute_forced``; ``closed_form_mismatches``. A ``dict`` that a
    notebook shows as a table (:class:`AuditSummary`).
    """
    if not audits:
        raise ValueError("audits must not be empty")
    big = [a for a in audits if a.target_len >= a.min_target_len]
    return AuditSummary({
        "configs": len(audits),
        "paper_value_matches": sum(a.paper_value_matches for a in audits),
        "paper_offsets": sorted({a.paper_offset for a in audits}),
        "max_equals_upper_bound": sum(a.max_span == a.upper_bound for a in audits),
        "iff_holds": sum(a.iff_holds for a in audits),
        "iff_as_predicted": sum(a.iff_holds == (a.target_len >= a.min_target_len) for a in audits),
        "configs_L_ge_Lstar": len(big),
        "iff_holds_when_L_ge_Lstar": sum(a.iff_holds for a in big),
        "brute_forced": sum(a.brute_force for a in audits),
        "closed_form_mismatches": sum(a.closed_form_matches is False for a in audits),
    })


# --------------------------------------------------------------------------- region map data
@dataclass(frozen=True)
class RegionMap:
    """``|D_r|`` over every middle placement (x) and head length (y), for the region-map figure."""

    train_len: int  # N
    target_len: int  # L
    head_lens: np.ndarray  # (H,) L_h per row
    tail_lens: np.ndarray  # (H,) L_t per row
    mid_starts: np.ndarray  # (X,) P_s per column: 0 .. L - 1
    spans: np.ndarray  # (H, X) float |D_r|, NaN where the placement is infeasible
    is_max: np.ndarray  # (H, X) bool, placement reaches the row's maximum
    conditions: np.ndarray  # (H, X) bool, conditions_hold
    upper_bounds: np.ndarray  # (H,) W + 2N - 3 per row
    paper_values: np.ndarray  # (H,) the seed's constant per row


def region_map(train_len: int, target_len: int, *, head_lens=None, tail_len: int | None = None) -> RegionMap:
    """Data for the region map: every head length in ``head_lens`` (default ``1 .. (N-1)//2``)
    with ``L_t = L_h`` (CREAM's symmetric branches) or a fixed ``tail_len``, every placement."""
    big_n = check_int("train_len", train_len, 3)
    big_l = check_int("target_len", target_len, big_n + 1, hint=" (must exceed train_len)")
    if head_lens is None:
        head_lens = np.arange(1, (big_n - 1) // 2 + 1) if tail_len is None else np.arange(1, big_n - tail_len)
    head_lens = np.atleast_1d(np.asarray(head_lens))
    if head_lens.size == 0 or not np.issubdtype(head_lens.dtype, np.integer):
        raise ValueError(f"head_lens must be a non-empty integer array, got {head_lens!r}")
    if head_lens.size * big_l > MAX_REGION_CELLS:
        raise ValueError(f"the region map needs {head_lens.size} head lengths x target_len={big_l} = "
                         f"{head_lens.size * big_l} cells, which exceed the limit {MAX_REGION_CELLS}; "
                         "pass fewer head_lens or a smaller target_len")
    tails = head_lens.copy() if tail_len is None else np.full_like(head_lens, tail_len)
    xs = np.arange(big_l, dtype=np.int64)
    span = np.full((len(head_lens), big_l), np.nan)
    is_max = np.zeros((len(head_lens), big_l), dtype=bool)
    cond = np.zeros_like(is_max)
    bounds, papers = [], []
    for row, (h, t) in enumerate(zip(head_lens.tolist(), tails.tolist(), strict=True)):
        starts = placements(big_n, big_l, h, t)
        size = spans(big_n, big_l, h, t, starts)
        span[row, starts] = size
        is_max[row, starts] = size == size.max()
        cond[row, starts] = conditions_hold(big_n, big_l, h, t, starts)
        bounds.append(upper_bound(big_n, big_l, h, t))
        papers.append(paper_value(big_n, big_l, h, t))
    return RegionMap(big_n, big_l, head_lens.astype(np.int64), tails.astype(np.int64), xs, span, is_max, cond,
                     np.array(bounds), np.array(papers))


def describe_audit(audit: TheoremAudit) -> str:
    """The audit's verdict in plain words (one paragraph, paper symbols)."""
    a = audit
    starts = a.maximisers.tolist()
    shown = ", ".join(map(str, starts[:8])) + (" …" if len(starts) > 8 else "")
    parts = [f"N = {a.train_len}, L = {a.target_len}, L_h = {a.head_len}, L_m = {a.mid_len}, L_t = {a.tail_len}: "
             f"the largest |D_r| over all {len(a.mid_starts)} middle placements is {a.max_span}, "
             f"reached at P_s ∈ {{{shown}}}."]
    if a.paper_value_matches:
        parts.append(f"The paper's constant max(L_h−1, P_e−P_s, L_t−1) + 2N = {a.paper_value} matches.")
    else:
        parts.append(f"The paper's constant max(L_h−1, P_e−P_s, L_t−1) + 2N = {a.paper_value} (P_e inclusive) is "
                     f"off by {a.paper_value - a.max_span:+d}; read with P_e exclusive it gives "
                     f"{a.paper_value_exclusive}.")
    parts.append(f"The upper bound W + 2N − 3 = {a.upper_bound} (W = max(L_h, L_m, L_t)) is "
                 f"{'reached' if a.max_span == a.upper_bound else 'not reached: the four distance intervals cannot be made disjoint'}.")
    if a.iff_holds:
        parts.append("The reconstructed conditions hold exactly at the maximal placements: the 'iff' holds here.")
    else:
        bad = a.counterexamples.tolist()
        parts.append(f"The 'iff' fails at {len(bad)} placement(s), P_s ∈ {{{', '.join(map(str, bad[:8]))}"
                     f"{' …' if len(bad) > 8 else ''}}}.")
    parts.append(f"Predicted threshold: the iff holds for every L ≥ L* = {a.min_target_len}.")
    return " ".join(parts)
