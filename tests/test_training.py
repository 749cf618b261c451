"""PositionCollator, train() on transformers.Trainer (checkpoints, exact resume), the CLI and a
2-process Accelerate launch. Models are tiny random Llamas (N = 64) saved to a temp directory."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from creamviz.data import MixtureDataset, WindowDataset
from creamviz.samplers import (
    ContiguousSampler,
    CreamSampler,
    PoseSampler,
    RandPosSampler,
    Segments,
)
from creamviz.training import (
    PositionCollator,
    StopCallback,
    TrainConfig,
    train,
)

N, L = 64, 256  # train_len, target_len of every test here
REPO = pathlib.Path(__file__).resolve().parent.parent
TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=N)


def _tiny_model(seed=0):
    from creamviz.models import tiny_llama

    return tiny_llama(**TINY, seed=seed)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> pathlib.Path:
    """A tiny random Llama (N = 64) saved as safetensors."""
    path = tmp_path_factory.mktemp("tiny-base")
    _tiny_model().save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> pathlib.Path:
    """The first 20 kB of the shipped corpus (tokenising all of it costs ~0.5 s per run)."""
    from creamviz.data import read_corpus

    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    path.write_text(read_corpus()[:20_000], encoding="utf-8")
    return path


def _examples(lengths, seed=0, vocab=300, as_tensor=False):
    rng = np.random.default_rng(seed)
    out = []
    for t in lengths:
        ids = rng.integers(3, vocab, size=t)
        out.append({"input_ids": torch.from_numpy(ids) if as_tensor else ids.tolist()})
    return out


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive ids as (first, last)."""
    cuts = np.flatnonzero(np.diff(row) != 1)
    starts = np.r_[0, cuts + 1]
    ends = np.r_[cuts, len(row) - 1]
    return [(int(row[a]), int(row[b])) for a, b in zip(starts, ends, strict=True)]


# --------------------------------------------------------------------------- collator
def test_collator_shapes_mask_labels_and_padding():
    sampler = CreamSampler(N, L)
    coll = PositionCollator(sampler, SimpleNamespace(pad_token_id=7), seed=3)
    examples = _examples([N, 40, N], as_tensor=False)
    examples[1]["input_ids"] = torch.tensor(examples[1]["input_ids"])  # mixed list / tensor
    batch = coll(examples)
    assert set(batch) == {"input_ids", "labels", "attention_mask", "position_ids"}
    for v in batch.values():
        assert v.shape == (3, N) and v.dtype == torch.int64
    lengths = [N, 40, N]
    for i, t in enumerate(lengths):
        ex = torch.as_tensor(examples[i]["input_ids"])
        assert torch.equal(batch["input_ids"][i, :t], ex)
        assert torch.equal(batch["attention_mask"][i], (torch.arange(N) < t).long())
        assert torch.equal(batch["labels"][i, :t], ex)
        assert (batch["labels"][i, t:] == -100).all()
        assert (batch["input_ids"][i, t:] == 7).all()  # the tokenizer's pad id
        assert (batch["position_ids"][i, t:] == 0).all()  # ids padded with 0
    # a real token equal to the pad id keeps its label (labels come from the padding, not the value)
    ex = [{"input_ids": [7, 7, 8]}]
    b = PositionCollator(sampler, SimpleNamespace(pad_token_id=7), seed=0)(ex)
    assert b["labels"].tolist() == [[7, 7, 8]] and b["attention_mask"].tolist() == [[1, 1, 1]]
    # an example attention_mask / labels are honoured
    b = coll([{"input_ids": [5, 6, 9, 4], "attention_mask": [1, 1, 1, 0], "labels": [-100, 6, 9, 4]}])
    assert b["attention_mask"].tolist() == [[1, 1, 1, 0]]
    assert b["labels"].tolist() == [[-100, 6, 9, -100]]


@pytest.mark.parametrize("sampler", [CreamSampler(N, L), PoseSampler(N, L), RandPosSampler(N, L),
                                     ContiguousSampler(N, L)], ids=lambda s: s.name)
def test_collator_ids_come_from_the_sampler(sampler):
    coll = PositionCollator(sampler, seed=11, record=True)
    examples = _examples([N] * 6)
    for i, ex in enumerate(examples):
        ex["sample_index"] = 100 + i
    pos = coll(examples)["position_ids"].numpy()
    assert (np.diff(pos, axis=1) > 0).all() and pos.min() >= 0 and pos.max() < L
    for i in range(6):
        rng = np.random.default_rng(coll.row_seed(sample_index=100 + i))
        assert np.array_equal(pos[i], sampler.position_ids(1, rng)[0])
    # the log rebuilds every row
    assert [r["sample_index"] for r in coll.log] == list(range(100, 106))
    for i, rec in enumerate(coll.log):
        if "position_ids" in rec:
            rebuilt = np.array(rec["position_ids"])
        else:
            seg = Segments(*(np.array([rec[k]]) for k in ("head_len", "mid_start", "mid_end",
                                                          "tail_len", "branch")), N, L)
            rebuilt = seg.position_ids()[0]
        assert np.array_equal(rebuilt, pos[i])


def test_collator_cream_rows_are_cream_layouts():
    sampler = CreamSampler(N, L)
    pos = PositionCollator(sampler, seed=5)(_examples([N] * 32))["position_ids"].numpy()
    heads = set()
    for row in pos:
        runs = _runs(row)
        assert runs[0][0] == 0 and runs[-1][1] == L - 1  # head from 0, tail ends at L - 1
        assert 1 <= len(runs) <= 3
        heads.add(runs[0][1] + 1 if len(runs) == 3 else None)
    assert heads <= {sampler.k, N // 3, None} and len(heads - {None}) == 2  # both branches drawn


def test_collator_is_reproducible():
    sampler = CreamSampler(N, L)
    examples = _examples([N] * 4)
    a = [PositionCollator(sampler, seed=1)(examples)["position_ids"] for _ in range(2)]
    assert torch.equal(a[0], a[1])
    b = PositionCollator(sampler, seed=2)(examples)["position_ids"]
    assert not torch.equal(a[0], b)
    # counter keys: the second batch differs from the first, and a restored counter repeats it
    coll = PositionCollator(sampler, seed=1)
    first, second = coll(examples)["position_ids"], coll(examples)["position_ids"]
    assert not torch.equal(first, second)
    fresh = PositionCollator(sampler, seed=99)
    fresh.load_state_dict({"seed": 1, "batches_done": 1})
    assert torch.equal(fresh(examples)["position_ids"], second)
    # sample_index keys: ids follow the example, whatever the batch order or counter
    indexed = [dict(ex, sample_index=i) for i, ex in enumerate(examples)]
    c = PositionCollator(sampler, seed=1)
    fwd = c(indexed)["position_ids"]
    rev = c(indexed[::-1])["position_ids"]
    assert torch.equal(fwd, rev.flip(0))
    # seed=None draws a seed and records it
    auto = PositionCollator(sampler)
    assert isinstance(auto.seed, int)
    again = PositionCollator(sampler, seed=auto.seed)
    assert torch.equal(auto(examples)["position_ids"], again(examples)["position_ids"])


@pytest.mark.parametrize("sampler", [CreamSampler(N, L), PoseSampler(N, L), RandPosSampler(N, L),
                                     ContiguousSampler(N, L)], ids=lambda s: s.name)
def test_aligned_tokens_sit_at_their_position_ids(sampler):
    coll = PositionCollator(sampler, tokens="aligned", seed=4)
    # token value = text offset, so aligned means input_ids == position_ids
    docs = [{"input_ids": list(range(L))}, {"input_ids": torch.arange(L + 50)}]  # longer: cut to L
    batch = coll(docs)
    assert batch["input_ids"].shape == (2, N)
    assert torch.equal(batch["input_ids"], batch["position_ids"])
    assert (batch["attention_mask"] == 1).all() and torch.equal(batch["labels"], batch["input_ids"])


def test_aligned_short_document_takes_its_last_tokens_and_refuses_too_short():
    sampler = CreamSampler(N, L, middle="uniform", k=4)
    coll = PositionCollator(sampler, tokens="aligned", seed=0, record=True)
    doc_len = L - 30
    rows, tried = 0, 0
    while rows < 5 and tried < 200:  # layouts whose middle ends before the document's tail
        tried += 1
        ex = {"input_ids": torch.arange(doc_len), "sample_index": tried}
        try:
            b = coll([ex])
        except ValueError:
            continue
        rows += 1
        rec = coll.log[-1]
        lt, ids, pos = rec["tail_len"], b["input_ids"][0], b["position_ids"][0]
        assert torch.equal(ids[:N - lt], pos[:N - lt])  # head and middle at their offsets
        assert torch.equal(ids[N - lt:], torch.arange(doc_len - lt, doc_len))  # the last L_t tokens
        assert torch.equal(pos[N - lt:], torch.arange(L - lt, L))
    assert rows == 5
    with pytest.raises(ValueError, match="aligned.*at least"):
        coll([{"input_ids": list(range(N - 1))}])  # shorter than any layout needs


def test_collator_rejects_bad_input():
    sampler = CreamSampler(N, L)
    with pytest.raises(ValueError, match="tokens="):
        PositionCollator(sampler, tokens="packed")
    with pytest.raises(ValueError, match="seed"):
        PositionCollator(sampler, seed=-1)
    with pytest.raises(ValueError, match="train_len=64"):
        PositionCollator(sampler)(_examples([N + 1]))
    with pytest.raises(ValueError, match="input_ids"):
        PositionCollator(sampler)([{"ids": [1, 2]}])
    with pytest.raises(ValueError, match="empty"):
        PositionCollator(sampler)([])


# --------------------------------------------------------------------------- attention stays causal
def test_attention_stays_fully_causal_across_position_jumps():
    """Logits with the collator's batch (2-D padding mask + jumping ids) equal those with an explicit
    full 4-D causal mask; without any mask transformers would read the jumps as packed sequences."""
    model = _tiny_model(seed=1).eval()
    sampler = CreamSampler(N, L, k=4)
    batch = PositionCollator(sampler, seed=2)(_examples([N, N, 50], vocab=300))
    assert (np.diff(batch["position_ids"][0].numpy()) > 1).any()  # there are jumps
    b, t = batch["input_ids"].shape
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    full_mask = causal[None, None] & batch["attention_mask"].bool()[:, None, None, :]  # (b, 1, t, t)
    with torch.no_grad():
        got = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"]).logits
        ref = model(input_ids=batch["input_ids"], attention_mask=full_mask,
                    position_ids=batch["position_ids"]).logits
        no_mask = model(input_ids=batch["input_ids"][:1], position_ids=batch["position_ids"][:1],
                        use_cache=False).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(got[real], ref[real], rtol=1e-5, atol=1e-5)
    # the trap the explicit mask avoids: no mask + jumping ids = attention cut at every jump
    first_jump = int(np.flatnonzero(np.diff(batch["position_ids"][0].numpy()) != 1)[0]) + 1
    assert not torch.allclose(no_mask[0, first_jump:], ref[0, first_jump:], atol=1e-4)


# --------------------------------------------------------------------------- Trainer runs
def test_collator_in_a_plain_trainer_reaches_the_model(tmp_path):
    """Default TrainingArguments (remove_unused_columns=True): position_ids still reach forward."""
    from transformers import Trainer, TrainingArguments

    model = _tiny_model()
    seen = []
    model.register_forward_pre_hook(lambda m, a, kw: seen.append(kw.get("position_ids")),
                                    with_kwargs=True)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                             report_to="none", save_strategy="no", disable_tqdm=True,
                             dataloader_pin_memory=False)
    coll = PositionCollator(CreamSampler(N, L), seed=0, record=True)
    Trainer(model=model, args=args, train_dataset=_examples([N, N]), data_collator=coll).train()
    assert len(seen) == 1 and seen[0] is not None
    assert seen[0].shape == (2, N) and int(seen[0].max()) == L - 1  # CREAM's tail reached the model


def test_window_dataset_is_indexed_and_seeded():
    tokens = np.arange(1000)
    ds = WindowDataset(tokens, 64, 10, seed=3)
    a, b = ds[4], WindowDataset(tokens, 64, 10, seed=3)[4]
    assert a["sample_index"] == 4 and torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["input_ids"], torch.arange(64) + a["input_ids"][0])  # one contiguous window
    with pytest.raises(ValueError, match="length=2000"):
        WindowDataset(tokens, 2000, 1, seed=0)


def test_window_dataset_offsets_cover_exactly_the_valid_range():
    # 70 tokens, windows of 64: the start is uniform on 0..6, and every window is whole
    ds = WindowDataset(np.arange(70), 64, 700, seed=0)
    starts = [int(ds[i]["input_ids"][0]) for i in range(len(ds))]
    assert set(starts) == set(range(7))
    assert all(len(ds[i]["input_ids"]) == 64 for i in range(len(ds)))
    with pytest.raises(IndexError):
        ds[700]


def test_mixture_dataset_rows_are_seeded_by_index():
    from creamviz.models import byte_tokenizer

    ds = MixtureDataset(byte_tokenizer(), N, 5, seed=1)
    rows = [ds[i]["input_ids"] for i in range(5)]
    assert all(r.shape == (N,) and r.dtype == torch.int64 for r in rows)
    labels = ds[0]["labels"]
    assert labels.shape == (N,) and bool(((labels == -100) | (labels == rows[0])).all())
    assert torch.equal(MixtureDataset(byte_tokenizer(), N, 5, seed=1)[3]["input_ids"], rows[3])
    assert not torch.equal(rows[3], rows[4])
    assert not torch.equal(MixtureDataset(byte_tokenizer(), N, 5, seed=2)[3]["input_ids"], rows[3])


def test_cli_two_step_run_writes_safetensors_and_metadata(base_dir, tmp_path):
    from creamviz.cli import main
    from creamviz.models import load_model

    out = tmp_path / "run"
    rc = main(["train", "--model", str(base_dir), "--train-len", str(N), "--target-len", str(L),
               "--sampler", "cream", "--k", "8", "--rope", "yarn", "--tokens", "aligned",
               "--steps", "2", "--batch-size", "2",
               "--save-every", "1", "--lr", "1e-3", "--warmup-steps", "0", "--seed", "5",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    final = out / "final"
    assert (final / "model.safetensors").is_file() and not list(final.glob("*.bin"))
    assert (out / "checkpoint-1" / "model.safetensors").is_file()
    assert (out / "checkpoint-2" / "model.safetensors").is_file()
    meta = json.loads((final / "creamviz_run.json").read_text())
    assert meta["sampler"]["name"] == "cream" and meta["sampler"]["params"]["k"] == 8
    assert meta["rope"]["type"] == "yarn" and meta["rope"]["factor"] == L / N
    assert meta["rope"]["rope_parameters"]["original_max_position_embeddings"] == N
    assert meta["seed"] == 5 and meta["steps"] == 2 and meta["tokens"] == "aligned"
    assert "commit" in meta["git"]
    log = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    pos = [json.loads(x) for x in (out / "positions.jsonl").read_text().splitlines()]
    assert sorted(r["sample_index"] for r in pos) == [0, 1, 2, 3]
    assert {r["head_len"] for r in pos} <= {8, N // 3}
    model = load_model(final)
    assert model.config.rope_parameters["rope_type"] == "yarn"
    assert model.config.rope_parameters["factor"] == L / N
    # a bad sampler parameter is a clean error, exit status 2
    assert main(["train", "--model", str(base_dir), "--train-len", str(N), "--target-len", str(L),
                 "--k", "0", "--out", str(tmp_path / "bad")]) == 2


def test_resume_loses_and_repeats_no_step(base_dir, small_corpus, tmp_path):
    from safetensors.torch import load_file

    common = dict(model=str(base_dir), target_len=L, steps=4, batch_size=2,  # train_len: the model's N = 64
                  save_every=2, warmup_steps=0, lr=1e-3, lr_schedule="linear", seed=7,
                  data=str(small_corpus), progress=False)
    whole = train(TrainConfig(**common, out=str(tmp_path / "whole")))
    assert whole.completed and whole.steps_done == 4
    # interrupted at step 3 (after the step-2 checkpoint, before the next): step 3 must be redone
    cut = train(TrainConfig(**common, out=str(tmp_path / "cut")), callbacks=[StopCallback(at_step=3)])
    assert not cut.completed and cut.steps_done == 3 and cut.final_model is None
    assert [c.name for c in cut.checkpoints] == ["checkpoint-2"]
    with pytest.raises(ValueError, match="resume=True"):
        train(TrainConfig(**common, out=str(tmp_path / "cut")))
    with pytest.raises(ValueError, match="lr"):
        train(TrainConfig(**{**common, "lr": 5e-4}, out=str(tmp_path / "cut"), resume=True))
    resumed = train(TrainConfig(**common, out=str(tmp_path / "cut"), resume=True))
    assert resumed.completed and resumed.resumed_from.name == "checkpoint-2"
    meta = json.loads((resumed.final_model / "creamviz_run.json").read_text())
    assert meta["train_len"] == N and meta["rope"]["factor"] == L / N
    assert meta["resumed_from"].endswith("checkpoint-2")
    assert [r["step"] for r in resumed.loss_log] == [1, 2, 3, 4]  # each step once
    assert [r["loss"] for r in resumed.loss_log] == [r["loss"] for r in whole.loss_log]
    assert len({r["loss"] for r in whole.loss_log}) == 4  # the steps really differ
    w_whole = load_file(whole.final_model / "model.safetensors")
    w_resumed = load_file(resumed.final_model / "model.safetensors")
    base = load_file(base_dir / "model.safetensors")
    for name, w in w_whole.items():
        assert torch.equal(w, w_resumed[name]), name
    assert any(not torch.equal(w, base[name]) for name, w in w_whole.items())  # training moved them
    rows = [json.loads(x) for x in (tmp_path / "cut" / "positions.jsonl").read_text().splitlines()]
    assert sorted(r["sample_index"] for r in rows) == list(range(8))  # 4 steps x batch_size 2, each once
    from creamviz.models import load_model
    from creamviz.training import model_window

    # the saved model holds L in max_position_embeddings (linear RoPE); its window is still N
    assert load_model(resumed.final_model).config.max_position_embeddings == L
    assert model_window(str(resumed.final_model)) == N


def test_cancel_with_save_keeps_a_checkpoint_to_resume_from(base_dir, small_corpus, tmp_path):
    """A cancel (StopCallback.request, as a notebook button does) with save=True checkpoints the
    current step; resume continues from exactly there. (Data: the pre-training mixture.)"""
    cfg = dict(model=str(base_dir), target_len=L, steps=3, batch_size=2, save_every=100,
               warmup_steps=0, data="mix", progress=False, out=str(tmp_path / "run"))

    class CancelAfterFirstStep(StopCallback):
        def on_step_end(self, args, state, control, **kwargs):
            self.request()  # what a button handler in another thread would call
            return super().on_step_end(args, state, control, **kwargs)

    first = train(TrainConfig(**cfg), callbacks=[CancelAfterFirstStep(save=True)])
    assert first.steps_done == 1 and [c.name for c in first.checkpoints] == ["checkpoint-1"]
    assert (first.checkpoints[0] / "model.safetensors").is_file()
    rest = train(TrainConfig(**cfg, resume=True))
    assert rest.resumed_from.name == "checkpoint-1" and rest.steps_done == 3 and rest.completed
    assert [r["step"] for r in rest.loss_log] == [1, 2, 3]


def _launch(args, out, base_dir, corpus, cwd, env_extra=()):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **dict(env_extra),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    launcher = pathlib.Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", *args, "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "-m", "creamviz.cli", "train",
           "--model", str(base_dir), "--train-len", str(N), "--target-len", str(L), "--steps", "2",
           "--batch-size", "2", "--save-every", "2", "--warmup-steps", "0", "--data", str(corpus),
           "--out", str(out), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "final" / "creamviz_run.json").read_text())


def _loads(final: pathlib.Path):
    from creamviz.models import load_model

    model = load_model(final)
    with torch.no_grad():
        logits = model(torch.tensor([[10, 11, 12]])).logits
    assert logits.shape == (1, 3, model.config.vocab_size) and torch.isfinite(logits).all()


@pytest.mark.slow
def test_accelerate_two_process_cpu_launch(base_dir, small_corpus, tmp_path):
    """Two CPU processes (gloo DDP) through accelerate's torchrun launcher; each process trains
    on its own shard of the windows. CUDA is hidden so this stays a CPU run on GPU hosts too."""
    out = tmp_path / "ddp"
    meta = _launch(["--multi_gpu", "--num_processes", "2"], out, base_dir, small_corpus, tmp_path,
                   env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert meta["world_size"] == 2 and meta["steps"] == 2
    seen = []
    for rank in (0, 1):
        recs = [json.loads(x) for x in (out / f"positions.rank{rank}.jsonl").read_text().splitlines()]
        seen.append({r["sample_index"] for r in recs})
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(8))  # 2 steps x 2 procs x 2
    _loads(out / "final")


@pytest.mark.slow
def test_accelerate_launch_cpu_flag_finishes_and_loads(base_dir, small_corpus, tmp_path):
    """The literal `accelerate launch --num_processes 2 --cpu -m creamviz.cli train` finishes and its
    model loads. (accelerate 1.x starts a single process for --cpu unless given an MPI hostfile.)"""
    out = tmp_path / "cpu"
    meta = _launch(["--cpu", "--num_processes", "2"], out, base_dir, small_corpus, tmp_path)
    assert meta["steps"] == 2
    _loads(out / "final")


# --------------------------------------------------------------------------- hostile input
@pytest.mark.parametrize("field, value", [
    ("weight_decay", float("nan")), ("weight_decay", -0.1), ("weight_decay", float("inf")),
    ("max_grad_norm", float("nan")), ("max_grad_norm", -1.0), ("lr", float("nan")), ("lr", 0.0),
    ("lr", -1e-3), ("lr", float("inf")), ("steps", 0), ("steps", 2.5), ("batch_size", 0),
    ("grad_accum", 0), ("save_every", 0), ("warmup_steps", -1), ("seed", -1), ("seed", 2**40),
    ("factor", float("inf")), ("factor", float("nan")), ("factor", 0.5), ("target_len", 10**12),
    ("target_len", 0), ("train_len", 0), ("keep_checkpoints", 0), ("lr_schedule", "bogus"),
    ("out", ""), ("out", "   "), ("resume", "yes"), ("progress", 1), ("sampler_params", [1]),
    ("attn", "flash"), ("data", "/no/such/file.txt"), ("sampler", "bogus"), ("tokens", "both"),
])
def test_train_config_refuses_every_bad_field(field, value):
    with pytest.raises(ValueError, match=re.escape(field)):
        TrainConfig(**{field: value}).validate()


def test_train_config_refuses_out_naming_a_file_and_target_not_above_train(tmp_path):
    existing = tmp_path / "a_file"
    existing.write_text("x")
    with pytest.raises(ValueError, match="out=.*existing file"):
        TrainConfig(out=str(existing)).validate()
    with pytest.raises(ValueError, match="target_len=64 .*train_len=64"):
        TrainConfig(train_len=64, target_len=64).validate()
    TrainConfig(out=str(tmp_path / "new")).validate()  # a new directory is fine


def test_undecodable_data_file_is_named(tmp_path):
    from creamviz.data import read_corpus

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt.*not UTF-8"):
        read_corpus(bad)


def test_truncated_weights_are_a_clear_error(base_dir, tmp_path):
    import shutil

    from creamviz.models import load_model

    cut = tmp_path / "cut"
    shutil.copytree(base_dir, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors.*not a complete safetensors file"):
        load_model(cut)


class _Poison(StopCallback):
    """Make every weight NaN after step ``at`` (what a diverging run does)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.at:
            with torch.no_grad():
                for p in model.parameters():
                    p.fill_(float("nan"))
        return control


def test_non_finite_training_stops_and_keeps_the_last_good_checkpoint(base_dir, small_corpus, tmp_path):
    from safetensors.torch import load_file

    from creamviz.training import NonFiniteLossError

    out = tmp_path / "run"
    cfg = TrainConfig(model=str(base_dir), target_len=L, steps=6, batch_size=2, save_every=2, warmup_steps=0,
                      data=str(small_corpus), progress=False, out=str(out))
    # poisoned after step 3: the step-4 save must be cancelled (weights), the step-4 loss is NaN
    with pytest.raises(NonFiniteLossError, match=r"step 4.*last good checkpoint: checkpoint-2"):
        train(cfg, callbacks=[_Poison(at=3)])
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]
    assert not (out / "final").exists()
    weights = load_file(out / "checkpoint-2" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    log = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log][:3] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in log[:3])


KILL_SCRIPT = """
import os, signal, sys
from transformers import Trainer
from creamviz.training import TrainConfig, train
save = Trainer._save_optimizer_and_scheduler
def killed_while_saving(self, output_dir):
    if output_dir.endswith("checkpoint-4"):  # weights of step 4 are on disk, its state is not
        os.kill(os.getpid(), signal.SIGKILL)
    return save(self, output_dir)
Trainer._save_optimizer_and_scheduler = killed_while_saving
train(TrainConfig(model=sys.argv[1], target_len=int(sys.argv[4]), steps=6, batch_size=2, save_every=2,
                  warmup_steps=0, lr=1e-3, lr_schedule="linear", seed=3, data=sys.argv[2], progress=False,
                  out=sys.argv[3]))
"""


@pytest.mark.slow
def test_kill_9_while_saving_then_resume_falls_back_and_logs_each_row_once(base_dir, small_corpus, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(base_dir), str(small_corpus), str(out), str(L)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert (out / "checkpoint-4" / "model.safetensors").is_file()  # half-written
    assert not (out / "checkpoint-4" / "trainer_state.json").exists()
    common = dict(model=str(base_dir), target_len=L, steps=6, batch_size=2, save_every=2, warmup_steps=0,
                  lr=1e-3, lr_schedule="linear", seed=3, data=str(small_corpus), progress=False)
    with pytest.warns(UserWarning, match=r"incomplete checkpoint.*checkpoint-4.*resuming from checkpoint-2"):
        resumed = train(TrainConfig(**common, out=str(out), resume=True))
    assert resumed.completed and resumed.resumed_from.name == "checkpoint-2"
    rows = [json.loads(x) for x in (out / "positions.jsonl").read_text().splitlines()]
    assert sorted(r["sample_index"] for r in rows) == list(range(12))  # 6 steps x 2, each once
    whole = train(TrainConfig(**common, out=str(tmp_path / "whole")))
    assert [r["loss"] for r in resumed.loss_log] == [r["loss"] for r in whole.loss_log]
    uninterrupted = [json.loads(x) for x in (tmp_path / "whole" / "positions.jsonl").read_text().splitlines()]
    key = ("sample_index", "head_len", "mid_start", "mid_end")
    assert sorted(tuple(r[k] for k in key) for r in rows) == sorted(tuple(r[k] for k in key) for r in uninterrupted)


def test_resume_without_a_checkpoint_says_so(base_dir, small_corpus, tmp_path, caplog):
    # resume on an empty directory is a normal first run: logged at INFO, no warning
    cfg = TrainConfig(model=str(base_dir), target_len=L, steps=1, batch_size=1, save_every=5, warmup_steps=0,
                      data=str(small_corpus), progress=False, out=str(tmp_path / "fresh"), resume=True)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="creamviz.training"):
        warnings.simplefilter("error", UserWarning)
        result = train(cfg)
    assert "holds no checkpoint yet: starting a fresh run" in caplog.text
    assert result.completed and result.resumed_from is None
