"""Short real training runs of SmolLM2-135M-Instruct on CPU: CREAM with N far below the model's
window (sampler factor L/N vs RoPE factor L/W), exact resume, and a CREAM-Chat batch rendered through
the chat template. Windows are short (N = 32 tokens) to keep the 135M-parameter steps cheap;
plain SGD keeps checkpoints to the weights (no Adam state to write).

``make test`` fetches the model first (``make model``); run ``creamviz fetch-model smollm2-135m``
before calling pytest directly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from creamviz.chat import SHIPPED_CHATS, longchat_lines_chats, render_chat
from creamviz.lengths import Lengths
from creamviz.training import PositionCollator, StopCallback, TrainConfig, train

NAME = "smollm2-135m"
N, L = 32, 16384  # 32 tokens per window toward 16K positions: sampler factor 512, RoPE factor 2


@pytest.fixture(scope="module")
def tok():
    from creamviz.models import load_tokenizer

    return load_tokenizer(NAME)


def test_real_model_lengths_say_which_factor_is_which():
    cfg = TrainConfig(model=NAME, train_len=256, target_len=16384, rope="yarn")
    rep = Lengths.resolve(NAME, 16384, train_len=256, rope="yarn").report(cfg.sampler)
    assert rep["model_window"] == 8192 and rep["rope_factor"] == 2 and rep["sampler_factor"] == 64
    # CREAM's default k = 4 L / N = 256 cannot fit 256 tokens: refused, with a k that fits
    assert any("4·L/N = 256" in p and "--k 8" in p for p in rep["problems"])


@pytest.mark.slow
def test_real_cream_run_checkpoints_and_resumes_exactly(tmp_path):
    """A 2-step CREAM run of SmolLM2 (N = 32, L = 16K, YaRN x2) equals, step for step and weight for
    weight, the same run cut after step 1 (checkpoint) and resumed."""
    from safetensors.torch import load_file

    from creamviz.models import load_model

    common = dict(model=NAME, train_len=N, target_len=L, rope="yarn", sampler="cream",
                  sampler_params={"k": 8}, steps=2, batch_size=1, lr=1e-3, optim="sgd", warmup_steps=0,
                  save_every=100, seed=2, progress=False)
    whole = train(TrainConfig(**common, out=str(tmp_path / "whole")))
    cut = train(TrainConfig(**common, out=str(tmp_path / "cut")), callbacks=[StopCallback(at_step=1, save=True)])
    assert cut.steps_done == 1 and [c.name for c in cut.checkpoints] == ["checkpoint-1"]
    assert (cut.checkpoints[0] / "model.safetensors").is_file()
    resumed = train(TrainConfig(**common, out=str(tmp_path / "cut"), resume=True))
    assert resumed.completed and resumed.resumed_from.name == "checkpoint-1"
    assert [r["loss"] for r in resumed.loss_log] == [r["loss"] for r in whole.loss_log]
    a = load_file(whole.final_model / "model.safetensors")
    b = load_file(resumed.final_model / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((whole.final_model / "creamviz_run.json").read_text())
    lengths = meta["lengths"]
    assert (lengths["train_len"], lengths["target_len"], lengths["model_window"]) == (N, L, 8192)
    assert lengths["sampler_factor"] == L / N and lengths["rope_factor"] == 2.0
    assert meta["rope"]["rope_parameters"]["rope_type"] == "yarn"
    assert meta["rope"]["rope_parameters"]["original_max_position_embeddings"] == 8192
    pos = [json.loads(x) for x in (tmp_path / "whole" / "positions.jsonl").read_text().splitlines()]
    assert all(r["head_len"] in (8, N // 3) for r in pos)
    model = load_model(whole.final_model)  # reads back as a normal safetensors directory
    assert model.config.max_position_embeddings == L


def test_chat_template_rendering_of_the_shipped_set(tok):
    """The shipped LongChat-Lines chats render to exactly the template's text; assistant labels cover
    the answers and nothing the user said."""
    chats = [json.loads(x) for x in SHIPPED_CHATS.read_text().splitlines()]
    assert len(chats) == 24 and chats[:2] == longchat_lines_chats(2)  # the file is the seeded generator's
    messages = chats[0]["messages"]
    ids, labels = render_chat(tok, messages, labels="assistant")
    text = tok.apply_chat_template(messages, tokenize=False)
    assert ids == tok(text, add_special_tokens=False)["input_ids"]  # piecewise = whole tokenization
    kept = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != -100])
    answers = [m["content"] + "<|im_end|>\n" for m in messages if m["role"] == "assistant"]
    assert kept == "".join(answers)
    all_ids, all_labels = render_chat(tok, messages, labels="all")
    assert all_ids == ids and all_labels == ids


@pytest.mark.slow
def test_cream_chat_steps_on_smollm2(tmp_path, tok):
    """CREAM-Chat: two steps on the shipped chats (N = 32 tokens: each conversation's first 32, labels on
    every token as in the official script). The logged step-1 loss equals a cross-entropy computed by
    hand on the same first batch (rebuilt from the dataset and the collator) with the base model."""
    from creamviz.data import DocumentDataset, load_documents
    from creamviz.models import load_model

    cfg = TrainConfig(model=NAME, train_len=N, target_len=L, rope="yarn", sampler_params={"k": 8},
                      data=str(SHIPPED_CHATS), chat_labels="all", steps=2, batch_size=2,
                      lr=1e-3, optim="sgd", warmup_steps=0, save_every=100, seed=4, progress=False,
                      out=str(tmp_path / "chat"))
    result = train(cfg)
    assert result.completed and np.isfinite([r["loss"] for r in result.loss_log]).all()
    # the same first batch, rebuilt from the dataset and the collator
    docs, _ = load_documents(SHIPPED_CHATS, tok, chat_labels="all")
    items = DocumentDataset(docs, N, 4, seed=4)
    batch = PositionCollator(cfg.make_sampler(), tok, seed=4)([items[0], items[1]])
    first = tok.decode(batch["input_ids"][0])
    assert first.startswith("<|im_start|>system\nYou are a careful assistant")
    assert int(batch["position_ids"].max()) == L - 1  # CREAM's tail reaches L
    model = load_model(NAME, rope="yarn", factor=2.0)
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       position_ids=batch["position_ids"]).logits
    target = batch["labels"][:, 1:]
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                            target.reshape(-1), ignore_index=-100, reduction="sum")
    manual = float(nll / (target != -100).sum())
    assert result.loss_log[0]["loss"] == pytest.approx(manual, rel=1e-4)
