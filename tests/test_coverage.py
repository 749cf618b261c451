"""creamviz.coverage: closed form == brute force, counts, curves, figures, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creamviz import coverage as cv
from creamviz.figures.coverage import fig_coverage_curves, fig_distance_frequency
from creamviz.samplers import ContiguousSampler, CreamSampler, PoseSampler, RandPosSampler, Segments


def naive_distances(p, convention="i>=j"):
    """The definition, pair by pair in Python."""
    n = len(p)
    if convention == "i>=j":
        pairs = [(i, j) for i in range(n) for j in range(i + 1)]
    elif convention == "i>j":
        pairs = [(i, j) for i in range(n) for j in range(i)]
    else:
        pairs = [(i, j) for i in range(n) for j in range(n)]
    return np.array(sorted({int(p[i]) - int(p[j]) for i, j in pairs}), dtype=np.int64)


def all_layouts(big_n, big_l):
    """Every valid layout with possibly empty segments (PoSE / contiguous shapes included)."""
    rows = []
    for h in range(big_n + 1):
        for t in range(big_n - h + 1):
            m = big_n - h - t
            if m == 0:
                rows.append((h, h, h - 1, t))  # empty middle: mid_end = mid_start - 1
            else:
                rows.extend((h, s, s + m - 1, t) for s in range(h, big_l - t - m + 1))
    h, s, e, t = (np.array(c, dtype=np.int64) for c in zip(*rows, strict=True))
    return Segments(h, s, e, t, np.full(len(h), -1), big_n, big_l)


def brute_counts(ids, big_l):
    counts = np.zeros(big_l, dtype=np.int64)
    for row in ids:
        counts[cv.relative_distances(row)] += 1
    return counts


def small_samples(n=300, seed=0):
    big_n, big_l = 12, 60
    return {
        "cream": CreamSampler(big_n, big_l, k=2).sample(n, seed=seed),
        "cream-truncnorm": CreamSampler(big_n, big_l, k=3, middle="truncnorm").sample(n, seed=seed),
        "cream-uniform": CreamSampler(big_n, 53, k=1, middle="uniform").sample(n, seed=seed),
        "pose": PoseSampler(big_n, big_l).sample(n, seed=seed),
        "contiguous": ContiguousSampler(big_n, big_l).sample(n),
    }


# --------------------------------------------------------------------------- relative_distances
@pytest.mark.parametrize("convention", cv.CONVENTIONS)
def test_relative_distances_matches_definition(convention):
    rng = np.random.default_rng(0)
    for _ in range(30):
        p = rng.integers(-20, 40, size=rng.integers(1, 15))  # any vector: unsorted, repeats, negatives
        np.testing.assert_array_equal(cv.relative_distances(p, convention=convention), naive_distances(p, convention))


def test_relative_distances_zero_convention():
    p = np.array([0, 3, 7])
    assert cv.relative_distances(p).tolist() == [0, 3, 4, 7]
    assert cv.relative_distances(p, convention="i>j").tolist() == [3, 4, 7]
    assert cv.relative_distances(p, convention="all").tolist() == [-7, -4, -3, 0, 3, 4, 7]


def test_relative_distances_blocks(monkeypatch):
    monkeypatch.setattr(cv, "BLOCK_ELEMENTS", 7)  # force many row blocks
    p = np.sort(np.random.default_rng(1).choice(200, 25, replace=False))
    np.testing.assert_array_equal(cv.relative_distances(p), naive_distances(p))


def test_relative_distances_bad_input(monkeypatch):
    with pytest.raises(ValueError, match="1-D"):
        cv.relative_distances(np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="empty"):
        cv.relative_distances(np.array([], dtype=int))
    with pytest.raises(ValueError, match="integers"):
        cv.relative_distances(np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match="convention"):
        cv.relative_distances(np.arange(3), convention="i<j")
    monkeypatch.setattr(cv, "MAX_BRUTE_LEN", 10)
    with pytest.raises(ValueError, match="MAX_BRUTE_LEN=10"):
        cv.relative_distances(np.arange(11))
    with pytest.raises(ValueError, match="too wide"):
        cv.relative_distances(np.array([0, cv.MAX_BITMAP]))


# --------------------------------------------------------------------------- span_size
@pytest.mark.parametrize("big_n,big_l", [(1, 3), (2, 5), (4, 9), (5, 13), (7, 12)])
def test_span_size_exhaustive_all_layouts(big_n, big_l):
    seg = all_layouts(big_n, big_l)
    ids = seg.position_ids()
    for convention in cv.CONVENTIONS:
        expected = np.array([len(naive_distances(r, convention)) for r in ids])
        np.testing.assert_array_equal(cv.span_size(seg, convention=convention), expected)
        np.testing.assert_array_equal(cv.span_size_from_ids(ids, convention=convention), expected)


@pytest.mark.parametrize("name", list(small_samples(1)))
def test_span_size_samplers_match_brute_force(name):
    seg = small_samples()[name]
    ids = seg.position_ids()
    expected = np.array([len(cv.relative_distances(r)) for r in ids])
    np.testing.assert_array_equal(cv.span_size(seg), expected)


def test_span_size_known_values():
    # contiguous: D_r = [0, N-1]
    assert cv.span_size(ContiguousSampler(8, 40).sample(3)).tolist() == [8, 8, 8]
    # ids 0 1 | 10 11 | 18 19: [0,1], head-middle [9,11], middle-tail [7,9] (shares 9), head-tail [17,19]
    one = Segments(np.array([2]), np.array([10]), np.array([11]), np.array([2]), np.array([1]), 6, 20)
    assert cv.span_size(one)[0] == len(naive_distances(one.position_ids()[0])) == 2 + 3 + 3 + 3 - 1
    lo, hi = cv.segment_intervals(one.head_len, one.mid_start, one.mid_end, one.tail_len, 20)
    assert [(a, b) for a, b in zip(lo[0], hi[0], strict=True) if b >= a] == [(0, 1), (7, 9), (10, 11), (17, 19)]


@st.composite
def layouts(draw):
    big_n = draw(st.integers(1, 60))
    big_l = draw(st.integers(big_n + 1, 400))
    h = draw(st.integers(0, big_n))
    t = draw(st.integers(0, big_n - h))
    m = big_n - h - t
    s = h if m == 0 else draw(st.integers(h, big_l - t - m))
    return Segments(np.array([h]), np.array([s]), np.array([s + m - 1]), np.array([t]), np.array([-1]),
                    big_n, big_l)


@settings(max_examples=200, deadline=None)
@given(layouts())
def test_span_size_hypothesis(seg):
    row = seg.position_ids()[0]
    for convention in cv.CONVENTIONS:
        assert cv.span_size(seg, convention=convention)[0] == len(cv.relative_distances(row, convention=convention))
    lo, hi = cv.segment_intervals(seg.head_len, seg.mid_start, seg.mid_end, seg.tail_len, seg.target_len)
    covered = np.concatenate([np.arange(a, b + 1) for a, b in zip(lo[0], hi[0], strict=True)])
    np.testing.assert_array_equal(covered, cv.relative_distances(row))  # disjoint, sorted pieces


def test_span_size_bad_input():
    with pytest.raises(ValueError, match="Segments"):
        cv.span_size(np.zeros((2, 4), dtype=int))
    # a hand-built layout is validated when it is built, so no function ever sees a bad one
    with pytest.raises(ValueError, match="add up to train_len=6"):
        Segments(np.array([2]), np.array([5]), np.array([6]), np.array([1]), np.array([0]), 6, 20)
    with pytest.raises(ValueError, match="overlaps"):
        Segments(np.array([3]), np.array([2]), np.array([3]), np.array([1]), np.array([0]), 6, 20)
    with pytest.raises(ValueError, match="overlaps"):
        Segments(np.array([1]), np.array([17]), np.array([19]), np.array([2]), np.array([0]), 6, 20)
    with pytest.raises(ValueError, match="at least one sample"):
        cv.span_size(ContiguousSampler(4, 9).sample(3)[np.zeros(3, bool)])
    with pytest.raises(ValueError, match="convention"):
        cv.span_size(ContiguousSampler(4, 9).sample(1), convention="both")


# --------------------------------------------------------------------------- distance counts
@pytest.mark.parametrize("name", list(small_samples(1)))
def test_distance_counts_match_brute_force(name):
    seg = small_samples()[name]
    ids = seg.position_ids()
    expected = brute_counts(ids, seg.target_len)
    np.testing.assert_array_equal(cv.distance_counts(seg), expected)
    np.testing.assert_array_equal(cv.distance_counts_from_ids(ids, seg.target_len), expected)
    np.testing.assert_allclose(cv.distance_frequency(seg), expected / len(seg))


def test_distance_counts_exhaustive_layouts():
    seg = all_layouts(6, 15)
    np.testing.assert_array_equal(cv.distance_counts(seg), brute_counts(seg.position_ids(), 15))


def test_distance_counts_from_ids_randpos(monkeypatch):
    monkeypatch.setattr(cv, "BLOCK_ELEMENTS", 1000)  # several FFT blocks
    ids = RandPosSampler(20, 300).position_ids(40, seed=3)
    expected = brute_counts(ids, 300)
    np.testing.assert_array_equal(cv.distance_counts_from_ids(ids, 300), expected)
    assert cv.distance_counts_from_ids(ids, 300).sum() == cv.span_size_from_ids(ids).sum()


def test_distance_counts_from_ids_bad_input():
    ids = np.array([[0, 2, 5], [1, 1, 4]])
    with pytest.raises(ValueError, match="strictly increasing"):
        cv.distance_counts_from_ids(ids, 10)
    with pytest.raises(ValueError, match="target_len=5"):
        cv.distance_counts_from_ids(np.array([[0, 2, 5]]), 5)
    with pytest.raises(ValueError, match=">= 0"):
        cv.distance_counts_from_ids(np.array([[-1, 2]]), 5)
    with pytest.raises(ValueError, match="max_work=10"):
        cv.distance_counts_from_ids(np.array([[0, 2, 5]]), 20, max_work=10)


# --------------------------------------------------------------------------- coverage curves
def brute_first(ids, big_l):
    first = np.full(big_l, len(ids))
    for i in range(len(ids) - 1, -1, -1):
        first[cv.relative_distances(ids[i])] = i
    return first


@pytest.mark.parametrize("name", list(small_samples(1)))
def test_first_covering_sample_and_curve(name):
    seg = small_samples(n=120, seed=5)[name]
    ids = seg.position_ids()
    expected = brute_first(ids, seg.target_len)
    np.testing.assert_array_equal(cv.first_covering_sample(seg), expected)
    np.testing.assert_array_equal(cv.first_covering_sample_from_ids(ids, seg.target_len), expected)
    curve = cv.coverage_curve(seg)
    assert curve.shape == (len(seg),)
    assert np.all(np.diff(curve) >= 0) and 0 < curve[0] <= curve[-1] <= 1
    for k in (1, 7, len(seg)):  # fraction covered by the first k samples, by brute force
        union = set().union(*(cv.relative_distances(r).tolist() for r in ids[:k]))
        assert curve[k - 1] == pytest.approx(len(union) / seg.target_len)
    np.testing.assert_allclose(cv.coverage_curve(ids, seg.target_len), curve)


def test_coverage_curve_randpos_and_contiguous():
    ids = RandPosSampler(6, 80).position_ids(50, seed=0)
    curve = cv.coverage_curve(ids, 80)
    assert curve[-1] == pytest.approx(np.count_nonzero(brute_counts(ids, 80)) / 80)
    flat = cv.coverage_curve(ContiguousSampler(8, 64).sample(20))
    np.testing.assert_allclose(flat, 8 / 64)  # contiguous never gets past N - 1
    with pytest.raises(ValueError, match="disagrees"):
        cv.coverage_curve(ContiguousSampler(8, 64).sample(2), target_len=65)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.lists(st.tuples(st.integers(0, 199), st.integers(0, 60)), min_size=1, max_size=40))
def test_range_min_assign(size, pieces):
    pieces = [(a, min(size - 1, a + w)) for a, w in pieces if a < size]
    if not pieces:
        return
    lo, hi = (np.array(c, dtype=np.int64) for c in zip(*pieces, strict=True))
    value = np.random.default_rng(len(pieces)).integers(0, 50, size=len(lo))
    expected = np.full(size, 99)
    for a, b, v in zip(lo, hi, value, strict=True):
        expected[a:b + 1] = np.minimum(expected[a:b + 1], v)
    np.testing.assert_array_equal(cv._range_min_assign(lo, hi, value, size, 99), expected)


def test_bin_mean():
    centers, means = cv.bin_mean(np.arange(10), 5)
    np.testing.assert_allclose(means, [0.5, 2.5, 4.5, 6.5, 8.5])
    np.testing.assert_allclose(centers, [0.5, 2.5, 4.5, 6.5, 8.5])
    assert len(cv.bin_mean(np.ones(3), 10)[0]) == 3
    with pytest.raises(ValueError, match="n_bins"):
        cv.bin_mean(np.ones(3), 0)


# --------------------------------------------------------------------------- figures
def test_fig_coverage_curves():
    curves = {name: cv.coverage_curve(seg) for name, seg in small_samples(50).items()}
    fig = fig_coverage_curves(curves, title="t")
    assert [tr.name for tr in fig.data] == ["CREAM", "CREAM, truncated-normal middle", "CREAM, uniform middle", "PoSE",
                                            "contiguous windows"]  # display names
    assert fig.layout.title.text == "t" and fig.layout.xaxis.type == "log"
    np.testing.assert_allclose(fig.data[0].y, curves["cream"])
    assert list(fig.data[0].x) == list(range(1, 51))
    with pytest.raises(ValueError, match="curves"):
        fig_coverage_curves({})


def test_fig_distance_frequency():
    freqs = {name: cv.distance_frequency(seg) for name, seg in small_samples(50).items() if seg.target_len == 60}
    freqs["randpos"] = cv.distance_frequency(RandPosSampler(12, 60).position_ids(50, seed=0), 60)
    fig = fig_distance_frequency(freqs, log_y=True)
    assert [tr.name for tr in fig.data] == [{"cream": "CREAM", "cream-truncnorm": "CREAM, truncated-normal middle",
                                             "pose": "PoSE", "contiguous": "contiguous windows",
                                             "randpos": "RandPos"}[n] for n in freqs]
    assert fig.layout.yaxis.type == "log"
    assert len(fig.data[0].x) == 60 and max(fig.data[-1].y) <= 1
    # lines that coincide (e.g. RandPos and contiguous at 1.0) differ in dash pattern and width
    styles = [(tr.line.dash, tr.line.width) for tr in fig.data]
    assert len(set(styles)) == len(styles)
    assert fig.layout.yaxis.range[1] > 0  # room above 1.0 on the log axis (log10 1 = 0)
    assert fig.layout.yaxis.dtick == 1  # one label per decade
    centers, means = cv.bin_mean(freqs["pose"], 6)
    fig = fig_distance_frequency({"pose": means}, distances=centers, log_y=False)
    np.testing.assert_allclose(fig.data[0].x, centers)
    with pytest.raises(ValueError, match="distances"):
        fig_distance_frequency({"a": np.ones(5)}, distances=np.arange(4))
    with pytest.raises(ValueError, match="share one length"):
        fig_distance_frequency({"a": np.ones(5), "b": np.ones(6)})


def test_chunked_paths_match(monkeypatch):
    seg = small_samples(n=203, seed=9)["pose"]
    whole_span, whole_counts = cv.span_size(seg), cv.distance_counts(seg)
    monkeypatch.setattr(cv, "CHUNK", 7)  # many chunks, a ragged last one
    np.testing.assert_array_equal(cv.span_size(seg), whole_span)
    np.testing.assert_array_equal(cv.distance_counts(seg), whole_counts)
    np.testing.assert_array_equal(whole_span, cv.span_size_from_ids(seg.position_ids()))
