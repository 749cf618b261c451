"""Models: the byte tokenizer, tiny_llama, load_model (safetensors only, RoPE interpolation), the
shipped base checkpoint and the pre-training recipe that rebuilds it."""

from __future__ import annotations

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest
import torch

from creamviz.models import (
    BASE_CHECKPOINT,
    FastByteTokenizer,
    TinyConfig,
    byte_tokenizer,
    load_model,
    load_tokenizer,
    tiny_llama,
)

SMALL = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
             num_key_value_heads=2, max_position_embeddings=64)


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    tiny_llama(**SMALL, seed=1).save_pretrained(d)
    return d


def test_byte_tokenizer_round_trip():
    tok = byte_tokenizer()
    text = 'kv {3fa0:91c2}\nThe pass key is 48213. héllo ✓'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text.encode("utf-8"))  # one token per byte
    assert ids[:2] == [ord("k") + 3, ord("v") + 3]
    assert tok.decode(ids) == text
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1 and len(tok) == TinyConfig.vocab_size
    assert tok(text)["input_ids"] == ids + [tok.eos_token_id]
    fast = FastByteTokenizer()
    assert fast(text)["input_ids"] == tok(text)["input_ids"]
    assert fast.decode(ids) == text


def test_tiny_llama_size_and_config():
    model = tiny_llama()
    # by hand: tied embedding 384 x 128, per layer q/k/v/o 4 x 128^2 + gate/up/down 3 x 128 x 512
    # + two RMSNorm weights 2 x 128, final norm 128
    assert model.num_parameters() == 384 * 128 + 4 * (4 * 128**2 + 3 * 128 * 512 + 2 * 128) + 128
    cfg = model.config
    assert cfg.max_position_embeddings == 256 and cfg.vocab_size == 384
    assert cfg.rope_parameters["rope_type"] == "default"
    assert model.generation_config.eos_token_id == 1 and model.generation_config.pad_token_id == 0
    assert tiny_llama(num_hidden_layers=2).num_parameters() < model.num_parameters()


def test_tiny_llama_seeded_without_global_rng_side_effects():
    state = torch.random.get_rng_state()
    a, b, c = tiny_llama(**SMALL, seed=3), tiny_llama(**SMALL, seed=3), tiny_llama(**SMALL, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb, wc = (m.model.layers[0].self_attn.q_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_tiny_llama_rejects_bad_overrides():
    with pytest.raises(ValueError, match="hidden_sz"):
        tiny_llama(hidden_sz=3)
    with pytest.raises(ValueError, match="num_attention_heads"):
        tiny_llama(hidden_size=30, num_attention_heads=4)


def test_load_model_round_trip(small_dir):
    model = load_model(small_dir)
    ref = tiny_llama(**SMALL, seed=1)
    x = torch.randint(3, 259, (2, 20))
    with torch.no_grad():
        assert torch.allclose(model(x).logits, ref(x).logits, atol=1e-5)
    assert not model.training
    assert type(load_tokenizer(small_dir)).__name__ == "ByT5Tokenizer"


def test_load_model_refuses_pickle_checkpoints(tmp_path, small_dir):
    (tmp_path / "config.json").write_text((small_dir / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(ValueError, match="safetensors"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="not a local model directory"):
        load_model(tmp_path / "missing")
    with pytest.raises(ValueError, match="config.json"):
        load_model(tmp_path.parent)


def test_load_tokenizer_needs_files_unless_byte_vocab(tmp_path, small_dir):
    cfg = json.loads((small_dir / "config.json").read_text())
    cfg["vocab_size"] = 32000
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="tokenizer"):
        load_tokenizer(tmp_path)


def _inv_freq(model):
    return model.model.rotary_emb.inv_freq.detach().clone()


def test_rope_linear(small_dir):
    base = load_model(small_dir)
    lin = load_model(small_dir, rope="linear", factor=4)
    rp = lin.config.rope_parameters
    assert rp["rope_type"] == "linear" and rp["factor"] == 4.0 and rp["rope_theta"] == 10000.0
    assert lin.config.max_position_embeddings == 4 * 64  # L = factor * N
    assert torch.allclose(_inv_freq(lin), _inv_freq(base) / 4)
    # position p under linear x4 == position p/4 without scaling
    x = torch.randint(3, 259, (1, 16))
    pos = torch.arange(16)[None] * 4
    with torch.no_grad():
        a = lin(input_ids=x, position_ids=pos).logits
        b = base(input_ids=x, position_ids=torch.arange(16)[None]).logits
    assert torch.allclose(a, b, atol=1e-4)


def test_rope_yarn(small_dir):
    base = load_model(small_dir)
    yarn = load_model(small_dir, rope="yarn", factor=8)
    rp = yarn.config.rope_parameters
    assert rp["rope_type"] == "yarn" and rp["factor"] == 8.0
    assert rp["original_max_position_embeddings"] == 64 and yarn.config.max_position_embeddings == 512
    f0, f1 = _inv_freq(base), _inv_freq(yarn)
    assert torch.isclose(f1[0], f0[0])  # highest frequency kept (extrapolated)
    assert torch.isclose(f1[-1], f0[-1] / 8)  # lowest frequency interpolated
    assert yarn.model.rotary_emb.attention_scaling == pytest.approx(0.1 * math.log(8) + 1)


def test_rope_dynamic_and_errors(small_dir):
    dyn = load_model(small_dir, rope="dynamic", factor=2)
    assert dyn.config.rope_parameters["rope_type"] == "dynamic"
    with pytest.raises(ValueError, match="rope='ntk'"):
        load_model(small_dir, rope="ntk", factor=2)
    with pytest.raises(ValueError, match="factor"):
        load_model(small_dir, rope="linear", factor=0.5)
    with pytest.raises(ValueError, match="factor"):
        load_model(small_dir, rope="linear")
    with pytest.raises(ValueError, match="without rope"):
        load_model(small_dir, factor=2)
    with pytest.raises(ValueError, match="attn"):
        load_model(small_dir, attn="flash")


def test_shipped_base_checkpoint():
    files = {p.name for p in BASE_CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "loss_log.csv",
            "pretrain_config.json", "metrics.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert sum(p.stat().st_size for p in BASE_CHECKPOINT.iterdir()) < 20 * 2**20
    model = load_model("tiny")
    assert model.config.max_position_embeddings == 256 and model.num_parameters() == tiny_llama().num_parameters()
    assert type(load_tokenizer("tiny")).__name__ == "ByT5Tokenizer"
    recipe = json.loads((BASE_CHECKPOINT / "pretrain_config.json").read_text())
    assert recipe["seq_len"] == 256 and recipe["stop_after"] == 6000
    log = (BASE_CHECKPOINT / "loss_log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss") and int(log[-1].split(",")[0]) == recipe["stop_after"]


@pytest.mark.slow  # ~1 s on an idle machine, ~30 s on the shared one under load
def test_shipped_base_solves_inwindow_kv():
    """The shipped base answers key-value retrieval inside its window N = 256 (greedy, generate)."""
    from creamviz.evaluate import evaluate_eval_set

    curve = evaluate_eval_set(load_model("tiny"), load_tokenizer("tiny"), "kv_L256", batch_size=25)
    assert curve.n.sum() == 100
    assert curve.mean_accuracy >= 0.9


# ----------------------------------------------------------------------------- pre-training recipe

def test_mixture_rows_seeded_and_weighted():
    from creamviz.data import Mixture
    from creamviz.tiny_base import PretrainConfig

    cfg = PretrainConfig(batch_size=6, seed=3)
    ids, w = Mixture(cfg).batch()
    ids2, w2 = Mixture(cfg).batch()
    assert ids.shape == w.shape == (6, 256) and torch.equal(ids, ids2) and torch.equal(w, w2)
    assert not torch.equal(ids, Mixture(PretrainConfig(batch_size=6, seed=4)).batch()[0])
    assert set(w.unique().tolist()) <= {0.0, torch.tensor(cfg.text_weight).item(), 1.0}
    assert ids.min() >= 1 and ids.max() < 259  # eos or bytes, never pad


def test_weighted_loss_matches_hf_loss_with_unit_weights():
    from creamviz.tiny_base import weighted_lm_loss

    model = tiny_llama(**SMALL)
    x = torch.randint(3, 259, (2, 30))
    with torch.no_grad():
        out = model(input_ids=x, labels=x)
        ours = weighted_lm_loss(out.logits, x, torch.ones_like(x, dtype=torch.float))
    assert torch.allclose(ours, out.loss, atol=1e-5)


def test_pretrain_cli_smoke(tmp_path):
    """Two steps of the recipe on a very small model write a loadable safetensors checkpoint."""
    from creamviz.tiny_base import PretrainConfig, pretrain

    cfg = PretrainConfig(out=str(tmp_path / "base"), steps=4, stop_after=2, batch_size=2, seq_len=64,
                         n_checks=4, eval_every=1, save_every=1,
                         model={k: v for k, v in SMALL.items() if k != "max_position_embeddings"})
    metrics = pretrain(cfg, progress=False)
    out = pathlib.Path(cfg.out)
    assert (out / "model.safetensors").is_file() and json.loads((out / "metrics.json").read_text())["step"] == 2
    assert 0.0 <= metrics["inwindow_kv_acc"] <= 1.0
    assert load_model(out).config.max_position_embeddings == 64
    assert len((out / "loss_log.csv").read_text().splitlines()) == 3  # header + steps 1, 2


def test_models_module_imports_no_transformers_until_asked():
    """Importing creamviz.models stays cheap: transformers loads only when a model is built."""
    code = ("import sys, creamviz.models as m; assert 'transformers' not in sys.modules, 'eager import'; "
            "m.tiny_llama(num_hidden_layers=1); assert 'transformers' in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_pretrain_cli_requires_out_and_validates(capsys):
    from creamviz.cli import main

    assert main(["pretrain"]) == 2
    err = capsys.readouterr().err
    assert "argument --out" in err and len(err.strip().splitlines()) == 1
    assert main(["pretrain", "--out", "unused", "--steps", "0"]) == 2
    assert "argument --steps: steps=0" in capsys.readouterr().err


def test_pretrain_lr_schedule_is_warmup_then_cosine_to_the_floor():
    import math

    from creamviz.tiny_base import PretrainConfig, lr_schedule

    cfg = PretrainConfig(lr=2e-3, min_lr=1e-4, warmup=10, steps=110)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = lr_schedule(opt, cfg)
    seen = []
    for _ in range(cfg.steps):
        seen.append(schedule.get_last_lr()[0])
        opt.step()
        schedule.step()
    # hand-derived: step s (1-based) trains at lr * s / 10 while s <= 10, then
    # min_lr + (lr - min_lr) * (1 + cos(pi * (s - 10) / 100)) / 2
    assert seen[0] == pytest.approx(2e-4) and seen[4] == pytest.approx(1e-3) and seen[9] == pytest.approx(2e-3)
    assert seen[59] == pytest.approx(1e-4 + 1.9e-3 * (1 + math.cos(math.pi * 0.5)) / 2)
    assert seen[109] == pytest.approx(1e-4 + 1.9e-3 * (1 + math.cos(math.pi)) / 2)  # the floor at the end
    assert max(seen) == pytest.approx(2e-3) and min(seen[10:]) >= 1e-4 - 1e-12
