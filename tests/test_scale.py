"""Training at scale: datasets sources for --data, the memory knobs, which factor is which, the
per-GPU memory formulae, the Accelerate configs and a 2-process FSDP run on CPU (gloo)."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from creamviz.data import DocumentDataset, load_documents, row_lengths
from creamviz.lengths import Lengths
from creamviz.memory import (
    GB,
    LLAMA2_7B,
    ModelShape,
    activation_bytes,
    memory_table,
    model_state_bytes,
    per_gpu_memory,
)
from creamviz.training import (
    PositionCollator,
    TrainConfig,
    train,
)

N, L = 64, 256
REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path_factory, monkeypatch):
    """Keep the datasets cache inside the test's temp dir, offline."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path_factory.getbasetemp() / "hf_datasets"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


# base_dir (the N = 64 tiny Llama) and small_corpus: session fixtures in conftest.py


@pytest.fixture(scope="module")
def byte_tok():
    from creamviz.models import byte_tokenizer

    return byte_tokenizer()


def _docs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(3, 300, size=t).tolist() for t in lengths]


# --------------------------------------------------------------------------- datasets sources
def test_save_to_disk_input_ids_rows_are_used_as_is(tmp_path, byte_tok):
    import datasets

    docs = _docs([N, N + 10, 3 * N])
    datasets.Dataset.from_dict({"input_ids": docs, "meta": ["a", "b", "c"]}).save_to_disk(tmp_path / "ds")
    ds, col = load_documents(tmp_path / "ds", byte_tok)
    assert col == "input_ids" and ds.column_names == ["input_ids"]
    assert row_lengths(ds).tolist() == [N, N + 10, 3 * N]
    items = DocumentDataset(ds, N, 7, seed=1)
    seen = set()
    for i in range(7):
        item = items[i]
        row = items.row_of(i)
        assert item["sample_index"] == i and torch.equal(item["input_ids"], torch.tensor(docs[row][:N]))
        seen.add(row)
    assert seen == {0, 1, 2}  # every row visited (7 items = 2 passes and one more)
    # the first pass is a permutation of the rows; the order depends on the seed only
    assert sorted(items.row_of(i) for i in range(3)) == [0, 1, 2]
    again = DocumentDataset(ds, N, 7, seed=1)
    assert [again.row_of(i) for i in range(7)] == [items.row_of(i) for i in range(7)]
    # a DatasetDict directory: its train split
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"input_ids": docs})}).save_to_disk(tmp_path / "dd")
    assert load_documents(tmp_path / "dd", byte_tok)[0].num_rows == 3


def test_jsonl_text_is_tokenized_and_cached(tmp_path, byte_tok):
    texts = ["hello world " * 20, "naïve café " * 30, "x" * 500]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts)))
    ds, col = load_documents(path, byte_tok)
    assert col == "text" and ds.column_names == ["input_ids"]
    for row, t in zip(ds, texts, strict=True):  # the byte tokenizer: id = byte + 3, no special tokens
        assert row["input_ids"] == [b + 3 for b in t.encode("utf-8")]
    again, _ = load_documents(path, byte_tok)  # second load: the same cache files, no re-tokenizing
    assert again.cache_files and again.cache_files == ds.cache_files
    # parquet works the same way
    import datasets

    datasets.Dataset.from_dict({"text": texts}).to_parquet(str(tmp_path / "docs.parquet"))
    pq, _ = load_documents(tmp_path / "docs.parquet", byte_tok)
    assert pq["input_ids"] == ds["input_ids"]


def test_dataset_errors_name_file_and_column(tmp_path, byte_tok):
    import datasets

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.jsonl"):
        load_documents(empty, byte_tok)
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"body": "abc"}) + "\n")
    with pytest.raises(ValueError, match=r"wrong.jsonl.*none of the columns.*\['body'\]"):
        load_documents(wrong, byte_tok)
    with pytest.raises(ValueError, match=r"wrong.jsonl.*no column 'text'"):
        load_documents(wrong, byte_tok, column="text")
    datasets.Dataset.from_dict({"input_ids": ["not", "ids"]}).save_to_disk(tmp_path / "strs")
    with pytest.raises(ValueError, match=r"column 'input_ids' must hold lists of integer"):
        load_documents(tmp_path / "strs", byte_tok)
    with pytest.raises(ValueError, match="not a dataset written by save_to_disk"):
        load_documents(tmp_path, byte_tok)  # a directory that is no dataset
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": "y" * n}) + "\n" for n in (200, 10, 300, 20)))
    ds, col = load_documents(short, byte_tok)
    with pytest.raises(ValueError, match=r"short.jsonl', column 'text': 2 of 4 documents are shorter than "
                                         r"100 tokens \(first: row 1, 10 tokens\)"):
        DocumentDataset(ds, 100, 4, seed=0, source=str(short), column=col)
    skip = DocumentDataset(ds, 100, 4, seed=0, short="skip")
    assert {skip.row_of(i) for i in range(4)} == {0, 2}
    keep = DocumentDataset(ds, 100, 4, seed=0, short="keep")
    assert sorted(len(keep[i]["input_ids"]) for i in range(4)) == [10, 20, 100, 100]
    with pytest.raises(ValueError, match="no document has 400 tokens"):
        DocumentDataset(ds, 400, 4, seed=0, short="skip")


def test_config_rejects_bad_scale_fields():
    with pytest.raises(ValueError, match="short_docs"):
        TrainConfig(short_docs="drop").validate()
    with pytest.raises(ValueError, match="short_docs='keep' needs tokens='contiguous'"):
        TrainConfig(short_docs="keep", tokens="aligned").validate()
    with pytest.raises(ValueError, match="chat_labels"):
        TrainConfig(chat_labels="user").validate()
    with pytest.raises(ValueError, match="data_column"):
        TrainConfig(data_column="ids").validate()
    with pytest.raises(ValueError, match="optim='adam_9000'.*adamw_torch"):
        TrainConfig(optim="adam_9000").validate()


@pytest.mark.parametrize("tokens", ["contiguous", "aligned"])
def test_train_reads_a_save_to_disk_dataset_and_a_jsonl_file(base_dir, tmp_path, tokens):
    """`creamviz train --data` on both sources, both token modes: the windows that reach the model are
    the documents' first N (contiguous) or their tokens at the sampled ids (aligned)."""
    import datasets

    from creamviz.cli import main

    window = N if tokens == "contiguous" else L
    rng = np.random.default_rng(3)
    docs = [rng.integers(3, 300, size=window + int(e)).tolist() for e in rng.integers(0, 40, size=6)]
    datasets.Dataset.from_dict({"input_ids": docs}).save_to_disk(tmp_path / "ds")
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"text": "".join(chr(97 + (t % 26)) for t in d)}) + "\n" for d in docs))
    for name, src in (("disk", tmp_path / "ds"), ("jsonl", jsonl)):
        out = tmp_path / name
        rc = main(["train", "--model", str(base_dir), "--target-len", str(L), "--k", "8", "--tokens", tokens,
                   "--steps", "2", "--batch-size", "2", "--save-every", "5", "--warmup-steps", "0",
                   "--data", str(src), "--out", str(out), "--no-progress"])
        assert rc == 0
        log = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
        meta = json.loads((out / "final" / "creamviz_run.json").read_text())
        assert meta["config"]["data"] == str(src) and meta["tokens"] == tokens
    # what the collator made of a row, rebuilt from the dataset: aligned = the row at the ids
    ds, _ = load_documents(tmp_path / "ds", None)
    items = DocumentDataset(ds, window, 4, seed=0)
    from creamviz.samplers import CreamSampler

    batch = PositionCollator(CreamSampler(N, L, k=8), tokens=tokens, seed=0)([items[0], items[1]])
    for r in range(2):
        doc = np.array(docs[items.row_of(r)])
        pos = batch["position_ids"][r].numpy()
        expect = doc[:N] if tokens == "contiguous" else doc[pos]
        assert np.array_equal(batch["input_ids"][r].numpy(), expect)


def test_short_documents_stop_train_with_the_file_and_column(base_dir, tmp_path):
    path = tmp_path / "short.jsonl"
    path.write_text("".join(json.dumps({"text": "z" * n}) + "\n" for n in (300, 100, 300)))
    cfg = TrainConfig(model=str(base_dir), target_len=L, sampler_params={"k": 8}, tokens="aligned",
                      steps=1, batch_size=1, data=str(path), progress=False, out=str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"short.jsonl', column 'text': 1 of 3 documents are shorter than "
                                         r"256 tokens.*tokens='aligned' needs documents of L = target_len"):
        train(cfg)


# --------------------------------------------------------------------------- which factor is which
def test_lengths_separate_sampler_and_rope_factors(base_dir):
    # the model's window W = 64; N = 16 -> L = 1024: sampler factor 64, RoPE factor 16
    lengths = Lengths.resolve(str(base_dir), 1024, train_len=16, rope="yarn")
    rep = lengths.report("cream")
    assert rep["model_window"] == N and rep["train_len"] == 16 and rep["target_len"] == 1024
    assert rep["sampler_factor"] == 64 and rep["rope_factor"] == 16 == lengths.rope_factor
    # CREAM's default k = 4 L / N = 256 cannot fit 16 tokens ((N-1)//2 = 7): refused with the
    # explanation and a k that fits (the rule at W: 4 x 1024 / 64 = 64, clipped to 7)
    assert rep["sampler_defaults"]["k"] == 256 and rep["sampler_defaults"]["mu"] == 65
    with pytest.raises(ValueError, match=r"k defaults to 4·L/N = 256.*valid range \[1, 7\] at N = 16.*'k': 7"):
        TrainConfig(model=str(base_dir), train_len=16, target_len=1024).lengths()
    text = lengths.describe("cream")
    assert "sampler factor L/N = 64" in text and "yarn x16 (L / W)" in text and "does not fit" in text
    ok = TrainConfig(model=str(base_dir), train_len=16, target_len=1024, sampler_params={"k": 4}).lengths()
    assert ok.problems("cream", {"k": 4}) == [] and "differ from the model's window" in ok.notes()[0]
    # N = W: one factor, no notes
    same = TrainConfig(model=str(base_dir), target_len=L).lengths()
    assert same.sampler_factor == same.rope_factor == L / N and same.notes() == []
    # a given factor wins over L / W; rope='none' has none
    assert Lengths.resolve(str(base_dir), L, factor=2.5).rope_factor == 2.5
    assert Lengths.resolve(str(base_dir), L, rope="none").rope_factor is None
    # L inside the window with interpolation: refused
    with pytest.raises(ValueError, match="inside the model's window"):
        TrainConfig(model=str(base_dir), train_len=16, target_len=32).lengths()


def test_cli_refuses_a_default_k_that_does_not_fit(base_dir, tmp_path, capsys):
    from creamviz.cli import main

    rc = main(["train", "--model", str(base_dir), "--train-len", "16", "--target-len", "1024",
               "--out", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr()
    assert rc == 2 and "k defaults to 4·L/N = 256" in err.err and "--k 7" in err.err
    assert not (tmp_path / "r").exists()


def test_gradient_checkpointing_and_optim_reach_the_trainer(base_dir, tmp_path, monkeypatch):
    """--gradient-checkpointing turns on the model's own checkpointing; --optim picks the optimizer;
    the losses equal a run without checkpointing (recomputation changes memory, not math)."""
    from transformers import Trainer

    seen = {}
    orig = Trainer.create_optimizer

    def spy(self, *a, **kw):
        seen["checkpointing"] = self.model.is_gradient_checkpointing
        opt = orig(self, *a, **kw)
        seen["optimizer"] = type(opt.optimizer if hasattr(opt, "optimizer") else opt).__name__
        return opt

    monkeypatch.setattr(Trainer, "create_optimizer", spy)
    common = dict(model=str(base_dir), target_len=L, sampler_params={"k": 8}, steps=2, batch_size=2,
                  warmup_steps=0, save_every=10, progress=False, record_positions=False)
    ckpt = train(TrainConfig(**common, gradient_checkpointing=True, optim="sgd", lr=1e-2, out=str(tmp_path / "a")))
    assert seen == {"checkpointing": True, "optimizer": "SGD"}
    plain = train(TrainConfig(**common, optim="sgd", lr=1e-2, out=str(tmp_path / "b")))
    assert seen == {"checkpointing": False, "optimizer": "SGD"}
    for a, b in zip(ckpt.loss_log, plain.loss_log, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    meta = json.loads((ckpt.final_model / "creamviz_run.json").read_text())
    assert meta["memory"] == {"bf16": False, "gradient_checkpointing": True, "optim": "sgd"}
    assert meta["lengths"]["rope_factor"] == L / N and meta["distributed"]["type"] == "NO"


# --------------------------------------------------------------------------- memory formulae
def test_model_states_match_the_zero_paper():
    """ZeRO paper, Figure 1: Ψ = 7.5B, N_d = 64, K = 12 -> 120 / 31.4 / 16.6 / 1.9 GB per GPU."""
    psi, nd = 7.5e9, 64
    got = {s: model_state_bytes(psi, s, nd)["gpu"] / GB for s in ("ddp", "zero1", "zero2", "zero3")}
    assert got["ddp"] == pytest.approx(120.0)
    assert round(got["zero1"], 1) == 31.4 and round(got["zero2"], 1) == 16.6 and round(got["zero3"], 1) == 1.9
    # the same from the closed forms, term by term
    z1 = model_state_bytes(psi, "zero1", nd)
    assert (z1["params"], z1["grads"], z1["optimizer"]) == (2 * psi, 2 * psi, 12 * psi / nd)
    off = model_state_bytes(psi, "zero1_offload", 2)
    assert off["gpu"] == 4 * psi and off["cpu"] == 12 * psi / 2 and off["optimizer"] == 0
    fsdp = model_state_bytes(psi, "fsdp_full_shard", 8, layer_params=1e8)
    assert fsdp["params"] + fsdp["grads"] + fsdp["optimizer"] == pytest.approx(16 * psi / 8)
    assert fsdp["gathered"] == 2 * 2 * 1e8
    assert model_state_bytes(psi, "ddp", 1, precision="fp32")["gpu"] == 16 * psi  # 4 + 4 + 8
    assert model_state_bytes(psi, "ddp", 1, optimizer_bytes=4)["gpu"] == 8 * psi  # e.g. 8-bit Adam
    with pytest.raises(ValueError, match="strategy='zero4'"):
        model_state_bytes(psi, "zero4", 2)
    with pytest.raises(ValueError, match="world_size=0"):
        model_state_bytes(psi, "ddp", 0)


def test_activation_formula_by_hand():
    shape = ModelShape(n_params=1e6, hidden=8, layers=3, heads=2, vocab=10)
    s, b = 16, 2
    full = activation_bytes(shape, s, b, checkpointing=False, fused_attention=False)
    per_layer = s * b * 8 * (34 + 5 * 2 * s / 8)  # Korthikanti et al. eq. (2), 16-bit
    assert full["layers"] == 3 * per_layer and full["logits"] == s * b * 10 * 10
    ck = activation_bytes(shape, s, b, checkpointing=True)
    assert ck["layers"] == 3 * 2 * s * b * 8 + s * b * 8 * 34
    assert activation_bytes(shape, s, b, checkpointing=True, dtype_bytes=4)["logits"] == s * b * 10 * 12


def test_paper_setting_table():
    """Llama-2-7B, N = 4096, 16 per GPU, 2 GPUs: only the paper's ZeRO-1 + offload fits 80 GB."""
    rows = {s: per_gpu_memory(LLAMA2_7B, strategy=s, world_size=2, seq_len=4096, batch=16)["gpu"] / GB
            for s in ("ddp", "zero1_offload", "fsdp_full_shard", "zero3")}
    assert rows["zero1_offload"] < 80 < min(rows["ddp"], rows["fsdp_full_shard"], rows["zero3"])
    table = memory_table()
    assert table.count("\n| ") == 6 and "ZeRO-1 + optimizer offload (paper)" in table
    out = subprocess.run([sys.executable, "-m", "creamviz.memory"], capture_output=True, text=True,
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == table
    assert table in (REPO / "docs" / "training.md").read_text()  # the table on the training page is this one


# --------------------------------------------------------------------------- Accelerate configs
def test_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    fsdp = load_config_from_file(str(REPO / "configs" / "fsdp.yaml"))
    assert str(fsdp.distributed_type) in ("FSDP", "DistributedType.FSDP")
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    for name, stage in (("deepspeed_zero1_offload", 1), ("deepspeed_zero3", 3)):
        cfg = load_config_from_file(str(REPO / "configs" / f"{name}.yaml"))
        ds_file = REPO / cfg.deepspeed_config["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] == stage
    zero1 = json.loads((REPO / "configs/deepspeed/zero1_offload.json").read_text())
    assert zero1["zero_optimization"]["offload_optimizer"]["device"] == "cpu"  # the paper's set-up


def test_launch_lines_in_the_configs_name_a_module_that_trains():
    """Each config's comment shows how to launch it; the module it names runs `creamviz train`."""
    import re

    from creamviz.cli import COMMANDS

    for path in sorted((REPO / "configs").glob("*.yaml")):
        text = path.read_text()
        found = re.findall(r"-m (\S+) (\S+)", text)
        assert found, f"{path.name} shows no launch line"
        for module, command in found:
            assert importlib.util.find_spec(module) is not None, f"{path.name}: no module {module}"
            assert module == "creamviz.cli" and command in COMMANDS, f"{path.name}: -m {module} {command}"


@pytest.mark.parametrize("name", ["zero1_offload", "zero3"])
def test_deepspeed_json_fills_from_the_run_and_validates(name):
    """transformers fills every "auto" from the run's arguments; DeepSpeed's own schema accepts the
    result. Needs DeepSpeed (the optional extra ``.[deepspeed]``); skipped without it."""
    zero = pytest.importorskip("deepspeed.runtime.zero.config")
    from transformers import TrainingArguments
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    args = TrainingArguments(output_dir="unused", per_device_train_batch_size=16, gradient_accumulation_steps=2,
                             learning_rate=2e-5, max_grad_norm=1.0, report_to="none", use_cpu=True)
    hf = HfTrainerDeepSpeedConfig(str(REPO / "configs" / "deepspeed" / f"{name}.json"))
    hf.trainer_config_process(args)
    cfg = hf.config
    assert "auto" not in json.dumps(cfg)
    assert cfg["train_micro_batch_size_per_gpu"] == 16 and cfg["gradient_accumulation_steps"] == 2
    assert cfg["optimizer"]["params"]["lr"] == 2e-5 and cfg["gradient_clipping"] == 1.0
    parsed = zero.DeepSpeedZeroConfig(**cfg["zero_optimization"])
    assert int(parsed.stage) == cfg["zero_optimization"]["stage"]


# --------------------------------------------------------------------------- FSDP, 2 CPU processes
FSDP_ENTRY = REPO / "tests" / "fsdp_cpu_entry.py"


def _fsdp_launch(base_dir, corpus, out, steps, extra=()):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    launcher = pathlib.Path(sys.executable).with_name("accelerate")
    cmd = [str(launcher), "launch", "--config_file", str(REPO / "configs" / "fsdp.yaml"),
           "--num_processes", "2", str(FSDP_ENTRY),
           "--model", str(base_dir), "--target-len", str(L), "--k", "8", "--steps", str(steps),
           "--batch-size", "2", "--save-every", "2", "--warmup-steps", "0", "--lr", "1e-3", "--seed", "3",
           "--data", str(corpus), "--out", str(out), "--no-progress", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_fsdp_two_cpu_processes_train_save_and_resume(base_dir, tmp_path):
    """configs/fsdp.yaml under `accelerate launch` with 2 gloo processes: FSDP2 full shard of the
    tiny model, loss logged, final model a plain safetensors directory, --resume continues; each
    rank's position ids are its own examples' (disjoint sample indices) and re-drawable from
    (seed, sample_index). Accelerate applies FSDP only to GPU processes, so the entry script
    tests/fsdp_cpu_entry.py lets its FSDP path run on CPU."""
    from creamviz.data import read_corpus
    from creamviz.models import load_model
    from creamviz.samplers import CreamSampler, Segments

    corpus = tmp_path / "small.txt"
    corpus.write_text(read_corpus()[:20_000], encoding="utf-8")
    out = tmp_path / "fsdp"
    _fsdp_launch(base_dir, corpus, out, steps=2)
    meta = json.loads((out / "final" / "creamviz_run.json").read_text())
    dist = meta["distributed"]
    assert dist["type"] == "FSDP" and dist["num_processes"] == 2 and dist["fsdp"]["version"] == 2
    assert meta["world_size"] == 2 and meta["steps"] == 2
    log = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(np.isfinite(r["loss"]) for r in log)
    # the final model and the step-2 checkpoint load as normal safetensors directories
    base = load_model(base_dir)
    for d in (out / "final", out / "checkpoint-2"):
        assert (d / "model.safetensors").is_file()
        m = load_model(d)
        assert {k: v.shape for k, v in m.state_dict().items()} == {k: v.shape for k, v in base.state_dict().items()}
        moved = [not torch.equal(v, base.state_dict()[k]) for k, v in m.state_dict().items()]
        assert any(moved)  # trained, gathered whole (no shard-sized tensors)
    # rank-aware, reproducible position ids
    sampler = CreamSampler(N, L, k=8)
    coll = PositionCollator(sampler, seed=3)
    seen = []
    for rank in (0, 1):
        recs = [json.loads(x) for x in (out / f"positions.rank{rank}.jsonl").read_text().splitlines()]
        seen.append({r["sample_index"] for r in recs})
        for r in recs:
            rebuilt = Segments(*(np.array([r[k]]) for k in ("head_len", "mid_start", "mid_end", "tail_len",
                                                           "branch")), N, L).position_ids()[0]
            rng = np.random.default_rng(coll.row_seed(sample_index=r["sample_index"]))
            assert np.array_equal(rebuilt, sampler.position_ids(1, rng)[0])
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(range(8))
    # resume: two more steps from checkpoint-2
    _fsdp_launch(base_dir, corpus, out, steps=4, extra=["--resume"])
    meta = json.loads((out / "final" / "creamviz_run.json").read_text())
    assert meta["resumed_from"].endswith("checkpoint-2") and meta["steps"] == 4
    log2 = [json.loads(x) for x in (out / "loss_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log2] == [1, 2, 3, 4] and log2[:2] == log
    recs = [json.loads(x) for x in (out / "positions.rank0.jsonl").read_text().splitlines()]
    assert {r["sample_index"] for r in recs} >= seen[0] and len(recs) == 8  # steps 3-4 appended
