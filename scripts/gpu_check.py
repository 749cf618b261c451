#!/usr/bin/env python3
"""GPU check, one H100, about 8 minutes, nothing downloaded; everything it reports goes under $OUT.

(a) Extends SmolLM2-135M-Instruct from its 8K window to 32K with CREAM and with PoSE (same data,
    steps, lr, YaRN x4, seed; N = 8192 tokens per window, bf16, gradient checkpointing) and
    evaluates key-value retrieval by depth of the gold pair at 32K tokens for CREAM, PoSE and the
    untuned base with the same YaRN, plus the base at 4K inside its window (is the task solvable?).
(b) A 1-GPU run under configs/fsdp.yaml (``accelerate launch``) with --gradient-checkpointing --bf16:
    step time, tokens/s and peak GPU memory, next to creamviz.memory's estimate.

Writes ``$OUT/results.json`` (rewritten after every phase, so a run cut short still reports what
it finished), ``$OUT/report.md`` and ``$OUT/log.txt``; large files (models) stay in a work dir.

The model is read from the creamviz cache like in any other script (``load_model("smollm2-135m")``):
run ``make model`` (``creamviz fetch-model smollm2-135m``) once on the machine first.
``GPU_CHECK_MODEL=tiny`` runs (a) and (b) on the tiny byte-level model instead (N = 256 -> L = 1024, the
same 4x), labelled TINY everywhere.

Environment: ``OUT`` (required), ``GPU_CHECK_SMOKE=1`` (CPU dry run, tiny sizes: checks the plumbing
only), ``GPU_CHECK_WORK`` (work dir, default /tmp/gpu_check), ``GPU_CHECK_STEPS`` / ``GPU_CHECK_EVAL_N``
(override the sizes below), ``GPU_CHECK_PHASES`` (default ``b,a``), ``GPU_CHECK_MODEL`` (``smollm2-135m``,
the default, or ``tiny``).

The KV task: the paper's Lost-in-the-Middle prompt (``creamviz.tasks`` ``kv_uuid``: UUID pairs in a JSON
object, through the chat template, sized in real tokens) for SmolLM2; the hex ``kv`` list for the tiny model.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import traceback

REPO = pathlib.Path(__file__).resolve().parent.parent
SMOKE = os.environ.get("GPU_CHECK_SMOKE", "") == "1"
T0 = time.time()

# sizes, fixed before any result is seen (the same for CREAM and PoSE)
REAL = dict(window=8192, target=32768, steps=40, batch=4, lr=5e-5, warmup=4, eval_n=8, inwindow=4096,
            b_steps=8, b_batch=4, eval_batch=4, data=None)  # data None: the corpus text, as the paper (Pile text)
TINY = dict(window=256, target=1024, steps=200, batch=16, lr=5e-4, warmup=10, eval_n=20, inwindow=256,
            b_steps=20, b_batch=16, eval_batch=16, data="mix")  # GPU_CHECK_MODEL=tiny: the tiny base (its own mixture), 4x
SMOKE_SIZES = dict(window=256, target=1024, steps=2, batch=2, lr=5e-4, warmup=0, eval_n=1, inwindow=256,
                   b_steps=2, b_batch=2, eval_batch=2, data="mix")
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
SEED = 0
B_TIMEOUT_S = 180  # (b) is cut after this long (it needs well under a minute on an H100)
EVAL_SEED = 10_000  # evaluation examples use seeds >= 10 000 (training data never does)


# --------------------------------------------------------------------------- output
class Out:
    def __init__(self) -> None:
        if not os.environ.get("OUT"):
            sys.exit("gpu_check: set OUT to an empty folder for the results")
        self.dir = pathlib.Path(os.environ["OUT"])
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_file = (self.dir / "log.txt").open("a", buffering=1)
        self.results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                              "smoke": SMOKE, "phases": {}}

    def log(self, msg: str) -> None:
        line = f"[{time.time() - T0:6.1f}s] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")

    def save(self) -> None:
        self.results["elapsed_s"] = round(time.time() - T0, 1)
        (self.dir / "results.json").write_text(json.dumps(self.results, indent=2, default=str))
        (self.dir / "report.md").write_text(report(self.results))


def fail(out: Out, msg: str) -> None:
    out.log(f"FAILED: {msg}")
    out.results["fatal"] = msg
    out.save()
    sys.exit(1)


# --------------------------------------------------------------------------- 0. environment
def preflight(out: Out) -> dict:
    env = {"python": sys.version.split()[0]}
    missing = []
    for mod in ("torch", "numpy", "scipy", "transformers", "accelerate", "safetensors", "tokenizers", "tqdm",
                "yaml"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    env["missing"] = missing
    if missing:
        fail(out, f"missing Python packages {missing}: install creamviz with its dependencies first")
    import accelerate
    import torch
    import transformers

    env.update(torch=torch.__version__, transformers=transformers.__version__, accelerate=accelerate.__version__,
               cuda=torch.cuda.is_available())
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    elif not SMOKE:
        fail(out, "no CUDA device (set GPU_CHECK_SMOKE=1 for a CPU dry run)")
    out.log(f"environment: {env}")
    return env


# --------------------------------------------------------------------------- 1. the model
def prepare_model(out: Out) -> tuple[str, str]:
    """(model name for creamviz, label): SmolLM2-135M-Instruct from the creamviz cache, or the tiny
    model for a smoke run or ``GPU_CHECK_MODEL=tiny``."""
    name = os.environ.get("GPU_CHECK_MODEL", "tiny" if SMOKE else "smollm2-135m")
    if name == "tiny":
        return "tiny", "TINY: tiny byte-level model (N = 256), not SmolLM2" + (" (SMOKE, CPU)" if SMOKE else "")
    from creamviz.models import load_model

    try:
        load_model(name)  # the cached, verified copy (ValueError with the fetch command when absent)
    except ValueError as err:
        fail(out, str(err))
    return name, "SmolLM2-135M-Instruct (GGUF Q4_1 dequantized to fp32)"


# --------------------------------------------------------------------------- (b) FSDP memory / step time
def phase_b_child(args: dict) -> None:
    """Runs under ``accelerate launch --config_file configs/fsdp.yaml``: a short run with step timing."""
    import torch
    from transformers import TrainerCallback

    from creamviz.training import TrainConfig, train

    class StepClock(TrainerCallback):
        def __init__(self):
            self.times, self.t = [], None

        def on_step_begin(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a, **k):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self.t)

    clock = StepClock()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(**args["config"])
    result = train(cfg, callbacks=[clock])
    meta = json.loads((result.final_model / "creamviz_run.json").read_text()) if result.final_model else {}
    steady = sorted(clock.times[2:]) or sorted(clock.times)
    record = {"step_times_s": clock.times, "median_step_s": steady[len(steady) // 2],
              "tokens_per_step": cfg.batch_size * cfg.train_len,
              "losses": [r["loss"] for r in result.loss_log], "distributed": meta.get("distributed"),
              "lengths": meta.get("lengths")}
    record["tokens_per_s"] = record["tokens_per_step"] / record["median_step_s"]
    if torch.cuda.is_available():
        record["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        record["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    pathlib.Path(args["record"]).write_text(json.dumps(record, indent=2, default=str))


def phase_b(out: Out, model: str, sizes: dict, work: pathlib.Path) -> None:
    import torch

    from creamviz import memory

    run_dir = work / "b_fsdp"
    shutil.rmtree(run_dir, ignore_errors=True)
    from creamviz.lengths import Lengths

    lengths = Lengths.resolve(model, sizes["target"], train_len=sizes["window"], rope="yarn")
    factor = max(1.0, lengths.rope_factor)  # L / W (see phase_a)
    cfg = dict(model=model, sampler="cream", rope="yarn", factor=factor, train_len=sizes["window"],
               target_len=sizes["target"],
               steps=sizes["b_steps"], batch_size=sizes["b_batch"], lr=1e-5, warmup_steps=0, seed=SEED,
               save_every=10**6, bf16=torch.cuda.is_available(), gradient_checkpointing=True, progress=False,
               record_positions=False, out=str(run_dir))
    args_path, record_path = work / "b_args.json", work / "b_record.json"
    args_path.write_text(json.dumps({"config": cfg, "record": str(record_path)}))
    launcher = shutil.which("accelerate") or str(pathlib.Path(sys.executable).with_name("accelerate"))
    cmd = [launcher, "launch", "--config_file", str(REPO / "configs" / "fsdp.yaml"), "--num_processes", "1",
           "--num_machines", "1", "--dynamo_backend", "no", str(pathlib.Path(__file__).resolve()),
           "--phase-b", str(args_path)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out.log("(b) " + " ".join(cmd[:9]) + " ...")
    t = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: a timeout ends the workers too
    try:
        _, stderr = proc.communicate(timeout=B_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, stderr = proc.communicate()
        stderr += f"\ntimed out after {B_TIMEOUT_S} s"
    (out.dir / "b_stderr.txt").write_text(stderr[-200_000:])
    rec: dict = {"command": " ".join(cmd), "returncode": proc.returncode, "wall_s": round(time.time() - t, 1),
                 "config": cfg}
    if proc.returncode == 0 and record_path.is_file():
        rec.update(json.loads(record_path.read_text()))
    else:
        rec["error_tail"] = stderr[-3000:]
    shape = _shape(model)
    if shape is not None:
        est = memory.per_gpu_memory(shape, strategy="fsdp_full_shard", world_size=1, seq_len=sizes["window"],
                                    batch=sizes["b_batch"], checkpointing=True)
        rec["estimate_gb"] = {k: (v / memory.GB if isinstance(v, float) else v) for k, v in est.items()}
    out.results["phases"]["b_fsdp_1gpu"] = rec
    out.log(f"(b) rc={proc.returncode} median step {rec.get('median_step_s')} s, peak allocated "
            f"{rec.get('peak_allocated_gib')} GiB")
    out.save()


def _shape(model: str):
    from creamviz import memory
    from creamviz.models import load_config, load_model, n_params

    cfg = load_config(model)
    return memory.ModelShape(n_params=float(n_params(load_model(model))), hidden=cfg.hidden_size,
                             layers=cfg.num_hidden_layers, heads=cfg.num_attention_heads,
                             vocab=cfg.vocab_size, name=model)


# --------------------------------------------------------------------------- (a) CREAM vs PoSE at 32K
_WORKER_TOKENIZER = None


def _init_worker(model: str, repo: str) -> None:
    global _WORKER_TOKENIZER
    sys.path.insert(0, repo)
    from creamviz.models import load_tokenizer

    _WORKER_TOKENIZER = load_tokenizer(model)


def _make_example(task: str, length: int, depth: float, seed: int):
    from creamviz import tasks

    return tasks.GENERATORS[task](_WORKER_TOKENIZER, int(length), depth=float(depth), seed=int(seed))


def submit_examples(pool, task: str, length: int, n_per_depth: int, seed: int) -> list:
    """Futures of ``tasks.depth_sweep(task, tok, length, DEPTHS, n_per_depth, seed)``'s examples, in its order
    (each 32K-token prompt is fitted by repeated tokenization: seconds each, so they are built in worker
    processes while the GPU trains)."""
    return [pool.submit(_make_example, task, length, d, seed + i) for d in DEPTHS for i in range(n_per_depth)]


def phase_a(out: Out, model: str, sizes: dict, work: pathlib.Path) -> None:
    import torch

    from creamviz import evaluate, tasks
    from creamviz.lengths import Lengths
    from creamviz.models import load_model, load_tokenizer
    from creamviz.training import TrainConfig, train

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    big_n, big_l = sizes["window"], sizes["target"]
    lengths = Lengths.resolve(model, big_l, train_len=big_n, rope="yarn")
    # RoPE is interpolated from the model's window W to L (= L / N here, where N = W); a CPU smoke run of
    # SmolLM2 with L below its window keeps factor 1 (no interpolation worth the name)
    factor = max(1.0, lengths.rope_factor)
    rec = out.results["phases"].setdefault("a_cream_vs_pose", {})
    rec["setting"] = {"model": model, "N": big_n, "L": big_l, "rope": "yarn", "rope_factor": factor,
                      "steps": sizes["steps"], "batch": sizes["batch"], "lr": sizes["lr"],
                      "warmup": sizes["warmup"], "seed": SEED,
                      "data": ("creamviz corpus text" if sizes["data"] is None else sizes["data"]) + ", contiguous tokens",
                      "eval": f"kv_retrieval at {big_l} tokens, depths {DEPTHS}, {sizes['eval_n']} per depth, "
                              f"seeds from {EVAL_SEED}"}
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    # the paper's Lost-in-the-Middle prompt (UUID JSON through the chat template) for the real model when
    # creamviz.tasks has it; the tiny model (and an older checkout) use the hex key-value list
    task = "kv_uuid" if model != "tiny" and "kv_uuid" in getattr(tasks, "GENERATORS", {}) else "kv"
    max_new = 64 if task == "kv_uuid" else None  # a UUID is ~25 tokens; None: answer tokens + 2
    rec["setting"]["eval"] = f"{task} " + rec["setting"]["eval"].split(" ", 1)[1]
    workers = max(1, min(12, (os.cpu_count() or 2) - 2))
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init_worker,
                               initargs=(model, str(REPO)))
    t_build = time.time()
    tasks.GENERATORS[task](load_tokenizer(model), sizes["inwindow"], depth=0.5, seed=EVAL_SEED)  # sizes fit? fail now
    long_futures = submit_examples(pool, task, big_l, sizes["eval_n"], EVAL_SEED)
    short_futures = submit_examples(pool, task, sizes["inwindow"], sizes["eval_n"], EVAL_SEED)
    finals = {}
    for method in ("cream", "pose"):
        cfg = TrainConfig(model=model, sampler=method, rope="yarn", factor=factor, train_len=big_n, target_len=big_l,
                          steps=sizes["steps"], batch_size=sizes["batch"], lr=sizes["lr"],
                          warmup_steps=sizes["warmup"], seed=SEED, save_every=10**6, bf16=dev == "cuda", data=sizes["data"],
                          gradient_checkpointing=True, progress=False, out=str(work / f"a_{method}"))
        shutil.rmtree(cfg.out, ignore_errors=True)
        rec.setdefault("lengths", cfg.lengths().report(method, cfg.sampler_params))
        t = time.time()
        result = train(cfg)
        finals[method] = result.final_model
        rec[f"train_{method}"] = {"wall_s": round(time.time() - t, 1), "steps": result.steps_done,
                                  "loss_first": result.loss_log[0]["loss"], "loss_last": result.loss_log[-1]["loss"],
                                  "loss_log": [r["loss"] for r in result.loss_log]}
        out.log(f"(a) trained {method}: {rec[f'train_{method}']['wall_s']}s, loss "
                f"{rec[f'train_{method}']['loss_first']:.3f} -> {rec[f'train_{method}']['loss_last']:.3f}")
        out.save()
        if dev == "cuda":
            torch.cuda.empty_cache()
    tok = load_tokenizer(model)
    long_ex = [f.result() for f in long_futures]
    short_ex = [f.result() for f in short_futures]
    pool.shutdown()
    out.log(f"(a) {len(long_ex)} {task} prompts of {big_l} tokens and {len(short_ex)} of {sizes['inwindow']} ready "
            f"{time.time() - t_build:.1f}s after submission ({workers} workers; {long_ex[0].n_items} items at {big_l})")
    runs = [("cream", finals["cream"], None, long_ex), ("pose", finals["pose"], None, long_ex),
            ("base_yarn", model, ("yarn", factor), long_ex), ("base_in_window", model, None, short_ex)]
    rec.setdefault("eval", {})
    for label, path, rope, examples in runs:
        t = time.time()
        kw = {"rope": rope[0], "factor": rope[1]} if rope else {}
        m = load_model(path, dtype=dtype, **kw).to(dev)
        records = evaluate.evaluate_examples(m, tok, examples, batch_size=sizes["eval_batch"], max_new_tokens=max_new)
        curve = evaluate.depth_curve(records)
        rec["eval"][label] = {"length": examples[0].length, "depths": list(map(float, curve.depths)),
                              "accuracy": list(map(float, curve.accuracy)), "n": list(map(int, curve.n)),
                              "mean": float(sum(r["correct"] for r in records) / len(records)),
                              "wall_s": round(time.time() - t, 1),
                              "examples": [{k: r[k] for k in ("target_depth", "answer", "generated", "correct")
                                            if k in r} for r in records]}
        out.log(f"(a) eval {label}: accuracy by depth {[round(float(a), 2) for a in curve.accuracy]} "
                f"({time.time() - t:.1f}s)")
        del m
        if dev == "cuda":
            torch.cuda.empty_cache()
        out.save()


# --------------------------------------------------------------------------- report
def report(res: dict) -> str:
    lines = ["# GPU check", "", f"started {res.get('started')}, elapsed {res.get('elapsed_s')} s; "
             f"model: **{res.get('model_label')}**" + (" — SMOKE RUN (CPU, tiny sizes)" if res.get("smoke") else ""), ""]
    if res.get("environment"):
        lines += [f"environment: `{json.dumps(res['environment'])}`", ""]
    if res.get("fatal"):
        lines += [f"**stopped**: {res['fatal']}", ""]
    b = res["phases"].get("b_fsdp_1gpu")
    if b:
        lines += ["## (b) 1 GPU, configs/fsdp.yaml, --gradient-checkpointing --bf16", ""]
        if b.get("returncode") == 0:
            d = b.get("distributed") or {}
            est = b.get("estimate_gb") or {}
            lines += [f"- distributed: {d.get('type')} ({d.get('num_processes')} process), mixed precision "
                      f"{d.get('mixed_precision')}",
                      f"- {b['config']['batch_size']} x {b['config']['train_len']} tokens per step: median step "
                      f"{b['median_step_s']:.3f} s, {b['tokens_per_s']:.0f} tokens/s (steps: "
                      f"{', '.join(f'{t:.2f}' for t in b['step_times_s'])})",
                      f"- peak GPU memory: allocated {b.get('peak_allocated_gib', float('nan')):.2f} GiB, reserved "
                      f"{b.get('peak_reserved_gib', float('nan')):.2f} GiB; creamviz.memory estimate "
                      f"{est.get('gpu', float('nan')):.2f} GB (states {est.get('params', 0) + est.get('grads', 0) + est.get('optimizer', 0):.2f}, "
                      f"activations {est.get('activations', float('nan')):.2f})", ""]
        else:
            lines += [f"failed (rc {b.get('returncode')}):", "```", str(b.get("error_tail", ""))[-2000:], "```", ""]
    a = res["phases"].get("a_cream_vs_pose")
    if a:
        s = a["setting"]
        lines += [f"## (a) {s['model']}: N = {s['N']} -> L = {s['L']}, YaRN x{s['rope_factor']:g}, {s['steps']} steps x "
                  f"{s['batch']} windows, lr {s['lr']}, seed {s['seed']}", "",
                  f"data: {s['data']}; evaluation: {s['eval']}", ""]
        for m in ("cream", "pose"):
            t = a.get(f"train_{m}")
            if t:
                lines.append(f"- {m}: {t['steps']} steps in {t['wall_s']} s, loss {t['loss_first']:.3f} -> {t['loss_last']:.3f}")
        ev = a.get("eval", {})
        if ev:
            depths = next(iter(ev.values()))["depths"]
            lines += ["", "| model | tokens | " + " | ".join(f"{d:.0%}" for d in depths) + " | mean | n |",
                      "|---|---|" + "---|" * (len(depths) + 2)]
            for label, e in ev.items():
                lines.append(f"| {label} | {e['length']} | " + " | ".join(f"{x:.2f}" for x in e["accuracy"])
                             + f" | {e['mean']:.2f} | {sum(e['n'])} |")
            lines += ["", "Accuracy = share of prompts whose greedy answer contains the gold value; with n prompts per "
                      "depth a difference below about 2·sqrt(p(1-p)/n) is noise."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--phase-b":
        sys.path.insert(0, str(REPO))
        phase_b_child(json.loads(pathlib.Path(sys.argv[2]).read_text()))
        return 0
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Out()
    work = pathlib.Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu_check"))
    work.mkdir(parents=True, exist_ok=True)
    out.results["environment"] = preflight(out)
    out.save()
    model, label = prepare_model(out)
    out.results["model"], out.results["model_label"] = model, label
    sizes = dict(SMOKE_SIZES if SMOKE else (REAL if model != "tiny" else TINY))
    if model != "tiny":
        sizes["data"] = None  # the mixture is the tiny base's own
        sizes["inwindow"] = max(sizes["inwindow"], 512)  # the chat-template KV prompt needs ~250 tokens
    for key, env in (("steps", "GPU_CHECK_STEPS"), ("eval_n", "GPU_CHECK_EVAL_N")):
        if os.environ.get(env):
            sizes[key] = int(os.environ[env])
    out.results["sizes"] = sizes
    out.log(f"model {label}; sizes {sizes}")
    out.save()
    wanted = os.environ.get("GPU_CHECK_PHASES", "b,a").split(",")
    for name, phase in (("b", phase_b), ("a", phase_a)):
        if name not in wanted:
            continue
        try:
            phase(out, model, sizes, work)
        except Exception as err:  # noqa: BLE001 - report and go on to the next phase
            out.log(f"phase ({name}) failed: {type(err).__name__}: {err}")
            out.results["phases"][f"{name}_error"] = traceback.format_exc()[-4000:]
            out.save()
    out.log(f"done; results in {out.dir}/results.json and report.md")
    out.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
