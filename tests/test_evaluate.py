"""Evaluations on tiny random models (shapes, ranges, batching, ppl against brute force) and the
figure builders of creamviz.figures.evaluation."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from creamviz import evaluate as ev
from creamviz import tasks
from creamviz.figures import (
    fig_accuracy_by_depth,
    fig_accuracy_by_length,
    fig_niah_heatmap,
    fig_ppl_by_position,
    fig_pretrain_curve,
)
from creamviz.models import BASE_CHECKPOINT, byte_tokenizer, tiny_llama

TOK = byte_tokenizer()


@pytest.fixture(scope="module")
def model():
    m = tiny_llama(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                   num_key_value_heads=2, max_position_embeddings=256, seed=0)
    return m.eval()


def test_generate_batched_equals_unbatched(model):
    exs = tasks.depth_sweep("kv", TOK, 120, [0.0, 1.0], n_per_depth=3, seed=1) + \
        tasks.depth_sweep("passkey", TOK, 200, [0.5], n_per_depth=2, seed=1)
    prompts = [e.prompt_ids for e in exs]  # different lengths -> left padding in batches
    assert len({len(p) for p in prompts}) > 1
    batched = ev.generate(model, TOK, prompts, max_new_tokens=4, batch_size=8)
    single = ev.generate(model, TOK, prompts, max_new_tokens=4, batch_size=1)
    assert batched == single and len(batched) == len(exs)
    with pytest.raises(ValueError, match="batch_size"):
        ev.generate(model, TOK, prompts, batch_size=0)


def test_accuracy_by_depth_well_formed(model):
    curve = ev.accuracy_by_depth(model, TOK, task="kv", length=200, depths=[0.0, 0.5, 1.0],
                                 n_per_depth=3, seed=0)
    assert curve.task == "kv" and curve.length == 200
    assert curve.depths.tolist() == [0.0, 0.5, 1.0] and curve.n.tolist() == [3, 3, 3]
    assert curve.accuracy.shape == curve.stderr.shape == (3,)
    assert ((0 <= curve.accuracy) & (curve.accuracy <= 1)).all()
    assert len(curve.raw) == 9 and {"generated", "correct", "gold_index", "n_tokens"} <= set(curve.raw[0])
    recs = curve.records()
    assert len(recs) == 3 and recs[1]["depth"] == 0.5


def test_depth_curve_counts_correct_answers():
    recs = [{"task": "kv", "length": 100, "depth": d, "target_depth": d, "correct": c}
            for d, c in [(0.0, True), (0.0, True), (0.0, False), (1.0, False)]]
    curve = ev.depth_curve(recs)
    assert curve.accuracy.tolist() == pytest.approx([2 / 3, 0.0])
    assert curve.stderr[0] == pytest.approx(np.sqrt(2 / 9 / 3))
    with pytest.raises(ValueError):
        ev.depth_curve([])


def test_scoring_in_the_loop_with_an_oracle(monkeypatch, model):
    """If the model emits the gold answer, every example is scored correct (and wrong otherwise)."""
    exs = tasks.depth_sweep("kv", TOK, 150, [0.0, 1.0], n_per_depth=2, seed=3)
    answers = {tuple(e.prompt_ids): e.answer for e in exs}
    monkeypatch.setattr(ev, "generate", lambda m, t, prompts, **k: [answers[tuple(p)] for p in prompts])
    assert ev.accuracy_by_depth(model, TOK, examples=exs).accuracy.tolist() == [1.0, 1.0]
    monkeypatch.setattr(ev, "generate", lambda m, t, prompts, **k: ["zzzz" for _ in prompts])
    assert ev.accuracy_by_depth(model, TOK, examples=exs).accuracy.tolist() == [0.0, 0.0]


def test_mean_over_seeds():
    a = ev.DepthCurve("kv", 100, np.array([0.0, 1.0]), np.array([0.2, 0.4]), np.zeros(2), np.array([5, 5]))
    b = ev.DepthCurve("kv", 100, np.array([0.0, 1.0]), np.array([0.6, 0.4]), np.zeros(2), np.array([5, 5]))
    m = ev.mean_over_seeds([a, b])
    assert m.accuracy.tolist() == pytest.approx([0.4, 0.4])
    assert m.stderr.tolist() == pytest.approx([np.std([0.2, 0.6], ddof=1) / np.sqrt(2), 0.0])
    assert m.n.tolist() == [10, 10]
    c = ev.DepthCurve("kv", 100, np.array([0.0, 0.5]), np.zeros(2), np.zeros(2), np.array([1, 1]))
    with pytest.raises(ValueError, match="depths"):
        ev.mean_over_seeds([a, c])


def test_niah_grid_and_passkey_shapes(model):
    grid = ev.niah_grid(model, TOK, lengths=[128, 192], depths=[0.0, 0.5, 1.0], n_per_cell=1)
    assert grid.accuracy.shape == grid.n.shape == (3, 2)  # (depth, length)
    assert grid.lengths.tolist() == [128, 192] and grid.n.sum() == 6
    assert len(grid.records()) == 6
    pk = ev.passkey_by_length(model, TOK, lengths=[192, 256], n_per_length=2)
    assert pk.lengths.tolist() == [192, 256] and pk.n.tolist() == [2, 2]
    assert ((0 <= pk.accuracy) & (pk.accuracy <= 1)).all()


def test_ppl_by_position_matches_model_loss(model):
    text = "\n".join(tasks.load_corpus("eval"))
    p = ev.ppl_by_position(model, TOK, length=96, bucket=32, n_seqs=3, seed=2, text=text)
    assert p.bucket_start.tolist() == [0, 32, 64] and p.bucket_end.tolist() == [32, 64, 96]
    assert p.n_tokens.tolist() == [31 * 3, 32 * 3, 32 * 3]  # position 0 is never predicted
    # token-weighted mean over buckets == the model's own mean loss on the same windows
    ids = TOK(text, add_special_tokens=False)["input_ids"]
    starts = np.random.default_rng(2).integers(0, len(ids) - 96, size=3)
    x = torch.tensor([ids[s:s + 96] for s in starts])
    with torch.no_grad():
        loss = model(input_ids=x, labels=x).loss.item()
    assert np.average(p.nll, weights=p.n_tokens) == pytest.approx(loss, rel=1e-4)
    assert np.allclose(p.ppl, np.exp(p.nll))
    with pytest.raises(ValueError, match="length"):
        ev.ppl_by_position(model, TOK, length=10**7)


def test_evaluate_eval_set_limit(model):
    curve = ev.evaluate_eval_set(model, TOK, "kv_L256", limit=2, batch_size=10)
    assert curve.n.tolist() == [2] * len(tasks.EVAL_DEPTHS) and curve.length == 256
    grid = ev.evaluate_eval_set(model, TOK, "niah", limit=1, batch_size=10)
    assert grid.accuracy.shape == (len(tasks.EVAL_DEPTHS), len(tasks.EVAL_LENGTHS))


# ----------------------------------------------------------------------------- figures

def _curve(acc, length=2048):
    d = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    acc = np.asarray(acc, dtype=float)
    return ev.DepthCurve("kv", length, d, acc, np.full(5, 0.05), np.full(5, 20))


def test_fig_accuracy_by_depth():
    fig = fig_accuracy_by_depth({"cream": _curve([1, .6, .5, .7, 1]),
                                 "pose": [_curve([1, .3, .2, .4, .9]), _curve([1, .5, .2, .6, .9])]})
    assert [t.name for t in fig.data] == ["CREAM", "PoSE (mean of 2 seeds)"]
    assert list(fig.data[0].x) == [0, 25, 50, 75, 100]
    assert list(fig.data[0].y) == pytest.approx([100, 60, 50, 70, 100])
    assert list(fig.data[1].y) == pytest.approx([100, 40, 20, 50, 90])
    assert list(fig.data[1].error_y.array) == pytest.approx(
        [0, 10, 0, 10, 0], abs=1e-9)  # std (ddof 1) over 2 seeds / sqrt(2), in %
    assert "2,048" in fig.layout.title.text
    with pytest.raises(ValueError):
        fig_accuracy_by_depth({})


def test_fig_niah_heatmap():
    grid = ev.NiahGrid(np.array([256, 512, 1024]), np.array([0.0, 0.5, 1.0]),
                       np.array([[1, .5, 0], [1, .4, 0], [1, np.nan, 0]]), np.full((3, 3), 2))
    fig = fig_niah_heatmap(grid, window=256)
    hm = fig.data[0]
    assert np.asarray(hm.z).shape == (3, 3) and list(hm.x) == ["256*", "512", "1,024"]
    assert list(hm.y) == ["0%", "50%", "100%"] and fig.layout.yaxis.autorange == "reversed"
    assert hm.text[2][1] == "" and hm.text[0][1] == "50"


def test_fig_ppl_and_length_and_pretrain_curve():
    p = ev.PplCurve(512, np.array([0, 256]), np.array([256, 512]), np.array([1.0, 2.0]), np.array([255, 256]))
    fig = fig_ppl_by_position({"base": p, "cream": p}, window=256)
    assert len(fig.data) == 2 and list(fig.data[0].y) == pytest.approx(np.exp([1.0, 2.0]))
    assert list(fig.data[0].x) == pytest.approx([127.5, 383.5]) and fig.layout.yaxis.type == "log"
    lc = ev.LengthCurve("passkey", np.array([256, 512]), np.array([1.0, 0.5]), np.zeros(2), np.array([4, 4]))
    fig = fig_accuracy_by_length({"base": lc}, window=256)
    assert list(fig.data[0].y) == [100, 50] and "passkey" in fig.layout.title.text
    log = list(csv.DictReader(open(BASE_CHECKPOINT / "loss_log.csv")))
    fig = fig_pretrain_curve(log)
    names = [t.name for t in fig.data]
    assert names[0].startswith("loss") and "kv acc" in names
    kv = fig.data[names.index("kv acc")]
    assert kv.yaxis == "y2" and max(kv.y) > 90 and len(kv.x) == sum(1 for r in log if r["kv_acc"])
