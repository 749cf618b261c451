"""Token-labelled attention figures: the text of every token / pooled block on hover and axes, the
gold pair and the question marked (SmolLM2's tokenizer; maps of a random tiny Llama of that vocab)."""

from __future__ import annotations

import numpy as np
import pytest

from creamviz import figures as F
from creamviz import models, tasks
from creamviz.attention import (
    TokenText,
    attention_maps,
    prompt_spans,
    prompt_token_text,
    token_text,
)

NAME = "smollm2-135m"


@pytest.fixture(scope="module")
def prompt():
    tok = models.load_tokenizer(NAME)
    ex = tasks.GENERATORS["kv_uuid"](tok, 400, depth=0.5, seed=1)
    return tok, ex, prompt_spans(ex, tok), prompt_token_text(ex, tok)


@pytest.fixture(scope="module")
def maps(prompt):
    tok, ex, spans, _ = prompt
    model = models.tiny_llama(vocab_size=len(tok), num_hidden_layers=2, seed=0)
    return attention_maps(model, ex.prompt_ids, pool=16, query_len=spans.query_len, label="random")


def test_token_text_pieces_rebuild_the_prompt(prompt):
    tok, ex, spans, tt = prompt
    assert tt.seq_len == len(ex.prompt_ids)
    assert "".join(tt.tokens) == tok.decode(ex.prompt_ids, skip_special_tokens=False)
    assert tt.marks == (("gold pair", *spans.needle), ("question", spans.question_start, len(ex.prompt_ids)))
    key, value = ex.meta["pairs"][ex.gold_index]
    gold = "".join(tt.tokens[spans.needle_start:spans.needle_stop])
    assert key in gold and value in gold
    assert key in "".join(tt.tokens[spans.question_start:])
    assert tt.span_text(0, tt.seq_len, 21).count("…") == 1 and len(tt.span_text(0, tt.seq_len, 21)) == 21
    assert TokenText(("a\n", "b")).span_text(0, 2) == "a↵b"
    with pytest.raises(ValueError, match="marks"):
        token_text(tok, ex.prompt_ids[:5], marks=(("x", 3, 9),))


def test_fig_attention_head_shows_block_text_and_marks(prompt, maps):
    _, ex, spans, tt = prompt
    fig = F.fig_attention_head(maps, 1, 2, tokens=tt)
    heat = next(t for t in fig.data if t.name == "map")
    texts = tt.block_texts(maps.boundaries, 60)
    cell = heat.text[3][2]  # query block 3, key block 2
    assert f"«{texts[3]}»" in cell.split("<br>")[0] and f"«{texts[2]}»" in cell.split("<br>")[1]
    assert "%{text}" in heat.hovertemplate
    assert list(fig.layout.xaxis2.ticktext) == tt.block_texts(maps.boundaries, 12)  # 16 blocks: legible
    question = next(t for t in fig.data if t.name == "question")
    assert question.text[spans.needle_start] == f"«{TokenText.shown(tt.tokens[spans.needle_start])}»"
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert any(s.x0 == spans.needle_start and s.x1 == spans.needle_stop for s in rects)
    assert any(s.y0 == spans.question_start and s.y1 == len(ex.prompt_ids) for s in rects)
    assert {a.text for a in fig.layout.annotations} >= {"gold pair", "question"}
    with pytest.raises(ValueError, match="T = "):
        F.fig_attention_head(maps, 1, 2, tokens=TokenText(tt.tokens[:-1]))
    plain = F.fig_attention_head(maps, 1, 2)  # without tokens: as before
    assert next(t for t in plain.data if t.name == "map").text is None


def test_many_blocks_keep_numeric_ticks(prompt):
    tok, ex, spans, tt = prompt
    model = models.tiny_llama(vocab_size=len(tok), num_hidden_layers=1, seed=0)
    fine = attention_maps(model, ex.prompt_ids, pool=64, query_len=spans.query_len)
    fig = F.fig_attention_head(fine, 0, 0, tokens=tt)
    assert fig.layout.xaxis2.ticktext is None  # 64 blocks: too many to label
    assert next(t for t in fig.data if t.name == "map").text is not None  # hover still has the text


def test_fig_head_mosaic_hover_names_layer_head_and_tokens(prompt, maps):
    _, ex, spans, tt = prompt
    fig = F.fig_head_mosaic(maps, tokens=tt, gap=1)
    heat = fig.data[0]
    P, step = maps.pool, maps.pool + 1
    n_l, n_h = len(maps.layers), len(maps.heads)
    assert len(heat.x) == n_h * step - 1 == len(set(heat.x)) and len(heat.y) == n_l * step - 1 == len(set(heat.y))
    texts = tt.block_texts(maps.boundaries, 40)
    assert heat.x[2 * step + 5].startswith("H2 · key") and f"«{texts[5]}»" in heat.x[2 * step + 5]
    assert heat.y[1 * step + 7].startswith("L1 · query") and f"«{texts[7]}»" in heat.y[1 * step + 7]
    np.testing.assert_array_equal(np.asarray(heat.z, float)[step:step + P, 2 * step:2 * step + P],
                                  np.where(maps.pooled[1, 2] > 0, np.log10(np.maximum(maps.pooled[1, 2], 1e-6)), np.nan))
    assert len(fig.layout.shapes) == 2 * n_h + n_l  # gold + question columns per head, question rows per layer
    assert list(fig.layout.xaxis.ticktext) == [f"H{h}" for h in maps.heads]


def test_fig_depth_profiles_takes_the_needle_and_bin_text_from_tokens(prompt, maps):
    _, ex, spans, tt = prompt
    fig = F.fig_depth_profiles(maps, layer=0, head=1, tokens=tt)
    line = fig.data[0]
    b = maps.depth_boundaries
    assert line.text[0] == f"<br>«{tt.span_text(int(b[0]), int(b[1]), 60)}»"
    mid = 100.0 * (spans.needle_start + spans.needle_stop) / 2 / maps.query_start
    assert any(a.text == f"gold pair ({mid:.0f} %)" for a in fig.layout.annotations)
    assert "question: «" in fig.layout.title.text
