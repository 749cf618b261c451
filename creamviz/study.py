"""The sampler-parameter study: arms x seeds of the miniature, with per-prompt records.

``run_study(StudyConfig(out=DIR))`` fine-tunes the shipped tiny base from N = 256 to L = 2048 once per
(arm, seed), each arm a position sampler with its parameters (CREAM's σ, middle placement, branch
probability; PoSE, RandPos, plain contiguous windows), with identical data, steps, learning rate, YaRN
interpolation and evaluation prompts. Seed s gives every arm the same training rows in the same
order (the data and the torch seed), so arms are compared *paired by seed*; every model answers the
same fixed prompts (paired by prompt): key-value retrieval by depth of the gold pair at L
(``creamviz/resources/eval/kv100_L2048``, 100 prompts per depth) and the RULER-style tasks (100 prompts each).

Runs execute in a fixed priority order (:meth:`StudyConfig.plan`): seeds ``0 .. seeds-1`` of every
arm (seed-major, the key arms CREAM and PoSE first), then the extra seeds of the key arms, pairwise.
A run whose ``result.json`` exists with the same configuration is reused, so an interrupted study
continues where it stopped; ``jobs > 1`` runs that many worker processes (one GPU or several CPU
cores), each taking the next run of the plan; ``deadline_s`` stops starting new runs after that many
seconds, so the finished set is a prefix of the plan, never a choice made from results.

Training data (``data="mix+ruler"``): the tiny base's pre-training mixture (text + the retrieval tasks
it knows, :class:`creamviz.data.MixtureDataset`) with a share ``ruler_share`` of rows replaced by
one in-window (<= N tokens) example of a RULER-style task, so the fine-tuned models know the new
formats and the evaluation at L measures their long-context use. ``data="mix"`` is the demo's mix.

The statistics of the records are in :mod:`creamviz.significance`; ``creamviz study --out DIR``
runs the plan and writes ``DIR/summary.json`` and ``DIR/records.csv.gz``.
"""

from __future__ import annotations

import functools
import gzip
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from creamviz import tasks
from creamviz.figures.style import display_name
from creamviz.significance import MIDDLE_DEPTHS
from creamviz.validation import check_bool, check_choice, check_int, check_real

__all__ = ["Arm", "ARMS", "KEY_ARMS", "DISPLAY_NAMES", "StudyConfig", "RulerMixDataset", "run_study", "run_one",
           "load_records", "write_records", "add_partial_scores", "summarize_dir", "shipped_summary",
           "nearest_arm", "results_table", "ruler_table", "markdown_table", "seed_block_differences", "replication_findings",
           "replication_verdict", "findings_table",
           "summarize_replication", "run_provenance", "main"]


@dataclass(frozen=True)
class Arm:
    """One arm of the study: a sampler and its parameters (the rest of the run is shared)."""

    name: str  # short id used in run directories and tables
    sampler: str  # cream | pose | randpos | contiguous
    params: dict = field(default_factory=dict)  # sampler parameters other than N, L
    label: str = ""  # what the arm varies, for tables and figures

    def record(self) -> dict:
        return {"sampler": self.sampler, **self.params}


ARMS = (
    Arm("cream", "cream", {"sigma": 3.0, "p_continuity": 0.5, "middle": "reference"}, "CREAM reference (σ = 3)"),
    Arm("pose", "pose", {}, "PoSE"),
    Arm("cream-sigma1", "cream", {"sigma": 1.0}, "CREAM σ = 1"),
    Arm("cream-sigma6", "cream", {"sigma": 6.0}, "CREAM σ = 6"),
    Arm("cream-uniform", "cream", {"middle": "uniform"}, "CREAM, uniform middle"),
    Arm("cream-truncnorm", "cream", {"middle": "truncnorm"}, "CREAM, truncated-normal middle"),
    Arm("cream-continuity", "cream", {"p_continuity": 1.0}, "CREAM, continuity only"),
    Arm("cream-relativity", "cream", {"p_continuity": 0.0}, "CREAM, relativity only"),
    Arm("randpos", "randpos", {}, "RandPos"),
    Arm("contiguous", "contiguous", {}, "plain YaRN fine-tuning (contiguous windows)"),
)
MAX_JOBS = 256  # worker processes: far more than one machine has cores or GPUs
KEY_ARMS = ("cream", "pose")  # the contrast that gets the extra seeds
ARM_BY_NAME = {a.name: a for a in ARMS}
BASE = "base"  # the untuned base with the same YaRN interpolation (a floor, no seeds)
DISPLAY_NAMES = {name: display_name(name) for name in (*ARM_BY_NAME, BASE)}  # arm id -> name (figures.style)
REPLICATION_FIRST_SEED = 1000  # the replication's seeds start here (the study used 0-29)


@dataclass
class StudyConfig:
    out: Path = Path("study_out")  # runs go to out/runs/<arm>-s<seed>
    base: str = "tiny"  # base checkpoint ("tiny" = creamviz/resources/tiny-base)
    target_len: int = 2048  # L; N is the base's window (256)
    rope: str = "yarn"  # RoPE interpolation of every model, the base included
    steps: int = 300  # optimizer steps per run (the demo's)
    lr: float = 5e-4  # peak learning rate (the demo's)
    batch_size: int = 8  # windows of N tokens per step
    data: str = "mix+ruler"  # "mix+ruler": pre-training mix + in-window RULER-style rows; "mix": the demo's
    ruler_share: float = 0.25  # share of training rows that are RULER-style examples (data="mix+ruler")
    arms: tuple[str, ...] = tuple(a.name for a in ARMS)  # arm names (see ARMS)
    seeds: int = 6  # seeds first_seed .. first_seed + seeds - 1 for every arm
    key_seeds: int = 6  # seeds for the key arms (CREAM, PoSE); >= seeds
    first_seed: int = 0  # first training seed (a replication starts at seeds never used before)
    kv_set: str = tasks.STUDY_KV_SET  # key-value set at L: creamviz/resources/eval/<kv_set>.jsonl
    kv_per_depth: int | None = None  # first prompts per depth of kv_set (None = all)
    kv_depths: tuple[float, ...] | None = None  # keep only these gold depths of kv_set (None = all)
    eval_ruler: bool = True  # evaluate the RULER-style sets too (False: the key-value set only)
    ruler_tasks: tuple[str, ...] = tasks.RULER_TASKS  # RULER-style tasks evaluated
    ruler_prompts: int | None = None  # first prompts of each RULER-style set (None = all 100)
    eval_batch_size: int = 8  # prompts per generation batch
    include_base: bool = True  # evaluate the untuned base too
    jobs: int = 1  # worker processes (1 = in this process)
    deadline_s: float | None = None  # start no run after this many seconds (None = no limit)
    progress: bool = True  # tqdm bars

    @classmethod
    def quick(cls, **overrides) -> StudyConfig:
        """A < 60 s version (two arms, two seeds, a few steps and prompts at L = 512) for tests."""
        base = dict(target_len=512, steps=3, lr=1e-3, batch_size=2, arms=("cream", "pose"), seeds=2,
                    key_seeds=2, kv_set="kv_L512", kv_per_depth=2, ruler_prompts=2, progress=False)
        return cls(**{**base, **overrides})

    @classmethod
    def replication(cls, **overrides) -> StudyConfig:
        """The pre-registered replication (docs/study.md): CREAM reference, PoSE, σ = 6 and uniform
        middle on fresh seeds 1000.. (never used before), the untuned base once; the study's steps,
        data rule and prompts, evaluated on the middle key-value prompts only (gold depth 25-75 %)."""
        base = dict(arms=("cream", "pose", "cream-sigma6", "cream-uniform"), seeds=8, key_seeds=8,
                    first_seed=REPLICATION_FIRST_SEED, kv_depths=MIDDLE_DEPTHS, eval_ruler=False)
        return cls(**{**base, **overrides})

    def validate(self) -> None:
        """ValueError naming the field, its value and the valid range (checks from creamviz.validation)."""
        for a in self.arms:
            check_choice("arms", a, ARM_BY_NAME)
        check_int("seeds", self.seeds, 1)
        check_int("key_seeds", self.key_seeds, self.seeds, hint=" (>= seeds)")
        check_int("first_seed", self.first_seed, 0)
        check_int("steps", self.steps, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("eval_batch_size", self.eval_batch_size, 1)
        check_int("jobs", self.jobs, 1, MAX_JOBS)
        if self.deadline_s is not None:
            check_real("deadline_s", self.deadline_s, 0.0, low_open=True, hint=" seconds (or None: no limit)")
        check_choice("data", self.data, ("mix", "mix+ruler"))
        check_real("ruler_share", self.ruler_share, 0.0, 1.0)
        for t in self.ruler_tasks:
            check_choice("ruler_tasks", t, tasks.RULER_TASKS)
        if self.kv_depths is not None:
            for d in self.kv_depths:
                check_real("kv_depths", d, 0.0, 1.0)
        check_bool("eval_ruler", self.eval_ruler)

    def plan(self) -> list[tuple[str, int]]:
        """(arm, seed) in execution order: seed-major over every arm (key arms first), then the key
        arms' extra seeds in pairs. A prefix of this list is what any deadline leaves."""
        key = [a for a in KEY_ARMS if a in self.arms]
        side = [a for a in self.arms if a not in key]
        s0 = self.first_seed
        jobs = [(a, s) for s in range(s0, s0 + self.seeds) for a in (*key, *side)]
        jobs += [(a, s) for s in range(s0 + self.seeds, s0 + self.key_seeds) for a in key]
        return jobs

    def record(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


# --------------------------------------------------------------------------- training data
RULER_MIN_BUDGET = {"multikey_niah": 200, "multivalue_niah": 176, "variable_tracking": 200, "kv_multiquery": 72}


class RulerMixDataset(torch.utils.data.Dataset):
    """The pre-training mix with a share of rows replaced by one in-window RULER-style example.

    Row ``i``: a draw from ``default_rng([seed, 7, i])`` decides (probability ``ruler_share``) whether
    it is a RULER-style example (task uniform over ``ruler_tasks``, budget uniform in
    ``[min budget, length]``, haystack a slice of the *training* corpus) with loss on the answer and
    the closing eos only, or row ``i`` of :class:`creamviz.data.MixtureDataset`. Rows are dicts
    ``{"input_ids", "labels", "sample_index"}`` (RULER rows may be shorter than ``length``: the
    collator pads them)."""

    def __init__(self, tokenizer, length: int, n: int, seed: int, *, ruler_share: float = 0.25,
                 ruler_tasks: tuple[str, ...] = tasks.RULER_TASKS) -> None:
        from creamviz.data import MixtureDataset
        from creamviz.models import FastByteTokenizer

        self.mix = MixtureDataset(tokenizer, length, n, seed)
        self.tok = FastByteTokenizer() if type(tokenizer).__name__ == "ByT5Tokenizer" else tokenizer
        self.length, self.n, self.seed = int(length), int(n), int(seed)
        self.ruler_share, self.ruler_tasks = float(ruler_share), tuple(ruler_tasks)
        self.text = "\n".join(tasks.load_corpus("train"))

    def __len__(self) -> int:
        return self.n

    def example(self, i: int) -> tasks.TaskExample | None:
        """The RULER-style example of row ``i``, or None for a mixture row."""
        rng = np.random.default_rng([self.seed, 7, i])
        if rng.random() >= self.ruler_share or not self.ruler_tasks:
            return None
        task = self.ruler_tasks[int(rng.integers(len(self.ruler_tasks)))]
        budget = int(rng.integers(min(RULER_MIN_BUDGET[task], self.length), self.length, endpoint=True))
        seed = int(rng.integers(0, 10_000))  # eval sets use seeds >= 30 000
        kw = {}
        if task != "kv_multiquery":
            start = int(rng.integers(0, len(self.text) - 8 * budget))
            kw["haystack"] = [self.text[start:start + 8 * budget]]
        return tasks.RULER_GENERATORS[task](self.tok, budget - 1, seed=seed, **kw)  # -1: the eos

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        ex = self.example(i)
        if ex is None:
            return self.mix[i]
        answer = self.tok(ex.answer, add_special_tokens=False)["input_ids"] + [self.tok.eos_token_id]
        ids = torch.tensor(ex.prompt_ids + answer, dtype=torch.long)
        labels = ids.clone()
        labels[:len(ex.prompt_ids)] = -100
        return {"input_ids": ids, "labels": labels, "sample_index": i}


# --------------------------------------------------------------------------- evaluation prompts
def kv_prompt_ids(cfg: StudyConfig, kv: list[tasks.TaskExample]) -> list[int]:
    """Indices into the whole key-value set ``kv`` of the prompts ``cfg`` keeps (the first
    ``kv_per_depth`` per depth, at ``kv_depths``): the prompt ids of the records, the same for a
    prompt in every configuration."""
    seen: dict[float, int] = {}
    kept = []
    for i, ex in enumerate(kv):
        d = round(float(ex.target_depth if ex.target_depth is not None else ex.depth), 6)
        seen[d] = seen.get(d, 0) + 1
        if cfg.kv_per_depth is not None and seen[d] > cfg.kv_per_depth:
            continue
        if cfg.kv_depths is not None and not np.isclose(d, cfg.kv_depths).any():
            continue
        kept.append(i)
    return kept


def study_examples(cfg: StudyConfig, tokenizer) -> dict[str, list[tasks.TaskExample]]:
    """The fixed prompts every model answers: ``kv`` (the key-value set by depth) and each RULER-style
    task (the shipped set at L = 2048, or generated with the same seeds at another L)."""
    kv = tasks.load_eval_set(cfg.kv_set, tokenizer)
    out = {"kv": [kv[i] for i in kv_prompt_ids(cfg, kv)]}
    for t, task in enumerate(tasks.RULER_TASKS):
        if task not in cfg.ruler_tasks or not cfg.eval_ruler:
            continue
        name = tasks.ruler_eval_set_name(task, cfg.target_len)
        if (tasks.EVAL_DIR / f"{name}.jsonl").is_file():
            ex = tasks.load_eval_set(name, tokenizer)
        else:  # same seeds as build_ruler_eval_sets, at this L
            ex = [tasks.RULER_GENERATORS[task](tokenizer, cfg.target_len, seed=30_000 + 1000 * t + i)
                  for i in range(cfg.ruler_prompts or 100)]
        out[task] = ex[:cfg.ruler_prompts] if cfg.ruler_prompts is not None else ex
    return out


def _evaluate(model, tokenizer, examples: dict[str, list], batch_size: int, kv_ids: list[int]) -> list[dict]:
    from creamviz import evaluate

    records = []
    for name, exs in examples.items():
        recs = evaluate.evaluate_examples(model, tokenizer, exs, batch_size=batch_size)
        ids = kv_ids if name == "kv" else range(len(exs))
        for i, ex, r in zip(ids, exs, recs, strict=True):
            depth = ex.target_depth if ex.target_depth is not None else ex.depth
            records.append({"set": name, "prompt": i, "depth": round(float(depth), 6),
                            "correct": int(r["correct"]), "generated": r["generated"],
                            "mode": r["mode"], "scorer": r["scorer"], "budget": r["budget"]})
    return records


# --------------------------------------------------------------------------- one run
def _train_config(cfg: StudyConfig, arm: Arm, seed: int, out: Path):
    from creamviz.training import TrainConfig

    return TrainConfig(model=cfg.base, sampler=arm.sampler, sampler_params=dict(arm.params), rope=cfg.rope,
                       target_len=cfg.target_len, steps=cfg.steps, lr=cfg.lr, batch_size=cfg.batch_size,
                       seed=seed, save_every=cfg.steps, keep_checkpoints=1, out=str(out), data=cfg.data,
                       progress=False, record_positions=False)


def _run_key(cfg: StudyConfig, arm_name: str) -> dict:
    """What a finished run must match to be reused (the shared setup and the arm's sampler)."""
    keys = ("base", "target_len", "rope", "steps", "lr", "batch_size", "data", "ruler_share", "kv_set",
            "kv_per_depth", "ruler_tasks", "ruler_prompts", "eval_batch_size")
    keys += tuple(k for k in ("kv_depths", "eval_ruler") if getattr(cfg, k) != StudyConfig.__dataclass_fields__[k].default)
    out = {k: cfg.record()[k] for k in keys}
    out["arm"] = BASE if arm_name == BASE else ARM_BY_NAME[arm_name].record()
    return json.loads(json.dumps(out))


def run_dir(cfg: StudyConfig, arm_name: str, seed: int | None) -> Path:
    return Path(cfg.out) / "runs" / (BASE if arm_name == BASE else f"{arm_name}-s{seed}")


@functools.cache
def code_version() -> dict:
    """The code this process runs: ``{"commit", "dirty"}`` of the git checkout in the working
    directory when the process first asked (None when it is not a checkout), and the package version."""
    import importlib.metadata
    import subprocess

    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    try:
        version = importlib.metadata.version("creamviz")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"commit": commit, "dirty": None if status is None else bool(status), "creamviz": version}


def environment(device: str) -> dict:
    """Provenance of one run: device, library versions, torch threads, code version."""
    import platform

    import transformers

    return {"device": torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.machine()})",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "torch_threads": torch.get_num_threads(), **code_version()}


def loss_summary(loss_log: list[dict]) -> dict:
    """The run's training loss: first and final step, means over the first and last tenth of the
    steps, and the whole per-step curve (4 decimals)."""
    losses = np.array([r["loss"] for r in loss_log], dtype=float)
    if losses.size == 0:
        return {"steps": 0}
    tenth = max(1, losses.size // 10)
    return {"steps": int(losses.size), "first": float(losses[0]), "final": float(losses[-1]),
            "mean_first_tenth": float(losses[:tenth].mean()), "mean_last_tenth": float(losses[-tenth:].mean()),
            "curve": [round(float(x), 4) for x in losses]}


def _with_stable_prompt_ids(cfg: StudyConfig, res: dict) -> dict:
    """Results written before prompt ids were indices into the whole key-value set numbered the kv
    prompts 0.. within the kept subset: map them through :func:`kv_prompt_ids`."""
    if res.get("prompt_ids") == "eval set" or (cfg.kv_per_depth is None and cfg.kv_depths is None):
        return res
    from creamviz.models import load_tokenizer

    ids = kv_prompt_ids(cfg, tasks.load_eval_set(cfg.kv_set, load_tokenizer(cfg.base)))
    records = [{**r, "prompt": ids[r["prompt"]]} if r["set"] == "kv" else r for r in res["records"]]
    return {**res, "records": records, "prompt_ids": "eval set"}


def read_result(path: Path) -> dict:
    """A run's ``result.json``; a file that does not parse is named in the error."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a complete result file ({e}); delete it to rerun that run") from None


def base_model(cfg: StudyConfig):
    """The untuned base with the study's RoPE interpolation to L (the floor every arm is compared with)."""
    from creamviz.lengths import Lengths

    return Lengths.resolve(cfg.base, cfg.target_len, rope=cfg.rope).load_model(cfg.base)


def run_one(cfg: StudyConfig, arm_name: str, seed: int | None, *, worker: int = 0) -> dict:
    """Train (unless ``arm_name == "base"``) and evaluate one run; reuse it when already done.
    Returns the run's result: ``{"arm", "seed", "key", "train_seconds", "eval_seconds",
    "final_loss", "loss", "device", "environment", "worker", "started", "wall_seconds",
    "records": [{"set", "prompt", "depth", "correct", "generated"}]}`` (``worker``: the worker
    process that ran it, ``loss``: :func:`loss_summary`)."""
    from creamviz.lengths import Lengths
    from creamviz.models import load_model, load_tokenizer

    out = run_dir(cfg, arm_name, seed)
    done = out / "result.json"
    key = _run_key(cfg, arm_name)
    if done.is_file():
        res = read_result(done)
        if res.get("key") == key:
            return _with_stable_prompt_ids(cfg, res)
    wall_start, started = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if out.exists():  # stale or interrupted: start over
        shutil.rmtree(out)
    out.mkdir(parents=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = load_tokenizer(cfg.base)
    train_seconds, final_loss, loss = 0.0, None, None
    start = time.perf_counter()
    lengths = Lengths.resolve(cfg.base, cfg.target_len, rope=cfg.rope)  # N = W, L, factor L / W
    if arm_name == BASE:
        model = lengths.load_model(cfg.base)
    else:
        from creamviz.training import train

        tcfg = _train_config(cfg, ARM_BY_NAME[arm_name], seed, out / "train")
        dataset = None
        if cfg.data == "mix+ruler":
            dataset = RulerMixDataset(tokenizer, lengths.train_len, cfg.steps * cfg.batch_size, seed,
                                      ruler_share=cfg.ruler_share, ruler_tasks=cfg.ruler_tasks)
        result = train(tcfg, dataset=dataset, lengths=lengths)
        train_seconds = time.perf_counter() - start
        final_loss = float(result.loss_log[-1]["loss"]) if result.loss_log else None
        loss = loss_summary(result.loss_log)
        model = load_model(result.final_model)
    model.to(device).eval()
    start = time.perf_counter()
    with torch.no_grad():
        kv_ids = kv_prompt_ids(cfg, tasks.load_eval_set(cfg.kv_set, tokenizer))
        records = _evaluate(model, tokenizer, study_examples(cfg, tokenizer), cfg.eval_batch_size, kv_ids)
    res = {"arm": arm_name, "seed": seed, "key": key, "train_seconds": round(train_seconds, 2),
           "eval_seconds": round(time.perf_counter() - start, 2), "final_loss": final_loss, "loss": loss,
           "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
           "torch_threads": torch.get_num_threads(), "environment": environment(device), "worker": worker,
           "started": started, "wall_seconds": round(time.perf_counter() - wall_start, 2),
           "prompt_ids": "eval set", "records": records}
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(res))
    tmp.replace(done)  # atomic: a result file is always complete
    return res


# --------------------------------------------------------------------------- the plan
def _worker(worker: int, cfg_dict: dict, jobs: list, counter, stop_at: float | None) -> None:
    torch.set_num_threads(1)
    code_version()
    cfg = StudyConfig(**{**cfg_dict, "out": Path(cfg_dict["out"])})
    while True:
        with counter.get_lock():
            i = counter.value
            counter.value += 1
        if i >= len(jobs) or (stop_at is not None and time.time() > stop_at):
            return
        arm, seed = jobs[i]
        t = time.perf_counter()
        run_one(cfg, arm, seed, worker=worker)
        print(f"[study] {arm} seed {seed} done in {time.perf_counter() - t:.0f} s", flush=True)


def run_study(cfg: StudyConfig) -> list[dict]:
    """Run (or reuse) every run of the plan, the base first; returns the finished runs' results."""
    cfg.validate()
    code_version()  # the checkout as this process loaded it, before anything can change it
    cfg.out = Path(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "study_config.json").write_text(json.dumps(cfg.record(), indent=2))
    stop_at = None if cfg.deadline_s is None else time.time() + cfg.deadline_s
    jobs = ([(BASE, None)] if cfg.include_base else []) + cfg.plan()
    if cfg.jobs == 1:
        for arm, seed in tqdm(jobs, desc="study runs", disable=not cfg.progress):
            if stop_at is not None and time.time() > stop_at:
                break
            run_one(cfg, arm, seed)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # CUDA-safe
        counter = ctx.Value("i", 0)
        procs = [ctx.Process(target=_worker, args=(w, cfg.record(), jobs, counter, stop_at)) for w in range(cfg.jobs)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return collect_results(cfg)


def collect_results(cfg: StudyConfig) -> list[dict]:
    """Results of the finished runs of ``cfg`` (matching configuration), in plan order."""
    out = []
    jobs = ([(BASE, None)] if cfg.include_base else []) + cfg.plan()
    for arm, seed in jobs:
        f = run_dir(cfg, arm, seed) / "result.json"
        if f.is_file():
            res = read_result(f)
            if res.get("key") == _run_key(cfg, arm):
                out.append(_with_stable_prompt_ids(cfg, res))
    return out


# --------------------------------------------------------------------------- records on disk
RECORD_COLUMNS = ("arm", "seed", "set", "prompt", "depth", "correct", "generated")


def write_records(results: list[dict], path: Path | str) -> Path:
    """Per-prompt records of every run as a gzip'd CSV (columns RECORD_COLUMNS; seed empty for the base)."""
    import csv
    import io

    path = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RECORD_COLUMNS)
    for res in results:
        for r in res["records"]:
            w.writerow([res["arm"], "" if res["seed"] is None else res["seed"], r["set"], r["prompt"],
                        r["depth"], r["correct"], r["generated"]])
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write(buf.getvalue())
    return path


def load_records(path: Path | str):
    """The per-prompt records as a pandas DataFrame (columns RECORD_COLUMNS; seed -1 for the base)."""
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, dtype={"generated": str, "seed": str})
    df["seed"] = pd.to_numeric(df["seed"].replace("", -1)).astype(int)
    return df


def add_partial_scores(df, examples: dict[str, list]):
    """Add column ``partial``: the share of required strings present (RULER's partial credit) for the
    RULER-style sets, ``correct`` for the others. ``examples``: :func:`study_examples` (the answers)."""
    answers = {name: [ex.answer for ex in exs] for name, exs in examples.items()}
    df = df.copy()
    df["partial"] = [tasks.ruler_partial_score(s, g, answers[s][p]) if s in tasks.RULER_TASKS else float(c)
                     for s, p, g, c in zip(df["set"], df["prompt"], df["generated"], df["correct"], strict=True)]
    return df


def arm_table() -> dict[str, dict]:
    """Every arm's sampler parameters and display name, in table order (the input of
    :func:`creamviz.significance.summarize`)."""
    return {a.name: {"params": a.record(), "label": a.label} for a in ARMS}


def provenance(results: list[dict]) -> dict:
    """Where and how the runs ran: devices, worker processes that ran them (``jobs``: how many
    distinct ones), library versions and code commits, median train / eval seconds per run."""
    trained = [r for r in results if r["arm"] != BASE]
    envs = [r.get("environment") or {} for r in results]
    return {"n_runs": len(results), "devices": sorted({r["device"] for r in results}),
            "jobs": len({r["worker"] for r in results if "worker" in r}) or None,
            "torch": sorted({e["torch"] for e in envs if "torch" in e}),
            "transformers": sorted({e["transformers"] for e in envs if "transformers" in e}),
            "commits": sorted({e["commit"] for e in envs if e.get("commit")}),
            "median_train_seconds": float(np.median([r["train_seconds"] for r in trained])) if trained else None,
            "median_eval_seconds": float(np.median([r["eval_seconds"] for r in results])) if results else None}


def summarize_dir(cfg: StudyConfig, results: list[dict], *, n_resamples: int = 10_000) -> dict:
    """Write ``records.csv.gz`` and ``summary.json`` of finished runs into ``cfg.out``; returns the summary."""
    from creamviz import significance
    from creamviz.models import load_tokenizer

    write_records(results, Path(cfg.out) / "records.csv.gz")
    df = add_partial_scores(load_records(Path(cfg.out) / "records.csv.gz"), study_examples(cfg, load_tokenizer(cfg.base)))
    from creamviz.lengths import model_window

    config = {**cfg.record(), "train_len": model_window(cfg.base), "provenance": provenance(results)}
    summary = significance.summarize(df, config, arm_table(), base=BASE, seed=0, n_resamples=n_resamples)
    (Path(cfg.out) / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary


# --------------------------------------------------------------------------- the replication
REPLICATED = {  # contrast -> what the original study claimed (the findings the replication tests)
    "cream-vs-pose": "CREAM reference − PoSE", "cream-uniform-vs-cream": "uniform middle − CREAM reference",
    "cream-sigma6-vs-cream": "σ = 6 − CREAM reference",
}


def replication_verdict(original_diff: float, ci95, p_holm: float) -> str:
    """The pre-registered verdict (docs/study.md): "holds" when Holm p < 0.05 with the original sign;
    "does not hold" when Holm p < 0.05 with the opposite sign or the replication's 95 % CI excludes
    the original estimate; else "undecided at this n"."""
    lo, hi = ci95
    same_sign = np.sign(lo + hi) == np.sign(original_diff)  # the side of 0 the CI's centre is on
    if p_holm < 0.05 and same_sign:
        return "holds"
    if (p_holm < 0.05 and not same_sign) or not lo <= original_diff <= hi:
        return "does not hold"
    return "undecided at this n"


def replication_findings(original_df, replication_df, original: dict, replication: dict, *,
                         n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Per replicated finding (:data:`REPLICATED`): the original and replication estimates, the
    pre-registered verdict, and the pooled estimate over both sets of seeds (paired by seed, 95 %
    two-level bootstrap CI; an estimate, not a new test). ``*_df``: record tables; ``original`` /
    ``replication``: their summaries (the replication's Holm family is the three contrasts)."""
    import pandas as pd

    from creamviz.significance import arm_matrix, paired_contrast

    pooled_df = pd.concat([original_df, replication_df], ignore_index=True)
    out = {}
    for j, (name, label) in enumerate(REPLICATED.items()):
        o, r = original["contrasts"][name], replication["contrasts"].get(name)
        entry = {"label": label, "original": {k: o[k] for k in ("diff", "ci95", "p_value", "n_seeds")}}
        if r is None:
            entry.update(replication=None, verdict="not measured (fewer than 2 paired seeds finished)")
        else:
            entry["replication"] = {k: r[k] for k in ("diff", "ci95", "p_value", "p_holm", "n_seeds")}
            entry["verdict"] = replication_verdict(o["diff"], r["ci95"], r["p_holm"])
        a, b = o["arm"], o["reference"]
        seeds = sorted(set(arm_matrix(pooled_df, a)[0]) & set(arm_matrix(pooled_df, b)[0]))
        c = paired_contrast(arm_matrix(pooled_df, a, seeds=seeds)[1], arm_matrix(pooled_df, b, seeds=seeds)[1],
                            n_resamples=n_resamples, seed=seed + j)
        entry["pooled"] = {"diff": c["diff"], "ci95": c["ci95"], "n_seeds": c["n_seeds"]}
        out[name] = entry
    return out


def run_provenance(results: list[dict]) -> list[dict]:
    """Per run: everything in its result but the per-prompt records (and the reuse key)."""
    return [{k: v for k, v in r.items() if k not in ("records", "key")} for r in results]


def summarize_replication(cfg: StudyConfig, results: list[dict], dest: Path | str, *,
                          n_resamples: int = 10_000) -> dict:
    """Write the replication's ``records.csv.gz``, ``runs.jsonl`` (per-run provenance: device,
    versions, commit, worker, wall time, training-loss summary) and ``summary.json`` (the study's
    summary with Holm over the three replicated contrasts, plus ``findings``: the pre-registered
    verdicts and pooled estimates against the shipped original) into ``dest``; returns the summary."""
    from creamviz import significance
    from creamviz.resources import resource_path
    from creamviz.training import model_window

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    write_records(results, dest / "records.csv.gz")
    with (dest / "runs.jsonl").open("w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in run_provenance(results))
    df = load_records(dest / "records.csv.gz")
    finished = {a: sorted(r["seed"] for r in results if r["arm"] == a) for a in cfg.arms}
    config = {**cfg.record(), "train_len": model_window(cfg.base), "provenance": provenance(results),
              "seeds_finished": finished, "runs_planned": len(cfg.plan()) + int(cfg.include_base)}
    summary = significance.summarize(df, config, arm_table(), base=BASE, holm_family=list(REPLICATED),
                                     seed=0, n_resamples=n_resamples)
    original_df = load_records(resource_path("study", "records.csv.gz"))
    summary["findings"] = significance.json_safe(replication_findings(
        original_df, df, shipped_summary(), summary, n_resamples=n_resamples))
    (dest / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    return summary


def findings_table(findings: dict) -> list[dict]:
    """:func:`replication_findings` as rows for people (points, one decimal)."""
    from creamviz.significance import _points

    def est(e):
        return f"{_points(e['diff'])} [{_points(e['ci95'][0])}, {_points(e['ci95'][1])}] ({e['n_seeds']} seeds)"

    rows = []
    for f in findings.values():
        r = f["replication"]
        rows.append({"finding": f["label"], "replication (points, 95 % CI)": est(r) if r else "—",
                     "p (Holm, 3)": f"{r['p_holm']:.2g}" if r else "—", "verdict": f["verdict"],
                     "original": est(f["original"]), "pooled": est(f["pooled"])})
    return rows


# --------------------------------------------------------------------------- the shipped study
@functools.cache
def shipped_summary(*parts: str) -> dict | None:
    """A shipped study summary, read once; None when absent. ``shipped_summary()``: the original
    study (``creamviz/resources/study/summary.json``); ``shipped_summary("replication")``: the
    replication on fresh seeds."""
    from creamviz.resources import resource_path

    path = resource_path("study", *parts, "summary.json")
    return json.loads(path.read_text()) if path.is_file() else None


def nearest_arm(method: str, train_len: int, target_len: int, *, k=None, mu=None, sigma=None,
                p_continuity=None, middle=None, summary: dict | None = None, max_distance: float = 0.34) -> dict:
    """The measured study arm nearest to these sampler parameters (N = ``train_len``,
    L = ``target_len``), or none near.

    Arms of another sampler or another factor L / N are never near, nor is CREAM with k or μ other
    than their defaults (the :class:`~creamviz.samplers.CreamSampler` declarations: k = 4·L/N,
    μ = 1 + L/N). Among the CREAM arms the distance is ``|σ − σ_arm| / 3 + |p − p_arm| / 0.5 +
    [middle differs]``; near means at most ``max_distance`` (σ within 1, or p_continuity within
    0.17, of an arm). Unset parameters take their declared defaults. ``summary``: default the
    shipped one. Returns ``{"arm": name or None, "distance": d, "text": one sentence}``."""
    from creamviz.samplers import CreamSampler

    summary = shipped_summary() if summary is None else summary
    if summary is None:
        return {"arm": None, "distance": None, "text": "No study summary shipped (creamviz/resources/study/summary.json)."}
    cfg = summary.get("config", {})
    study_n, study_l = int(cfg.get("train_len", 256)), int(cfg.get("target_len", 2048))
    where = f"N = {study_n} → L = {study_l}"
    factor = target_len / train_len
    if not np.isclose(factor, study_l / study_n):
        return {"arm": None, "distance": None,
                "text": f"No study arm is near: the study ran at factor L/N = {study_l / study_n:g} ({where}), "
                        f"these parameters have {factor:g}."}
    declared = {p.name: p for p in CreamSampler.parameters}
    defaults = {name: declared[name].default for name in ("sigma", "p_continuity", "middle")}
    given = {"sigma": sigma, "p_continuity": p_continuity, "middle": middle}
    given = {name: defaults[name] if v is None else v for name, v in given.items()}
    if method == "cream" and any(v is not None and not np.isclose(v, declared[name].auto(train_len, target_len))
                                 for name, v in (("k", k), ("mu", mu))):
        return {"arm": None, "distance": None, "text": "No study arm is near: the study used the default k "
                f"({declared['k'].auto_text}) and μ ({declared['mu'].auto_text})."}
    best, best_d = None, np.inf
    for name, arm in summary.get("arms", {}).items():
        params = dict(arm.get("params", {}))
        if params.pop("sampler", None) != method:
            continue
        if method == "cream":
            p = {**defaults, **params}
            d = (abs(given["sigma"] - p["sigma"]) / 3 + abs(given["p_continuity"] - p["p_continuity"]) / 0.5
                 + float(given["middle"] != p["middle"]))
        else:
            d = 0.0
        if d < best_d:
            best, best_d = name, d
    if best is None or best_d > max_distance:
        extra = f" (nearest: {DISPLAY_NAMES.get(best, best)}, distance {best_d:.2f})" if best is not None else ""
        return {"arm": None, "distance": None if best is None else float(best_d),
                "text": f"No study arm is near these parameters{extra}."}
    a = summary["arms"][best]
    text = (f"Nearest study arm: {DISPLAY_NAMES.get(best, best)} ({where}, distance {best_d:.2f}): middle key-value "
            f"accuracy {a['mean'] * 100:.1f} % [95 % CI {a['ci95'][0] * 100:.1f}, {a['ci95'][1] * 100:.1f}], "
            f"{len(a['seeds'])} seeds")
    contrasts = summary.get("contrasts", {})
    c = contrasts.get(f"{best}-vs-cream") or (contrasts.get("cream-vs-pose") if best == "pose" else None)
    if c is not None:
        sign = -1 if best == "pose" else 1  # cream-vs-pose is CREAM − PoSE
        lo, hi = sorted((sign * c["ci95"][0], sign * c["ci95"][1]))
        text += (f"; vs {DISPLAY_NAMES['cream']} {sign * c['diff'] * 100:+.1f} points "
                 f"[{lo * 100:+.1f}, {hi * 100:+.1f}], p = {c['p_value']:.2g}")
    return {"arm": best, "distance": float(best_d), "text": text + "."}


SEED_BLOCKS = {  # seed block label -> first and last seed: how the original study's seeds were run
    "seeds 0–9": (0, 9), "seeds 10–19": (10, 19), "seeds 20–29": (20, 29),
    "replication (1000+)": (REPLICATION_FIRST_SEED, 10**9),
}


def seed_block_differences(summaries: list[dict], contrasts: dict[str, str] | None = None) -> dict[str, dict]:
    """Per-seed paired differences (points) of contrasts ``{"A-vs-B": label}`` over one or more
    summaries (e.g. the original and the replication), each seed in its :data:`SEED_BLOCKS` block,
    with each block's mean and size: the input of :func:`creamviz.figures.fig_seed_blocks`."""
    contrasts = contrasts or {"cream-vs-pose": "CREAM reference − PoSE",
                              "cream-sigma6-vs-cream": "CREAM σ = 6 − CREAM reference",
                              "cream-uniform-vs-cream": "CREAM uniform middle − CREAM reference"}
    out = {}
    for key, label in contrasts.items():
        a, b = key.split("-vs-")
        seeds, diff = [], []
        for s in summaries:
            if a not in s["arms"] or b not in s["arms"]:
                continue
            acc_a = dict(zip(s["arms"][a]["seeds"], s["arms"][a]["middle_acc"], strict=True))
            acc_b = dict(zip(s["arms"][b]["seeds"], s["arms"][b]["middle_acc"], strict=True))
            for seed in sorted(set(acc_a) & set(acc_b)):
                seeds.append(seed)
                diff.append((acc_a[seed] - acc_b[seed]) * 100)
        block = [next(name for name, (lo, hi) in SEED_BLOCKS.items() if lo <= seed <= hi) for seed in seeds]
        means = {}
        for name in dict.fromkeys(block):
            vals = [d for d, bb in zip(diff, block, strict=True) if bb == name]
            means[name] = {"mean": float(np.mean(vals)), "n": len(vals)}
        out[label] = {"seeds": seeds, "diff": diff, "block": block, "block_means": means}
    return out


def _p_text(p) -> str:
    return "" if p is None else f"{p:.2g}"


def results_table(summary: dict, reference: str = "cream", key_pair: tuple[str, str] = ("cream", "pose")) -> list[dict]:
    """The study's results as rows for people (display names; accuracy and differences in points,
    one decimal; p to two significant digits): per arm its seeds, middle accuracy with 95 % CI, and
    its difference to the reference arm with CI, p and Holm-adjusted p (the key pair's contrast is
    turned around for the second arm: PoSE − CREAM). Columns as in docs/study.md's tables."""
    from creamviz.significance import _points

    rows = []
    for name, a in summary["arms"].items():
        row = {"arm": DISPLAY_NAMES.get(name, name), "seeds": len(a["seeds"]), "middle acc %": _points(a["mean"], False),
               "95 % CI": f"[{_points(a['ci95'][0], False)}, {_points(a['ci95'][1], False)}]",
               "vs CREAM (points)": "", "95 % CI (points)": "", "p": "", "p (Holm)": ""}
        c, sign = summary["contrasts"].get(f"{name}-vs-{reference}"), 1
        if c is None and name == key_pair[1] and reference == key_pair[0]:
            c, sign = summary["contrasts"].get(f"{key_pair[0]}-vs-{key_pair[1]}"), -1
        if c is not None:
            lo, hi = sorted(sign * x for x in c["ci95"])
            row.update({"vs CREAM (points)": _points(sign * c["diff"]), "95 % CI (points)": f"[{_points(lo)}, {_points(hi)}]",
                        "p": _p_text(c["p_value"]), "p (Holm)": _p_text(c.get("p_holm"))})
        rows.append(row)
    return rows


RULER_NAMES = {"multikey_niah": "multi-key NIAH", "multivalue_niah": "multi-value NIAH",
               "variable_tracking": "variable tracking", "kv_multiquery": "multi-query key-value"}  # task -> display name


def ruler_table(summary: dict) -> list[dict]:
    """RULER-style task accuracy per arm (and the base), in % with one decimal: "all required
    strings / partial credit" per task. Empty when the summary has no RULER-style sets."""
    arms = summary["arms"]
    tasks_ = list(next(iter(arms.values())).get("tasks", {}))
    if not tasks_:
        return []
    rows = []
    for name, a in arms.items():
        row = {"arm": DISPLAY_NAMES.get(name, name), "seeds": len(a["seeds"])}
        for t in tasks_:
            e = a["tasks"][t]
            part = e.get("partial_mean")
            row[f"{RULER_NAMES.get(t, t)} % (all / partial)"] = (f"{e['mean'] * 100:.1f} / "
                                                               f"{'—' if part is None else f'{part * 100:.1f}'}")
        rows.append(row)
    if "base" in summary:
        b = summary["base"]
        row = {"arm": DISPLAY_NAMES[BASE], "seeds": "—"}
        for t in tasks_:
            part = b.get("tasks_partial", {}).get(t)
            row[f"{RULER_NAMES.get(t, t)} % (all / partial)"] = (f"{b['tasks'][t] * 100:.1f} / "
                                                               f"{'—' if part is None else f'{part * 100:.1f}'}")
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows (dicts with the same keys) as a markdown pipe table."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    """``creamviz study ...`` (parsed in :mod:`creamviz.cli`)."""
    from creamviz.cli import main as cli_main

    return cli_main(["study", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
