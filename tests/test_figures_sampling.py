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
    assert mp.rand_factor_values[0] >= 2 and mp.rand_factor_values[-1] <= 16
    assert mp.rand_factor_freq.sum() == pytest.approx(1.0)


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
    assert [t.name for t in fig.data] == ["cream", "randpos"] and fig.layout.yaxis.type == "log"
