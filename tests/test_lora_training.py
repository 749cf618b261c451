"""LoRA runs of `train` / `creamviz train --lora-r`: they run, resume exactly (the losses of a
stopped-and-resumed run equal an uninterrupted run's), and their adapters load back with
load_model (the trained model's logits)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from creamviz import lora, models
from creamviz.training import StopCallback, TrainConfig, train

REPO = pathlib.Path(__file__).resolve().parents[1]


def whole_and_resumed(tmp_path, common):
    whole = train(TrainConfig(**common, out=str(tmp_path / "whole")))
    cut = train(TrainConfig(**common, out=str(tmp_path / "cut")), callbacks=[StopCallback(at_step=common["steps"] - 1)])
    assert not cut.completed and [c.name for c in cut.checkpoints] == [f"checkpoint-{common['save_every']}"]
    assert lora.is_adapter_dir(cut.checkpoints[0])
    resumed = train(TrainConfig(**common, out=str(tmp_path / "cut"), resume=True))
    assert resumed.completed and resumed.resumed_from == cut.checkpoints[0]
    return whole, resumed


def test_tiny_lora_run_resumes_exactly_and_loads_back(tmp_path):
    common = dict(model="tiny", target_len=1024, rope="yarn", steps=4, save_every=2, batch_size=2, warmup_steps=0,
                  lr=5e-3, seed=5, data="mix", progress=False, lora_r=4, lora_embed_norms=True)
    whole, resumed = whole_and_resumed(tmp_path, common)
    assert [r["step"] for r in resumed.loss_log] == [1, 2, 3, 4]
    assert [r["loss"] for r in resumed.loss_log] == [r["loss"] for r in whole.loss_log]
    assert len({r["loss"] for r in whole.loss_log}) == 4
    a, b = (load_file(r.final_model / lora.ADAPTER_FILE) for r in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any("lora_B" in k and k_t.abs().max() > 0 for k, k_t in a.items())  # B moved from 0
    assert any("embed_tokens" in k for k in a) and any("layernorm" in k for k in a)  # LongLoRA's extras
    assert not (whole.final_model / "model.safetensors").exists()  # an adapter, not a full copy
    meta = json.loads((whole.final_model / "creamviz_run.json").read_text())
    assert meta["lora"]["r"] == 4 and meta["lora"]["alpha"] == 8.0 and meta["lora"]["train_embeddings_and_norms"]

    # the run's final/ loads as the trained model: from its records, or explicitly; merged too
    ids = torch.arange(3, 200)[None]
    by_path = models.load_model(str(whole.final_model))
    explicit = models.load_model("tiny", rope="yarn", factor=4.0, adapter=whole.final_model)
    merged = models.load_model(str(whole.final_model), merge=True)
    base = models.load_model("tiny", rope="yarn", factor=4.0)
    with torch.no_grad():
        out = by_path(input_ids=ids).logits
        torch.testing.assert_close(explicit(input_ids=ids).logits, out, rtol=0, atol=0)
        torch.testing.assert_close(merged(input_ids=ids).logits, out, rtol=1e-5, atol=1e-4)
        assert (base(input_ids=ids).logits - out).abs().max() > 1e-3
    assert by_path.peft_config["default"].r == 4


def test_lora_config_checks():
    with pytest.raises(ValueError, match="lora_r=0"):
        TrainConfig(lora_r=0).validate()
    with pytest.raises(ValueError, match="lora_dropout=1.5 "):
        TrainConfig(lora_r=2, lora_dropout=1.5).validate()
    with pytest.raises(ValueError, match="lora_alpha"):
        TrainConfig(lora_alpha=4.0).validate()
    with pytest.raises(ValueError, match="lora_targets"):
        TrainConfig(lora_r=2, lora_targets=" , ").validate()
    assert TrainConfig(lora_r=8).lora_settings().alpha == 16.0
    assert TrainConfig().lora_settings() is None


def test_smollm2_two_step_lora_run_resumes_exactly(tmp_path):
    common = dict(model="smollm2-135m", train_len=64, target_len=16384, sampler_params={"k": 8}, rope="yarn",
                  steps=2, save_every=1,
                  batch_size=1, warmup_steps=0, lr=1e-3, seed=0, progress=False, lora_r=8)
    whole, resumed = whole_and_resumed(tmp_path, common)
    assert [r["loss"] for r in resumed.loss_log] == [r["loss"] for r in whole.loss_log]
    size = (whole.final_model / lora.ADAPTER_FILE).stat().st_size
    assert size < 10 * 2**20
    model = models.load_model(str(whole.final_model))
    assert type(model).__name__ == "PeftModelForCausalLM" and model.base_model.model.config.rope_parameters["rope_type"] == "yarn"


def test_cli_lora_run(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "creamviz.cli", "train", "--model", "tiny", "--target-len", "1024", "--steps", "2",
           "--batch-size", "2", "--warmup-steps", "0", "--save-every", "1", "--lora-r", "8", "--lora-alpha", "8",
           "--lora-targets", "q_proj,v_proj", "--no-progress", "--out", str(tmp_path / "run")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = json.loads((tmp_path / "run" / "final" / lora.ADAPTER_CONFIG).read_text())
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 8 and sorted(cfg["target_modules"]) == ["q_proj", "v_proj"]
    bad = subprocess.run([*cmd[:-1], str(tmp_path / "bad"), "--lora-r", "0"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 2 and "argument --lora-r: lora_r=0" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_fsdp_lora_run_saves_the_adapter_and_resumes(tmp_path):
    """configs/fsdp.yaml, 2 CPU processes (tests/fsdp_cpu_entry.py): a LoRA run of the tiny model writes
    its adapter to final/, and --resume continues from checkpoint-2 with the first two losses kept."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    launcher = pathlib.Path(sys.executable).with_name("accelerate")
    out = tmp_path / "fsdp_lora"

    def launch(steps, *extra):
        cmd = [str(launcher), "launch", "--config_file", str(REPO / "configs" / "fsdp.yaml"), "--num_processes", "2",
               str(REPO / "tests" / "fsdp_cpu_entry.py"), "--model", "tiny", "--target-len", "1024", "--steps",
               str(steps), "--batch-size", "2", "--save-every", "2", "--warmup-steps", "0", "--lr", "1e-3",
               "--seed", "3", "--data", "mix", "--out", str(out), "--no-progress", "--lora-r", "4", *extra]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]

    launch(2)
    meta = json.loads((out / "final" / "creamviz_run.json").read_text())
    assert meta["distributed"]["type"] == "FSDP" and meta["lora"]["r"] == 4
    assert lora.is_adapter_dir(out / "final")
    first = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    launch(4, "--resume")
    log = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4] and log[:2] == first
    assert type(models.load_model(str(out / "final"))).__name__ == "PeftModelForCausalLM"
