"""Retrieval heads (Wu et al. 2024) and head masking, against hand-built cases and eager attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from creamviz import models
from creamviz import retrieval_heads as R
from creamviz.attention import prompt_spans
from creamviz.figures import fig_head_masking, fig_retrieval_scores


def eager_argmax(model, ids, rows):
    """Oracle: argmax of HF's own eager attention probabilities (output_attentions)."""
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            att = model(input_ids=torch.tensor([ids]), output_attentions=True).attentions
    finally:
        model.set_attn_implementation("sdpa")
    return np.stack([a[0][:, rows].argmax(-1).numpy() for a in att])  # (layers, heads, R)


def test_copy_score_hand_built():
    prompt = [9, 1, 5, 6, 7, 2, 8]  # needle = tokens 2..4 (5, 6, 7)
    gen = [5, 6, 7]
    argmax = np.zeros((1, 4, 3), dtype=int)
    argmax[0, 0] = [2, 3, 4]  # copies every answer token from the needle: 3 steps / 3
    argmax[0, 1] = [2, 2, 2]  # on the needle but on the copied token only at step 0: 1 / 3
    argmax[0, 2] = [0, 5, 6]  # never inside the needle
    argmax[0, 3] = [4, 4, 4]  # inside, token 7 equals gen only at step 2
    score = R.copy_score(argmax, prompt, gen, (2, 5))
    np.testing.assert_allclose(score[0], [1.0, 1 / 3, 0.0, 1 / 3])
    with pytest.raises(ValueError, match="needle"):
        R.copy_score(argmax, prompt, gen, (5, 2))
    with pytest.raises(ValueError, match="argmax"):
        R.copy_score(argmax[..., :2], prompt, gen, (2, 5))


@pytest.mark.parametrize("overrides", [{}, {"num_key_value_heads": 2}])
def test_attention_argmax_equals_eager_attention(overrides):
    model = models.tiny_llama(num_hidden_layers=2, seed=1, **overrides).eval()
    ids = list(torch.randint(3, 300, (40,), generator=torch.Generator().manual_seed(0)).tolist())
    rows = [5, 20, 39]
    np.testing.assert_array_equal(R.attention_argmax(model, ids, rows), eager_argmax(model, ids, rows))
    with pytest.raises(ValueError, match="rows"):
        R.attention_argmax(model, ids, [40])


def test_attention_argmax_of_a_constructed_head():
    """q_proj of head 0 in layer 1 set to zero: its scores are all equal, its attention uniform over
    the causal keys, so its argmax is key 0 at every row (ties resolve to the lowest index)."""
    model = models.tiny_llama(num_hidden_layers=2, seed=2).eval()
    attn = model.model.layers[1].self_attn
    with torch.no_grad():
        attn.q_proj.weight[:attn.head_dim] = 0
    ids = list(range(3, 43))
    rows = list(range(1, 40))
    got = R.attention_argmax(model, ids, rows)
    assert (got[1, 0] == 0).all()
    assert (got[1, 1] != 0).any()  # the other heads are not constant


def test_mask_heads_equals_zeroed_output_weights():
    model = models.tiny_llama(num_hidden_layers=2, seed=3).eval()
    ids = torch.arange(3, 35)[None]
    before = model(input_ids=ids).logits
    with torch.no_grad(), R.mask_heads(model, [(0, 1), (1, 3)]):
        masked = model(input_ids=ids).logits
    surgery = models.tiny_llama(num_hidden_layers=2, seed=3).eval()
    d = surgery.model.layers[0].self_attn.head_dim
    with torch.no_grad():
        surgery.model.layers[0].self_attn.o_proj.weight[:, 1 * d:2 * d] = 0
        surgery.model.layers[1].self_attn.o_proj.weight[:, 3 * d:4 * d] = 0
        oracle = surgery(input_ids=ids).logits
    torch.testing.assert_close(masked, oracle)
    assert not torch.allclose(masked, before)
    torch.testing.assert_close(model(input_ids=ids).logits, before)  # hooks removed on exit
    with pytest.raises(ValueError, match="heads"):
        with R.mask_heads(model, [(2, 0)]):
            pass


@pytest.fixture(scope="module")
def tiny():
    return models.load_model("tiny"), models.load_tokenizer("tiny")


def test_retrieval_scores_match_eager_oracle_on_tiny_base(tiny):
    model, tok = tiny
    examples = R.retrieval_examples(tok, task="kv", length=256, depths=(0.2, 0.8), seeds=(0,))
    scores = R.retrieval_scores(model, tok, examples, label="base")
    for ex, per in zip(examples, scores.per_prompt, strict=True):
        gold = list(tok(ex.answer, add_special_tokens=False)["input_ids"])
        # greedy decoding by hand (full forward each step)
        seq = list(ex.prompt_ids)
        for _ in gold:
            with torch.no_grad():
                seq.append(int(model(input_ids=torch.tensor([seq])).logits[0, -1].argmax()))
        gen = seq[len(ex.prompt_ids):]
        rows = list(range(len(ex.prompt_ids) - 1, len(seq) - 1))
        want = R.copy_score(eager_argmax(model, seq[:-1], rows), ex.prompt_ids, gen, prompt_spans(ex, tok).needle)
        np.testing.assert_allclose(per, want)
    # exact match by generation == the teacher-forced decision
    np.testing.assert_array_equal(scores.correct, R.answer_exact(model, tok, examples))
    assert scores.scores.shape == (4, 4) and scores.scores.max() > 0
    top = scores.top(3)
    assert scores.scores[top[0]] == scores.scores.max()


def test_masking_top_heads_hurts_more_than_random_on_tiny_base(tiny):
    """A measured property of the shipped base (kv, L = 256, 10 prompts): masking its best
    retrieval head breaks retrieval, masking one random other head (3 seeded draws) does not."""
    model, tok = tiny
    examples = R.retrieval_examples(tok, task="kv", length=256, seeds=(0, 1))
    scores = R.retrieval_scores(model, tok, examples)
    res = R.masking_experiment(model, tok, examples, scores, ks=(1,), n_random=3, seed=0)
    assert res.baseline >= 0.8
    assert res.top[0] < res.random[0].mean() - 0.5
    assert res.random_seeds == (0, 1, 2) and res.n_prompts == 10
    with pytest.raises(ValueError, match="ks"):
        R.masking_experiment(model, tok, examples, scores, ks=(16,))
    fig = fig_head_masking({"base": res})
    assert [t.name for t in fig.data] == ["base: top-k retrieval heads", "base: k random heads (mean)",
                                          "base: random draws"]
    assert list(fig.data[0].y) == [res.baseline, res.top[0]]
    fig = fig_retrieval_scores({"base": scores})
    np.testing.assert_array_equal(fig.data[0].z, scores.scores)


def test_retrieval_heads_on_smollm2():
    """SmolLM2-135M-Instruct copies a pass key (chat form, L = 400, 2 prompts): some head copies it."""
    name = "smollm2-135m"
    model, tok = models.load_model(name), models.load_tokenizer(name)
    examples = R.retrieval_examples(tok, task="passkey_chat", length=400, depths=(0.3, 0.7), seeds=(0,))
    scores = R.retrieval_scores(model, tok, examples, label="SmolLM2")
    assert scores.scores.shape == (30, 9)
    assert scores.correct.all()
    assert scores.scores.max() > R.RETRIEVAL_THRESHOLD
    (layer, head), = scores.top(1)
    ex = examples[0]
    gen = R.greedy_answer(model, ex.prompt_ids, 2)
    rows = [len(ex.prompt_ids) - 1, len(ex.prompt_ids)]
    argmax = R.attention_argmax(model, list(ex.prompt_ids) + gen[:1], rows)
    np.testing.assert_array_equal(argmax[layer:layer + 1], eager_argmax(model, list(ex.prompt_ids) + gen[:1], rows)[layer:layer + 1])
