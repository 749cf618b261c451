"""creamviz.attention: chunked, pooled attention maps == pooled eager ``output_attentions``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from creamviz.attention import (
    AttentionMaps,
    _chunk_probs,
    attention_maps,
    pool_boundaries,
    pool_matrix,
    prompt_spans,
)
from creamviz.samplers import CreamSampler, PoseSampler

TOL = 1e-5


def tiny(rope=None, *, layers=3, heads=4, kv_heads=2, hidden=64, seed=0, cls=LlamaForCausalLM, config_cls=LlamaConfig,
         **extra):
    """A random tiny Llama (GQA 4 -> 2 heads by default), eager attention so output_attentions works."""
    rope_parameters = {"rope_type": "default", "rope_theta": 10000.0}
    if rope == "linear":
        rope_parameters = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}
    elif rope == "dynamic":  # recomputes its base from the largest position id seen (docs/CREAM.md, section 2)
        rope_parameters = {"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 4.0,
                           "original_max_position_embeddings": 64}
    elif rope == "yarn":
        rope_parameters = {"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                           "original_max_position_embeddings": 64}
    cfg = config_cls(vocab_size=50, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=64,
                     rope_parameters=rope_parameters, **extra)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg)
    model.set_attn_implementation("eager")
    return model.eval()


def eager_attentions(model, ids, pos=None) -> np.ndarray:
    """(layers, heads, T, T) from an eager forward with output_attentions=True."""
    T = ids.shape[-1]
    kwargs = {} if pos is None else {"position_ids": torch.as_tensor(pos).reshape(1, T)}
    with torch.no_grad():
        out = model(input_ids=ids.reshape(1, T), attention_mask=torch.ones(1, T, dtype=torch.long),
                    output_attentions=True, **kwargs)
    return torch.stack(out.attentions)[:, 0].double().numpy()


def token_ids(T, seed=0, vocab=50):
    return torch.randint(0, vocab, (T,), generator=torch.Generator().manual_seed(seed))


def cream_ids(N, L, seed=0):
    """One CREAM position vector: N ids in [0, L) with two big jumps."""
    return CreamSampler(N, L).position_ids(1, seed=seed)[0]


# --------------------------------------------------------------------------- correctness
@pytest.mark.parametrize("reduce", ["mean", "max"])
@pytest.mark.parametrize("pool", [1, 7, 16, 48])
def test_pooled_equals_pooled_eager(reduce, pool):
    model = tiny()
    ids = token_ids(48)
    ref = eager_attentions(model, ids)
    maps = attention_maps(model, ids, pool=pool, reduce=reduce)
    assert maps.pooled.shape == (3, 4, pool, pool)
    np.testing.assert_allclose(maps.pooled, pool_matrix(ref, maps.boundaries, reduce), atol=TOL, rtol=0)


@pytest.mark.parametrize("rope", [None, "linear", "yarn", "dynamic"])
@pytest.mark.parametrize("sampler", ["cream", "pose"])
def test_custom_position_ids_with_jumps(rope, sampler):
    """CREAM / PoSE ids (big jumps, reaching L = 4 N) with interpolated RoPE: still == eager."""
    N, L = 64, 256
    pos = cream_ids(N, L, seed=3) if sampler == "cream" else PoseSampler(N, L).position_ids(1, seed=3)[0]
    assert np.diff(pos).max() > 10 and pos[-1] >= N  # really jumps, really beyond N
    model = tiny(rope)
    ids = token_ids(N, seed=1)
    ref = eager_attentions(model, ids, pos)
    for reduce in ("mean", "max"):
        maps = attention_maps(model, ids, position_ids=pos, pool=16, reduce=reduce, query_len=8)
        np.testing.assert_allclose(maps.pooled, pool_matrix(ref, maps.boundaries, reduce), atol=TOL, rtol=0)
        np.testing.assert_array_equal(maps.position_ids, pos)
    # the question's attention is the mean of the eager rows of the last 8 queries
    np.testing.assert_allclose(maps.query_attention, ref[:, :, -8:, :].mean(2), atol=TOL, rtol=0)
    # the ids matter: default ids give other maps (so the test above could fail)
    plain = attention_maps(model, ids, pool=16)
    assert np.abs(plain.pooled - attention_maps(model, ids, position_ids=pos, pool=16).pooled).max() > 10 * TOL


def test_attention_stays_causal_across_segment_jumps():
    """No 'packed sequence' blocking at the jumps (docs/CREAM.md, section 7): every query attends to every earlier
    token in every layer, in the eager reference and in the maps (whose later layers depend on the
    capture forward pass)."""
    model = tiny()
    pos = cream_ids(64, 256, seed=5)
    ids = token_ids(64)
    ref = eager_attentions(model, ids, pos)
    maps = attention_maps(model, ids, position_ids=pos, pool=64)  # pool = T: the exact matrices
    lower = np.tril(np.ones((64, 64), bool))
    for full in (ref, maps.pooled):
        assert (full[..., lower] > 1e-4).all()
        assert (full[..., ~lower] == 0).all()
    np.testing.assert_allclose(maps.pooled, ref, atol=TOL, rtol=0)


def test_pool_equal_T_is_the_exact_matrix_and_subsets():
    model = tiny()
    ids = token_ids(40)
    ref = eager_attentions(model, ids)
    maps = attention_maps(model, ids, pool=40, layers=[2, 0], heads=[3, 1])
    assert maps.layers == (2, 0) and maps.heads == (3, 1)
    np.testing.assert_allclose(maps.pooled, ref[[2, 0]][:, [3, 1]], atol=TOL, rtol=0)


@pytest.mark.parametrize("reduce", ["mean", "max"])
@pytest.mark.parametrize("pool", [9, 7])  # equal blocks of 5 tokens (reshape path), uneven (scatter path)
def test_chunking_does_not_change_the_result(pool, reduce):
    model = tiny()
    ids = token_ids(45)
    whole = attention_maps(model, ids, pool=pool, reduce=reduce)
    one_row = attention_maps(model, ids, pool=pool, reduce=reduce, max_chunk_bytes=1)  # one query row per chunk
    np.testing.assert_allclose(one_row.pooled, pool_matrix(eager_attentions(model, ids), whole.boundaries, reduce),
                               atol=TOL, rtol=0)
    for name in ("pooled", "query_attention", "depth_profile"):
        np.testing.assert_allclose(getattr(whole, name), getattr(one_row, name), atol=1e-6, rtol=0)


def test_rows_sum_to_one_before_pooling():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 5, 8, generator=g), torch.randn(3, 12, 8, generator=g)
    probs = _chunk_probs(q, k, q_start=7, scaling=8 ** -0.5)  # queries 7..11 over keys 0..11
    np.testing.assert_allclose(probs.sum(-1).numpy(), 1.0, atol=1e-6)
    for r in range(5):
        assert (probs[:, r, 7 + r + 1:] == 0).all() and (probs[:, r, :7 + r + 1] > 0).all()
    # and on a model: each pooled block-row of mean maps carries exactly its rows' mass
    maps = attention_maps(tiny(), token_ids(50), pool=6)
    sizes = maps.block_sizes
    np.testing.assert_allclose((maps.pooled * sizes).sum(-1), 1.0, atol=TOL)


def test_depth_profile_thirds_and_mass():
    model = tiny()
    T, q_len = 60, 6
    ids = token_ids(T)
    ref = eager_attentions(model, ids)
    maps = attention_maps(model, ids, pool=10, query_len=q_len, depth_bins=9)
    question = ref[:, :, T - q_len:, :].mean(2)  # (layers, heads, T)
    ctx = T - q_len
    assert maps.query_start == ctx and list(maps.depth_boundaries) == list(pool_boundaries(ctx, 9))
    for b in range(9):
        lo, hi = maps.depth_boundaries[b], maps.depth_boundaries[b + 1]
        np.testing.assert_allclose(maps.depth_profile[..., b], question[..., lo:hi].sum(-1), atol=TOL)
    np.testing.assert_allclose(maps.depth_profile.sum(-1) + maps.query_self_mass, 1.0, atol=TOL)
    np.testing.assert_allclose(maps.thirds.sum(-1), maps.depth_profile.sum(-1), atol=TOL)
    assert list(maps.third_boundaries) == [0, 18, 36, 54]
    np.testing.assert_allclose(maps.thirds[..., 1], question[..., 18:36].sum(-1), atol=TOL)
    np.testing.assert_allclose(maps.mass_on(20, 25), question[..., 20:25].sum(-1), atol=TOL)


def test_other_llama_architectures():
    """Mistral (same attention) and Qwen3 (per-head q_norm / k_norm) also match eager."""
    from transformers import MistralConfig, MistralForCausalLM, Qwen3Config, Qwen3ForCausalLM

    for cls, cfg in ((MistralForCausalLM, MistralConfig), (Qwen3ForCausalLM, Qwen3Config)):
        extra = {"head_dim": 16} if cls is Qwen3ForCausalLM else {}
        model = tiny(cls=cls, config_cls=cfg, layers=2, **extra)
        ids = token_ids(30)
        pos = np.r_[0:10, 50:60, 120:130]
        ref = eager_attentions(model, ids, pos)
        maps = attention_maps(model, ids, position_ids=pos, pool=10)
        np.testing.assert_allclose(maps.pooled, pool_matrix(ref, maps.boundaries), atol=TOL, rtol=0)


def test_model_state_is_restored():
    model = tiny()
    model.train()
    attention_maps(model, token_ids(20), pool=4)
    assert model.training and model.config._attn_implementation == "eager"
    assert all(not layer.self_attn._forward_pre_hooks for layer in model.model.layers)
    # the base LlamaModel works as well as the LM
    a = attention_maps(model.model, token_ids(20), pool=4)
    b = attention_maps(model, token_ids(20), pool=4)
    np.testing.assert_allclose(a.pooled, b.pooled, atol=1e-7)


# --------------------------------------------------------------------------- AttentionMaps API
def test_select_map_mean_and_difference():
    ids = token_ids(32)
    base = attention_maps(tiny(seed=0), ids, pool=8, label="base")
    tuned = attention_maps(tiny(seed=1), ids, pool=8, label="cream")
    one = tuned.select(layer=2, head=[1, 3])
    assert one.pooled.shape == (1, 2, 8, 8) and one.query_attention.shape == (1, 2, 32)
    np.testing.assert_array_equal(one.pooled[0, 1], tuned.pooled[2, 3])
    np.testing.assert_array_equal(tuned.map(1, 2), tuned.pooled[1, 2])
    diff = tuned.difference(base)
    assert diff.is_difference and diff.label == "cream - base"
    np.testing.assert_allclose(diff.pooled, tuned.pooled - base.pooled)
    np.testing.assert_allclose((tuned - base).depth_profile, tuned.depth_profile - base.depth_profile)
    np.testing.assert_allclose(diff.depth_profile.sum(-1) + diff.query_self_mass, 0.0, atol=TOL)
    assert np.abs(diff.pooled).max() > 1e-3  # different weights, different maps
    np.testing.assert_allclose(tuned.mean().pooled[0, 0], tuned.pooled.mean((0, 1)))
    with pytest.raises(ValueError, match="layer"):
        tuned.select(layer=7)
    with pytest.raises(ValueError, match="boundaries"):
        tuned.difference(attention_maps(tiny(seed=1), ids, pool=4))
    with pytest.raises(ValueError, match="heads"):
        tuned.difference(base.select(head=[0, 1]))
    with pytest.raises(ValueError, match="other"):
        tuned.difference(np.zeros(3))


def test_top_heads_ranks_by_mass_on_the_span():
    maps = attention_maps(tiny(), token_ids(40), pool=8, query_len=4)
    mass = maps.query_attention[..., 10:20].sum(-1)
    best = maps.top_heads(10, 20, k=12)
    assert len(best) == 12 and len(set(best)) == 12
    assert [mass[layer, head] for layer, head in best] == sorted(mass.ravel(), reverse=True)
    sub = maps.select(layer=[2, 1], head=[3, 0])
    assert sub.top_heads(10, 20)[0] in {(2, 3), (2, 0), (1, 3), (1, 0)}
    with pytest.raises(ValueError, match="stop"):
        maps.top_heads(10, 10)
    with pytest.raises(ValueError, match="k"):
        maps.top_heads(10, 20, k=13)


@pytest.mark.parametrize("task", ["kv", "lines", "passkey", "niah"])
def test_prompt_spans_find_needle_and_question(task):
    from creamviz import tasks
    from creamviz.models import byte_tokenizer

    tok = byte_tokenizer()
    make = {"kv": tasks.kv_retrieval, "lines": tasks.lines_retrieval, "passkey": tasks.passkey, "niah": tasks.niah}[task]
    ex = make(tok, 400, depth=0.4, seed=2)
    spans = prompt_spans(ex, tok)
    text = tok.decode(ex.prompt_ids[spans.needle_start:spans.needle_stop])
    question = tok.decode(ex.prompt_ids[spans.question_start:])
    assert ex.answer.strip() in text or task == "lines" and text.startswith("line ")
    assert abs(spans.needle_start - ex.gold_pos) <= 1  # niah's gold_pos counts the needle's leading space
    assert spans.needle_stop <= spans.question_start < spans.n_tokens == len(ex.prompt_ids)
    expected_question = {"lines": "what is in line", "passkey": tasks.PASSKEY_QUERY, "niah": tasks.NIAH_QUERY,
                         }.get(task) or ex.meta["pairs"][ex.gold_index][0] + ":"
    assert question.startswith(expected_question) and spans.query_len == len(ex.prompt_ids) - spans.question_start
    if task == "lines":
        number = ex.answer.strip()
        assert text.endswith(number)


def test_pool_boundaries():
    b = pool_boundaries(10, 3)
    assert list(b) == [0, 3, 6, 10]
    for T, P in ((16384, 256), (1000, 256), (7, 7)):
        b = pool_boundaries(T, P)
        d = np.diff(b)
        assert b[0] == 0 and b[-1] == T and len(b) == P + 1 and d.min() >= T // P and d.max() <= -(-T // P)
    with pytest.raises(ValueError, match="pool"):
        pool_boundaries(5, 6)


@pytest.mark.parametrize("kwargs, match", [
    ({"pool": 0}, "pool"),
    ({"reduce": "median"}, "reduce"),
    ({"layers": [5]}, "layers"),
    ({"layers": []}, "layers"),
    ({"heads": [-1]}, "heads"),
    ({"heads": [1, 1]}, "heads"),
    ({"query_len": 20}, "query_len"),
    ({"depth_bins": 0}, "depth_bins"),
    ({"position_ids": np.arange(19)}, "position_ids"),
    ({"position_ids": np.r_[0:10, 9:19]}, "position_ids"),
    ({"position_ids": np.arange(20) * 1.0}, "position_ids"),
    ({"max_chunk_bytes": 0}, "max_chunk_bytes"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        attention_maps(tiny(layers=1), token_ids(20), **kwargs)


def test_bad_inputs_raise():
    model = tiny(layers=1)
    with pytest.raises(ValueError, match="input_ids"):
        attention_maps(model, torch.zeros(2, 10, dtype=torch.long))  # a batch of two
    with pytest.raises(ValueError, match="input_ids"):
        attention_maps(model, torch.zeros(10))  # float ids
    with pytest.raises(ValueError, match="input_ids"):
        attention_maps(model, torch.full((10,), 50))  # outside the vocabulary
    with pytest.raises(ValueError, match="model"):
        attention_maps(torch.nn.Linear(2, 2), torch.zeros(10, dtype=torch.long))
    assert isinstance(attention_maps(model, token_ids(10), pool=1000), AttentionMaps)  # pool cut to T
    assert attention_maps(model, token_ids(10), pool=1000).pool == 10


# --------------------------------------------------------------------------- memory bound
@pytest.mark.slow
def test_peak_memory_tiny_model_16k_under_2gb():
    """Peak RSS of a fresh process computing all layers x heads of the tiny model at T = 16384."""
    code = textwrap.dedent("""
        import json, resource, torch
        from creamviz.models import tiny_llama
        from creamviz.attention import attention_maps
        T = 16384
        ids = torch.randint(3, 259, (T,), generator=torch.Generator().manual_seed(0))
        maps = attention_maps(tiny_llama(), ids, pool=256)
        print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "shape": list(maps.pooled.shape)}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["shape"] == [4, 4, 256, 256]
    assert result["peak_mb"] < 2048, result


# --------------------------------------------------------------------------- figures
@pytest.fixture(scope="module")
def three_models():
    """Maps of three differently seeded tiny models on one 96-token prompt (question = last 8)."""
    ids = token_ids(96, seed=4)
    return {name: attention_maps(tiny(seed=s), ids, pool=12, query_len=8, depth_bins=11, label=name)
            for name, s in (("base", 0), ("cream", 1), ("pose", 2))}


def test_fig_attention_grid(three_models):
    from creamviz.figures import fig_attention_grid

    m = three_models["cream"]
    fig = fig_attention_grid(m)
    assert len(fig.data) == 3 * 4
    assert [t.name for t in fig.data[:5]] == ["L0 H0", "L0 H1", "L0 H2", "L0 H3", "L1 H0"]
    z = np.asarray(fig.data[5].z, float)  # layer 1, head 1, log10 with NaN on future blocks
    np.testing.assert_allclose(z[~np.isnan(z)], np.log10(m.pooled[1, 1][m.pooled[1, 1] > 0]))
    assert np.isnan(z[0, -1]) and list(fig.data[0].x) == list(m.boundaries)
    assert fig.layout.coloraxis.colorbar.title.text == "log10 p"
    diff = fig_attention_grid(m - three_models["base"])
    assert diff.layout.coloraxis.colorscale[0][1] != fig.layout.coloraxis.colorscale[0][1]
    assert diff.layout.coloraxis.cmin == -diff.layout.coloraxis.cmax
    np.testing.assert_allclose(np.asarray(diff.data[0].z, float), (m - three_models["base"]).pooled[0, 0])
    with pytest.raises(ValueError, match="maps"):
        fig_attention_grid({"a": m})


def test_fig_attention_head(three_models):
    from creamviz.figures import fig_attention_head

    m = three_models["base"]
    fig = fig_attention_head(m, 2, 3)
    heat = next(t for t in fig.data if t.name == "map")
    line = next(t for t in fig.data if t.name == "question")
    np.testing.assert_allclose(np.asarray(heat.z, float)[-1], np.log10(m.pooled[2, 3, -1]))
    np.testing.assert_allclose(line.customdata, m.query_attention[2, 3])  # hover: the true p
    np.testing.assert_allclose(line.y, np.maximum(m.query_attention[2, 3], 1e-6))  # drawn >= the log floor
    axis = fig.layout.yaxis  # the question panel: log scale in powers of ten, never "1µ, 1n, 1p"
    assert axis.type == "log" and axis.exponentformat == "power" and axis.range[0] == -6
    mean = fig_attention_head(m)  # mean over layers and heads
    np.testing.assert_allclose(next(t for t in mean.data if t.name == "question").customdata,
                               m.query_attention.mean((0, 1)))
    with pytest.raises(ValueError, match="head"):
        fig_attention_head(m, 0, 9)


def test_fig_depth_profiles(three_models):
    from creamviz.figures import fig_depth_profiles

    fig = fig_depth_profiles(three_models, layer=1)
    lines = [t for t in fig.data if t.type == "scatter"]
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in lines] == ["untuned base", "CREAM", "PoSE"] and len(bars) == 3
    m = three_models["pose"]
    np.testing.assert_allclose(lines[2].y, m.depth_profile[1].mean(0))
    np.testing.assert_allclose(bars[2].y, m.thirds[1].mean(0))
    assert len(lines[0].x) == 11 and 0 < lines[0].x[0] < lines[0].x[-1] < 100
    assert not fig.layout.shapes or all(s.fillcolor != "#d62728" for s in fig.layout.shapes)
    # the gold pair's depth: tokens 44-47 of the 88-token context -> a band over 50-54.5 %
    marked = fig_depth_profiles(three_models, needle=(44, 48))
    band = [s for s in marked.layout.shapes if s.fillcolor == "#d62728"]
    assert len(band) == 1 and band[0].x0 == pytest.approx(100 * 44 / 88) and band[0].x1 == pytest.approx(100 * 48 / 88)
    assert any("gold pair" in a.text for a in marked.layout.annotations)
    with pytest.raises(ValueError, match="needle"):
        fig_depth_profiles(three_models, needle=(80, 95))  # reaches into the question
    with pytest.raises(ValueError, match="maps"):
        fig_depth_profiles({})


def test_fig_attention_difference(three_models):
    from creamviz.figures import fig_attention_difference

    fig = fig_attention_difference(three_models, head=0)
    assert [t.name for t in fig.data] == ["cream - base", "pose - base"]
    expected = three_models["pose"].select(head=0).pooled.mean(0)[0] - three_models["base"].select(head=0).pooled.mean(0)[0]
    np.testing.assert_allclose(np.asarray(fig.data[1].z, float), expected, atol=1e-12)
    ca = fig.layout.coloraxis
    assert ca.cmid == 0 and ca.cmin == -ca.cmax > -np.abs(expected).max() - 1e-12
    other = fig_attention_difference(three_models, reference="cream")
    assert [t.name for t in other.data] == ["base - cream", "pose - cream"]
    with pytest.raises(ValueError, match="reference"):
        fig_attention_difference(three_models, reference="yarn")
    with pytest.raises(ValueError, match="two"):
        fig_attention_difference({"base": three_models["base"]})


def test_fig_needle_attention(three_models):
    from creamviz.figures import fig_needle_attention

    fig = fig_needle_attention(three_models, (30, 40))
    bars = [t for t in fig.data if t.type == "bar"]
    lines = [t for t in fig.data if t.type == "scatter"]
    assert [t.name for t in bars] == ["untuned base", "CREAM", "PoSE"] and len(lines) == 3
    m = three_models["cream"]
    np.testing.assert_allclose(bars[1].y, m.query_attention[..., 30:40].sum(-1).mean(1))
    uniform = [s for s in fig.layout.shapes if s.type == "line"]
    assert uniform and uniform[0].y0 == pytest.approx(10 / 88)
    assert any(s.type == "rect" and s.x0 == 29.5 and s.x1 == 39.5 for s in fig.layout.shapes)
    with pytest.raises(ValueError, match="needle"):
        fig_needle_attention(three_models, (80, 95))  # reaches into the question
    with pytest.raises(ValueError, match="needle"):
        fig_needle_attention(three_models, 5)


def test_needle_sweep_and_figure():
    from creamviz.attention import needle_sweep
    from creamviz.figures import fig_needle_sweep
    from creamviz.models import byte_tokenizer, tiny_llama

    tok = byte_tokenizer()
    model = tiny_llama(num_hidden_layers=2)
    sweep = needle_sweep(model, tok, task="kv", length=120, depths=(0.0, 1.0), seeds=(0, 1), label="base")
    assert sweep.mass.shape == (2, 2, 2, 4) and sweep.uniform.shape == (2, 2)
    assert ((sweep.mass >= 0) & (sweep.mass <= 1)).all() and ((sweep.uniform > 0) & (sweep.uniform < 1)).all()
    # oracle for one cell: the model's own eager attention probabilities (output_attentions), last
    # query row, summed over the gold pair's key tokens
    from creamviz import tasks

    ex = tasks.kv_retrieval(tok, 120, depth=1.0, seed=1)
    spans = prompt_spans(ex, tok)
    assert tok.decode(ex.prompt_ids[spans.needle_start:spans.needle_stop]) == ":".join(ex.meta["pairs"][ex.gold_index])
    model.set_attn_implementation("eager")
    with torch.no_grad():
        probs = model(torch.tensor([ex.prompt_ids]), output_attentions=True).attentions  # layers x (1, H, T, T)
    model.set_attn_implementation("sdpa")
    eager = np.array([[float(a[0, h, -1, spans.needle_start:spans.needle_stop].sum()) for h in range(4)]
                      for a in probs])  # (layers, heads)
    np.testing.assert_allclose(sweep.mass[1, 1], eager, atol=1e-5)
    layer, head = sweep.best_head()
    assert sweep.mass.mean((0, 1))[layer, head] == sweep.mass.mean((0, 1)).max()
    np.testing.assert_allclose(sweep.curve(1, 2), sweep.mass[:, :, 1, 2].mean(1))
    fig = fig_needle_sweep({"base": sweep, "other": sweep}, which=(1, 2))
    assert [t.name for t in fig.data] == ["untuned base (L1 H2, L = 120)", "other (L1 H2, L = 120)", "uniform share (L = 120)"]
    np.testing.assert_allclose(fig.data[0].y, sweep.curve(1, 2))
    np.testing.assert_allclose(fig.data[0].x, [0.0, 100.0])
    np.testing.assert_allclose(fig.data[-1].y, sweep.uniform.mean(1))
    assert fig_needle_sweep(sweep, which="best").data[0].name.startswith(f"untuned base (L{layer} H{head}")
    with pytest.raises(ValueError, match="which"):
        fig_needle_sweep(sweep, which=(5, 0))
    with pytest.raises(ValueError, match="depths"):
        needle_sweep(model, tok, length=120, depths=(0.5, 1.5))
    with pytest.raises(ValueError, match="task"):
        needle_sweep(model, tok, task="summary", length=120)
