"""Figures for many heads: mosaic, per-head values, per-head depth curves (tiny model inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from creamviz import figures as F
from creamviz import tasks
from creamviz.attention import attention_maps, needle_sweep
from creamviz.models import byte_tokenizer, tiny_llama


@pytest.fixture(scope="module")
def model():
    return tiny_llama(num_hidden_layers=3, seed=2)


def test_fig_head_mosaic_tiles_every_map(model):
    ids = tasks.kv_retrieval(byte_tokenizer(), 96, depth=0.5, seed=0).prompt_ids
    maps = attention_maps(model, ids, pool=8, query_len=4)
    fig = F.fig_head_mosaic(maps, gap=1)
    z = np.asarray(fig.data[0].z, dtype=float)
    assert fig.data[0].name == "mosaic" and z.shape == (3 * 9 - 1, 4 * 9 - 1)
    for a in range(3):
        for c in range(4):
            tile = z[a * 9:a * 9 + 8, c * 9:c * 9 + 8]
            p = maps.pooled[a, c]
            np.testing.assert_allclose(tile[p > 0], np.log10(np.maximum(p[p > 0], 1e-6)))
            assert np.isnan(tile[p == 0]).all()  # future blocks blank
    assert np.isnan(z[8, :]).all() and np.isnan(z[:, 8]).all()  # the gaps
    assert list(fig.layout.yaxis.ticktext) == ["L0", "L1", "L2"] and len(fig.layout.xaxis.ticktext) == 4
    linear = F.fig_head_mosaic(maps.select(layer=1), log=False, gap=0)
    np.testing.assert_allclose(np.nan_to_num(np.asarray(linear.data[0].z, dtype=float))[:8, :8], maps.pooled[1, 0])
    with pytest.raises(ValueError, match="gap"):
        F.fig_head_mosaic(maps, gap=-1)
    with pytest.raises(ValueError, match="AttentionMaps"):
        F.fig_head_mosaic(maps.pooled)


def test_fig_head_values_and_marks():
    values = np.arange(12.0).reshape(3, 4) / 12
    fig = F.fig_head_values(values, [0, 1, 2], [0, 1, 2, 3], label="sink", marks=[(2, 3)])
    np.testing.assert_allclose(fig.data[0].z, values)
    assert fig.data[0].name == "sink" and list(fig.data[0].y) == ["L0", "L1", "L2"]
    assert fig.data[1].name == "marked" and list(fig.data[1].x) == ["H3"] and list(fig.data[1].y) == ["L2"]
    with pytest.raises(ValueError, match="shape"):
        F.fig_head_values(values, [0, 1], [0, 1, 2, 3])
    with pytest.raises(ValueError, match="marks"):
        F.fig_head_values(values, [0, 1, 2], [0, 1, 2, 3], marks=[(5, 0)])


def test_fig_head_depth_curves(model):
    sweep = needle_sweep(model, byte_tokenizer(), task="kv", length=100, depths=(0.0, 0.5, 1.0), seeds=(0, 1))
    fig = F.fig_head_depth_curves(sweep, [(2, 1), (0, 3)])
    assert [t.name for t in fig.data] == ["L2 H1", "L0 H3", "mean of heads", "uniform share"]
    np.testing.assert_allclose(fig.data[0].y, sweep.mass[:, :, 2, 1].mean(1))
    np.testing.assert_allclose(fig.data[2].y, sweep.mass.mean(axis=(1, 2, 3)))
    np.testing.assert_allclose(fig.data[3].y, sweep.uniform.mean(1))
    np.testing.assert_allclose(fig.data[0].x, [0, 50, 100])
    with pytest.raises(ValueError, match="layer 7"):
        F.fig_head_depth_curves(sweep, [(7, 0)])
