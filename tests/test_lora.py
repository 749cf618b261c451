"""LoRA through peft: apply / save / load / merge on the tiny model and SmolLM2 (oracles: the base
model's logits, the saved-and-reloaded model's logits, hand-merged weights)."""

from __future__ import annotations

import json

import pytest
import torch

from creamviz import lora, models

IDS = torch.arange(3, 70)[None]


def perturb(model, scale=0.05, seed=0):
    """Move every trainable parameter, as training would (seeded)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("extra", [False, True])
def test_tiny_adapter_starts_at_base_saves_loads_and_merges(tmp_path, extra):
    base = models.load_model("tiny")
    with torch.no_grad():
        want_base = base(input_ids=IDS).logits
    settings = lora.LoraSettings(r=4, alpha=8, train_embeddings_and_norms=extra, seed=3)
    model = lora.apply_lora(base, settings)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or (extra and "modules_to_save" in n) for n in trainable)
    assert any("embed_tokens" in n for n in trainable) == extra
    assert any("layernorm" in n for n in trainable) == extra
    with torch.no_grad():
        assert torch.equal(model(input_ids=IDS).logits, want_base)  # B = 0
    perturb(model)
    model.eval()
    with torch.no_grad():
        tuned = model(input_ids=IDS).logits
    assert (tuned - want_base).abs().max() > 1e-2
    out = lora.save_adapter(model, tmp_path / "adapter")
    assert lora.is_adapter_dir(out)
    cfg = json.loads((out / lora.ADAPTER_CONFIG).read_text())
    assert cfg["r"] == 4 and cfg["lora_alpha"] == 8
    loaded = models.load_model("tiny", adapter=out)
    merged = models.load_model("tiny", adapter=out, merge=True)
    assert type(merged).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=IDS).logits, tuned, rtol=0, atol=0)
        torch.testing.assert_close(merged(input_ids=IDS).logits, tuned, rtol=1e-5, atol=1e-4)


def test_merge_equals_hand_merged_weight(tmp_path):
    """W + (alpha / r) B A, computed by hand from the saved tensors."""
    model = lora.apply_lora(models.load_model("tiny"), lora.LoraSettings(r=2, alpha=6, target_modules=("q_proj",)))
    perturb(model, seed=1)
    lora.save_adapter(model, tmp_path / "a")
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "a" / lora.ADAPTER_FILE)
    A = next(v for k, v in saved.items() if "layers.1.self_attn.q_proj.lora_A" in k)
    B = next(v for k, v in saved.items() if "layers.1.self_attn.q_proj.lora_B" in k)
    W = models.load_model("tiny").model.layers[1].self_attn.q_proj.weight.detach()
    merged = models.load_model("tiny", adapter=tmp_path / "a", merge=True)
    torch.testing.assert_close(merged.model.layers[1].self_attn.q_proj.weight.detach(), W + (6 / 2) * B @ A)


def test_bad_settings_and_paths(tmp_path):
    for bad, match in ((dict(r=0), "r=0"), (dict(alpha=0.0), "alpha=0 "), (dict(dropout=1.0), "dropout=1 "),
                       (dict(target_modules=()), "target_modules"), (dict(train_embeddings_and_norms=1), "train_emb")):
        with pytest.raises(ValueError, match=match):
            lora.LoraSettings(**bad).validate()
    with pytest.raises(ValueError, match="not modules"):
        lora.apply_lora(models.load_model("tiny"), lora.LoraSettings(target_modules=("qkv",)))
    with pytest.raises(ValueError, match="holds no adapter"):
        models.load_model("tiny", adapter=tmp_path)
    with pytest.raises(ValueError, match="PeftModel"):
        lora.save_adapter(models.load_model("tiny"), tmp_path / "x")


def test_smollm2_adapter_round_trip(tmp_path):
    name = "smollm2-135m"
    model = lora.apply_lora(models.load_model(name), lora.LoraSettings(r=8))
    with torch.no_grad():
        base_logits = model(input_ids=IDS).logits
    n_train, n_all = lora.trainable_parameters(model)
    assert n_train == 30 * 8 * (576 + 576 + 576 + 192 + 576 + 192 + 576 + 576)  # r (d_in + d_out) per q, k, v, o
    perturb(model, scale=0.02)
    model.eval()
    with torch.no_grad():
        tuned = model(input_ids=IDS).logits
    out = lora.save_adapter(model, tmp_path / "ad")
    assert (out / lora.ADAPTER_FILE).stat().st_size < 10 * 2**20
    with torch.no_grad():
        torch.testing.assert_close(models.load_model(name, adapter=out)(input_ids=IDS).logits, tuned, rtol=0, atol=0)
        # merged == unmerged up to rounding: float32 logits differ by ~1e-3 after 30 layers; in float64
        # by ~1e-5 (peft runs the unmerged B A x in the adapter's float32)
        f64 = models.load_model(name, adapter=out, dtype=torch.float64)(input_ids=IDS).logits
        merged = models.load_model(name, adapter=out, merge=True, dtype=torch.float64)(input_ids=IDS).logits
        torch.testing.assert_close(merged, f64, rtol=0, atol=1e-4)
        assert (f64.float() - base_logits).abs().max() > 0.1  # the adapter does change the model
