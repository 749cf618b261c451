"""creamviz.theorem: the Theorem B.1 audit against brute force over real id vectors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creamviz import theorem as th
from creamviz.coverage import relative_distances
from creamviz.figures.coverage import fig_region_map


def layout_ids(big_n, big_l, h, t, s):
    m = big_n - h - t
    return np.concatenate([np.arange(h), np.arange(s, s + m), np.arange(big_l - t, big_l)])


def brute_spans(big_n, big_l, h, t):
    """|D_r| at every feasible placement, from relative_distances on the real id vectors."""
    starts = np.arange(h, big_l - t - (big_n - h - t) + 1)
    return starts, np.array([len(relative_distances(layout_ids(big_n, big_l, h, t, s))) for s in starts])


def small_configs(max_n, max_l):
    for big_n in range(3, max_n + 1):
        for big_l in range(big_n + 1, max_l + 1):
            for h in range(1, big_n - 1):
                for t in range(1, big_n - h):
                    yield big_n, big_l, h, t


def test_max_span_exhaustive_vs_brute_force():
    for big_n, big_l, h, t in small_configs(7, 24):
        starts, size = brute_spans(big_n, big_l, h, t)
        best, where = th.max_span(big_n, big_l, h, t)
        assert best == size.max(), (big_n, big_l, h, t)
        np.testing.assert_array_equal(where, starts[size == size.max()])


def test_conditions_are_exactly_disjointness():
    """conditions_hold <=> |D_r| equals the sum of the interval sizes W + 2N - 3 (brute force)."""
    for big_n, big_l, h, t in small_configs(7, 30):
        starts, size = brute_spans(big_n, big_l, h, t)
        bound = th.upper_bound(big_n, big_l, h, t)
        assert size.max() <= bound
        np.testing.assert_array_equal(th.conditions_hold(big_n, big_l, h, t, starts), size == bound)


@settings(max_examples=80, deadline=None)
@given(st.integers(3, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(n + 1, 5 * n), st.integers(1, n - 2), st.integers(1, n - 2), st.integers(0, 10**6))))
def test_audit_hypothesis_larger(cfg):
    big_n, big_l, h, t, pick = cfg
    t = min(t, big_n - 1 - h)
    starts = th.placements(big_n, big_l, h, t)
    s = starts[pick % len(starts)]
    assert th.spans(big_n, big_l, h, t, s) == len(relative_distances(layout_ids(big_n, big_l, h, t, s)))
    a = th.audit(big_n, big_l, h, t)
    assert a.closed_form_matches in (True, None)
    assert a.iff_holds == (big_l >= a.min_target_len)
    if big_l >= a.min_target_len:
        assert a.max_span == a.upper_bound == a.paper_value - 2


def test_min_target_len_is_the_exact_threshold():
    for big_n in range(3, 9):
        for h in range(1, big_n - 1):
            for t in range(1, big_n - h):
                lstar = th.min_target_len(big_n, h, t)
                assert lstar <= 4 * big_n - 8  # the worst split is L_h = L_t = 1
                assert (lstar == 4 * big_n - 8) == (h == t == 1)
                for big_l in range(big_n + 1, lstar + 3):
                    starts, size = brute_spans(big_n, big_l, h, t)
                    reaches_bound = size.max() == th.upper_bound(big_n, big_l, h, t)
                    assert reaches_bound == (big_l >= lstar), (big_n, h, t, big_l)


def test_audit_counterexample_small_target():
    # N = 4, L = 5, L_h = L_t = 1: every layout is 0 | P_s P_s+1 | 4 and no placement separates
    # the cross-segment intervals, so the maximum (5) is reached where the conditions fail.
    a = th.audit(4, 5, 1, 1)
    assert a.brute_force and a.closed_form_matches
    assert a.max_span == 5 and a.upper_bound == 7 and a.paper_value == 9 and not a.paper_value_matches
    assert not a.conditions.any() and not a.iff_holds
    np.testing.assert_array_equal(a.counterexamples, a.maximisers)
    np.testing.assert_array_equal(a.counterexample_kinds["max_without_conditions"], [1, 2])
    assert a.min_target_len == 8
    assert th.audit(4, 8, 1, 1).iff_holds


def test_audit_constant_off_by_two():
    a = th.audit(12, 60, 2, 2)  # L >= L*: maximum = W + 2N - 3, the paper says W + 2N - 1
    assert a.target_len >= a.min_target_len and a.iff_holds and a.counterexamples.size == 0
    assert a.max_span == a.upper_bound == 8 + 24 - 3
    assert a.paper_value == 7 + 24 and a.paper_offset == 2
    assert a.paper_value_exclusive == 8 + 24
    best = max(len(relative_distances(layout_ids(12, 60, 2, 2, s))) for s in a.mid_starts)
    assert best == a.max_span


@pytest.mark.parametrize("convention,offset", [("i>=j", 2), ("i>j", 3)])
def test_conventions(convention, offset):
    a = th.audit(9, 50, 2, 3, convention=convention)
    assert a.closed_form_matches and a.iff_holds
    assert a.paper_value - a.max_span == offset
    signed = th.audit(9, 50, 2, 3, convention="all")
    assert signed.max_span == 2 * th.audit(9, 50, 2, 3).max_span - 1


def test_audit_all_summary():
    audits = th.audit_all(8, 30)
    summary = th.summarize_audits(audits)
    assert summary["configs"] == len(list(small_configs(8, 30)))
    assert summary["brute_forced"] == summary["configs"] and summary["closed_form_mismatches"] == 0
    assert summary["paper_value_matches"] == 0
    assert summary["iff_as_predicted"] == summary["configs"]
    assert summary["iff_holds"] == summary["configs_L_ge_Lstar"] == summary["max_equals_upper_bound"]
    assert min(summary["paper_offsets"]) == 2
    assert all(a.paper_offset == 2 for a in audits if a.target_len >= a.min_target_len)
    # shown as a table, one line per count, with the counts of the dict
    text, table = str(summary), summary._repr_html_()
    assert len(text.splitlines()) == len(th.AuditSummary.ROWS) and "{" not in text
    assert f"{summary['iff_holds']:,} of {summary['configs']:,}" in text
    assert table.count("<tr>") == len(th.AuditSummary.ROWS) + 1 and "+2" in table


@pytest.mark.slow
def test_audit_all_larger_sweep():
    summary = th.summarize_audits(th.audit_all(12, 48))
    assert summary["closed_form_mismatches"] == 0 and summary["brute_forced"] == summary["configs"]
    assert summary["iff_as_predicted"] == summary["configs"]
    assert summary["paper_value_matches"] == 0


def test_audit_closed_form_path():
    a = th.audit(64, 400, 20, 21, brute_force=False)
    assert not a.brute_force and a.closed_form_matches is None
    assert a.iff_holds and a.max_span == a.upper_bound


def test_bad_input():
    with pytest.raises(ValueError, match="train_len=2"):
        th.max_span(2, 10, 1, 1)
    with pytest.raises(ValueError, match="target_len=8"):
        th.max_span(8, 8, 1, 1)
    with pytest.raises(ValueError, match="head_len=0"):
        th.audit(8, 20, 0, 1)
    with pytest.raises(ValueError, match="tail_len=5"):
        th.max_span(8, 20, 3, 5)
    with pytest.raises(ValueError, match="mid_start=0"):
        th.conditions_hold(8, 20, 2, 2, np.array([0, 5]))
    with pytest.raises(ValueError, match="mid_start=17"):
        th.conditions_hold(8, 20, 2, 2, 17)
    with pytest.raises(ValueError, match="convention"):
        th.audit(8, 20, 2, 2, convention="signed")
    with pytest.raises(ValueError, match="middle_end"):
        th.paper_value(8, 20, 2, 2, middle_end="open")
    with pytest.raises(ValueError, match="max_target_len"):
        th.audit_all(8, 8)
    with pytest.raises(ValueError, match="audits"):
        th.summarize_audits([])


def test_region_map_and_figure():
    region = th.region_map(10, 40)
    assert region.spans.shape == (len(region.head_lens), 40)
    for row, h in enumerate(region.head_lens):
        best, where = th.max_span(10, 40, int(h), int(h))
        np.testing.assert_array_equal(np.flatnonzero(region.is_max[row]), where)
        assert np.nanmax(region.spans[row]) == best
        feasible = ~np.isnan(region.spans[row])
        np.testing.assert_array_equal(np.flatnonzero(feasible), th.placements(10, 40, int(h), int(h)))
    fig = fig_region_map(region, title="map")
    names = [tr.name for tr in fig.data]
    assert names[:3] == ["|D_r|", "maximal", "conditions hold"]
    assert {"true max", "upper bound W+2N−3"} <= set(names)
    assert fig.layout.title.text == "map"
    # the outlines against brute force: every unit cell edge between a marked cell and an unmarked
    # (or outside) neighbour, from the cells one by one
    for trace, mask in ((fig.data[1], region.is_max), (fig.data[2], region.conditions)):
        drawn = set()
        xs, ys = list(trace.x), list(trace.y)
        for k in range(0, len(xs), 3):  # pieces (x0, x1, None): split into unit edges
            (x0, x1), (y0, y1) = sorted(xs[k:k + 2]), sorted(ys[k:k + 2])
            assert xs[k + 2] is None and (x0 == x1 or y0 == y1)
            drawn |= ({("h", x0 + i, y0) for i in range(round(x1 - x0))} if y0 == y1 else
                      {("v", x0, y0 + i) for i in range(round(y1 - y0))})
        expected = set()
        n_rows, n_cols = mask.shape
        for r in range(n_rows):
            for c in range(n_cols):
                if not mask[r, c]:
                    continue
                x, y = region.mid_starts[c], region.head_lens[r]
                if r == 0 or not mask[r - 1, c]:
                    expected.add(("h", x - 0.5, y - 0.5))
                if r == n_rows - 1 or not mask[r + 1, c]:
                    expected.add(("h", x - 0.5, y + 0.5))
                if c == 0 or not mask[r, c - 1]:
                    expected.add(("v", x - 0.5, y - 0.5))
                if c == n_cols - 1 or not mask[r, c + 1]:
                    expected.add(("v", x + 0.5, y - 0.5))
        assert drawn == expected and expected
    legend, bar = fig.layout.legend, fig.data[0].colorbar
    assert legend.orientation == "h" and legend.y >= 1  # above the panels, off the axis titles
    assert bar.x >= 1  # right of both panels, not over the "maximum vs constants" panel
    fixed = th.region_map(10, 40, tail_len=2)
    assert (fixed.tail_lens == 2).all() and fixed.head_lens.max() == 7
    with pytest.raises(ValueError, match="RegionMap"):
        fig_region_map({"spans": np.ones((2, 2))})


def test_fig_span_profile_marks_maximal_placements_at_any_size():
    from creamviz.figures.audit import MAX_MARKED, fig_span_profile

    small = th.audit(12, 60, 2, 3)
    fig = fig_span_profile(small)
    maximal = next(t for t in fig.data if t.name == "maximal")
    assert sorted(maximal.x) == small.maximisers.tolist()  # one marker per maximal placement
    big = th.audit(64, 1024, 20, 20)
    assert len(big.mid_starts) > MAX_MARKED
    fig = fig_span_profile(big)
    for name, expected in (("maximal", set(big.maximisers.tolist())),
                           ("conditions hold", set(np.asarray(big.mid_starts)[np.asarray(big.conditions)].tolist()))):
        trace = next(t for t in fig.data if t.name == name)
        xs = list(trace.x)
        covered = set()
        for k in range(0, len(xs), 3):  # bars (x0, x1, None) over runs of placements
            covered |= set(range(round(xs[k] + 0.5), round(xs[k + 1] - 0.5) + 1))
        assert covered == expected and expected
