"""Sampling statistics (vs brute force) and the sampling figure builders."""

import numpy as np
import plotly.graph_objects as go
import pytest

from creamviz import figures as F
from creamviz import segment_stats as S
from creamviz.samplers import CreamSampler, PoseSampler, RandPosSampler, make_sampler


def brute_segment_counts(seg):
    counts = {name: np.zeros(seg.target_len) for name in ("head", "middle", "tail")}
    for i in range(len(seg)):
        counts["head"][: seg.head_len[i]] += 1
        counts["middle"][seg.mid_start[i]: seg.mid_end[i] + 1] += 1
        counts["tail"][seg.target_len - seg.tail_len[i]:] += 1
    return counts


@pytest.mark.parametrize("sampler", [CreamSampler(30, 150, k=4), PoseSampler(30, 150),
                                     make_sampler("contiguous", train_len=30, target_len=150)])
def test_segment_usage_equals_brute_force(sampler):
    seg = sampler.sample(300, seed=0)
    usage = S.segment_usage(seg, bins=None)
    brute = brute_segment_counts(seg)
    for name in brute:
        np.testing.assert_allclose(usage.fractions[name], brute[name] / 300)
    total = S.position_usage(seg, bins=None).fractions["all"]
    np.testing.assert_allclose(total, np.bincount(seg.position_ids().ravel(), minlength=150) / 300)


def test_binned_usage_is_mean_inside_bins():
    seg = CreamSampler(30, 150, k=4).sample(200, seed=1)
    fine = S.segment_usage(seg, bins=None).fractions["middle"]
    coarse = S.segment_usage(seg, bins=7)
    for i in range(len(coarse.edges) - 1):
        a, b = coarse.edges[i], coarse.edges[i + 1]
        assert coarse.fractions["middle"][i] == pytest.approx(fine[a:b].mean())
    with pytest.raises(ValueError, match="bins"):
        S.segment_usage(seg, bins=0)


def test_position_usage_from_ids():
    ids = RandPosSampler(10, 40).position_ids(100, seed=0)
    usage = S.position_usage(ids, target_len=40, bins=None)
    assert usage.fractions["all"].sum() == pytest.approx(10.0)
    with pytest.raises(ValueError, match="target_len"):
        S.position_usage(ids, target_len=20)


def test_middle_placement_histograms():
    s = CreamSampler(64, 512, k=8)
    seg = s.sample(5000, seed=0)
    mp = S.middle_placement(seg, bins=64)
    for p in (mp.p_start, mp.p_end, mp.p_center):
        assert p.sum() == pytest.approx(1.0)
    # oracle: count sample by sample which bin holds P_s, P_e and the centre (plain Python)
    n_bins = len(mp.edges) - 1
    counts = {"start": [0] * n_bins, "end": [0] * n_bins, "center": [0] * n_bins}
    for s_, e_ in zip(seg.mid_start.tolist(), seg.mid_end.tolist(), strict=True):
        for key, value in (("start", s_), ("end", e_), ("center", (s_ + e_) / 2)):
            b = next(i for i in range(n_bins) if mp.edges[i] <= value < mp.edges[i + 1])
            counts[key][b] += 1
    np.testing.assert_allclose(mp.p_start, np.array(counts["start"]) / len(seg))
    np.testing.assert_allclose(mp.p_end, np.array(counts["end"]) / len(seg))
    np.testing.assert_allclose(mp.p_center, np.array(counts["center"]) / len(seg))
    # P_s <= P_e sample by sample, so P_s's distribution function lies on or above P_e's everywhere
    # (and strictly somewhere): swapping start and end fails here
    gap = np.cumsum(mp.p_start) - np.cumsum(mp.p_end)
    assert (gap >= -1e-12).all() and gap.max() > 0.1
    assert mp.rand_factor_values[0] >= 2 and mp.rand_factor_values[-1] <= 16
    assert mp.rand_factor_freq.sum() == pytest.approx(1.0)
    rf = seg.rand_factor[seg.rand_factor >= 0].tolist()
    for value, freq in zip(mp.rand_factor_values.tolist(), mp.rand_factor_freq.tolist(), strict=True):
        assert freq == pytest.approx(rf.count(value) / len(rf))


def test_figures_have_expected_traces():
    s = CreamSampler(64, 512, k=8)
    seg = s.sample(2000, seed=0)
    fig = F.fig_segment_density(S.segment_usage(seg))
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["head", "middle", "tail"]
    assert fig.layout.xaxis.range == (0, 512)

    pmf = {"reference": s.rand_factor_pmf()}
    fig = F.fig_middle_placement(S.middle_placement(seg), rand_factor_pmf=pmf, title="t")
    names = [t.name for t in fig.data]
    assert names[:3] == ["P_s (middle start)", "P_e (middle end)", "centre (P_s+P_e)/2"]
    assert "reference (exact)" in names and any(n.startswith("sampled") for n in names)
    assert fig.layout.title.text == "t"
    bar = next(t for t in fig.data if t.name == "reference (exact)")
    np.testing.assert_allclose(bar.y, pmf["reference"][1])
    assert fig.layout.xaxis2.dtick * 8 >= 15  # factor 8: rand_factor 2 ... 16 with at most ~8 labels
    # middle="uniform" has no rand_factor: one panel, no empty "rand_factor distribution" subplot
    uniform = F.fig_middle_placement(S.middle_placement(CreamSampler(64, 512, k=8, middle="uniform").sample(500, seed=0)))
    assert "xaxis2" not in uniform.layout and len(uniform.data) == 3
    assert [a.text for a in uniform.layout.annotations] == ["middle placement: P_s, P_e, centre"]

    fig = F.fig_strip(seg, n_show=12)
    assert [t.name for t in fig.data] == ["head", "middle", "tail"]
    assert all(len(t.x) == 12 for t in fig.data)
    mid = fig.data[1]
    np.testing.assert_array_equal(mid.base, seg.mid_start[:12])
    np.testing.assert_array_equal(mid.x, seg.mid_len[:12])
    with pytest.raises(ValueError, match="n_show"):
        F.fig_strip(seg, n_show=0)

    usage = {"cream": S.position_usage(seg), "randpos": S.position_usage(
        RandPosSampler(64, 512).position_ids(50, seed=0), target_len=512)}
    fig = F.fig_position_usage(usage, log_y=True)
    assert [t.name for t in fig.data] == ["CREAM", "RandPos"] and fig.layout.yaxis.type == "log"
