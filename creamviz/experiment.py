"""The paper's main experiment in miniature: fine-tune a base with CREAM and PoSE, evaluate all.

``run_experiment(ExperimentConfig())`` fine-tunes the shipped tiny base (N = 256) to L = 2048 with
each method and seed (same data, steps, learning rate, RoPE interpolation and seeds), keeps the
untuned base (with the same RoPE interpolation) as the floor, and evaluates every model on the
fixed sets shipped in ``creamviz/resources/eval/``: key-value retrieval by depth of the gold pair at L (the
Lost-in-the-Middle curve), a needle-in-a-haystack grid, perplexity by position at L, and the
attention depth profile of one key-value prompt. Runs already present in ``out/runs`` with the
same configuration are reused, so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from creamviz import evaluate, tasks
from creamviz.attention import attention_maps
from creamviz.models import load_model, load_tokenizer
from creamviz.training import TrainConfig, train

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment", "MIDDLE_DEPTHS"]

MIDDLE_DEPTHS = (0.25, 0.5, 0.75)  # depths counted as "the middle" of the context


@dataclass
class ExperimentConfig:
    out: Path = Path("demo_out")  # runs go to out/runs/<method>-s<seed>
    base: str = "tiny"  # the base checkpoint ("tiny" = creamviz/resources/tiny-base, or a local directory)
    target_len: int = 2048  # L; N is the base's window (256 for the tiny base)
    rope: str = "yarn"  # RoPE interpolation for every model, the base included: yarn | linear
    methods: tuple[str, ...] = ("cream", "pose")  # samplers compared
    seeds: tuple[int, ...] = (0, 1, 2)  # fine-tuning seeds per method
    steps: int = 300  # optimizer steps per run (~45 s each on 2 idle CPU cores)
    lr: float = 5e-4  # peak learning rate (tiny model; the paper's 7B uses 2e-5)
    batch_size: int = 8  # windows per step
    data: str = "mix"  # training data: corpus text + retrieval tasks (the base's pre-training mix)
    kv_per_depth: int = 20  # key-value prompts per gold depth at L (the whole fixed set kv_L<L>)
    niah_per_cell: int = 2  # NIAH prompts per (length, depth) cell (fixed set niah)
    ppl_seqs: int = 4  # held-out windows of L tokens for perplexity by position
    attention: bool = True  # attention depth profiles on one key-value prompt at L
    attention_pool: int = 64  # pooled attention blocks per axis
    progress: bool = True  # tqdm bars

    @classmethod
    def quick(cls, **overrides) -> ExperimentConfig:
        """A < 3-minute version: one seed, few steps, few prompts (for tests and notebooks)."""
        base = dict(seeds=(0,), steps=12, lr=1e-3, kv_per_depth=2, niah_per_cell=1, ppl_seqs=1, attention_pool=32)
        return cls(**{**base, **overrides})


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    models: list[str]  # "base", "cream-s0", ...
    kv: dict[str, evaluate.DepthCurve]  # model -> key-value accuracy by gold depth at L
    niah: dict[str, evaluate.NiahGrid]  # model -> NIAH grid (depth x length)
    ppl: dict[str, evaluate.PplCurve]  # model -> loss by position bucket at L
    attention: dict[str, object] = field(default_factory=dict)  # model -> AttentionMaps (seed 0 runs + base)
    attention_prompt: dict = field(default_factory=dict)  # the prompt used for the attention maps
    train_seconds: dict[str, float] = field(default_factory=dict)  # run -> wall time of its training
    final_losses: dict[str, float] = field(default_factory=dict)  # run -> last logged training loss

    def group(self, method: str) -> list[str]:
        """Model names of one method (all seeds), or ``["base"]``."""
        return [m for m in self.models if m == method or m.startswith(f"{method}-s")]

    def kv_by_method(self) -> dict[str, list[evaluate.DepthCurve]]:
        return {method: [self.kv[m] for m in self.group(method)] for method in ("base", *self.config.methods)}

    def middle_accuracy(self) -> dict[str, dict]:
        """Per method: mean key-value accuracy over the middle depths, per seed and overall."""
        out = {}
        for method, curves in self.kv_by_method().items():
            per_seed = [float(np.mean([a for d, a in zip(c.depths, c.accuracy, strict=True)
                                       if any(np.isclose(d, m) for m in MIDDLE_DEPTHS)])) for c in curves]
            out[method] = {"mean": float(np.mean(per_seed)), "std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                           "per_seed": per_seed, "n_prompts_per_seed": int(sum(c.n[np.isin(np.round(c.depths, 3), MIDDLE_DEPTHS)].sum() for c in curves[:1]))}
        return out

    def kv_matrix(self, method: str, depths=MIDDLE_DEPTHS) -> np.ndarray:
        """0/1 matrix (seeds, prompts) of one method's key-value answers at ``depths`` (the same
        prompts, in the same order, for every seed and method: the input of a paired contrast)."""
        rows = []
        for m in self.group(method):
            recs = [r for r in self.kv[m].raw if any(np.isclose(r["target_depth"], d) for d in depths)]
            rows.append([float(r["correct"]) for r in sorted(recs, key=lambda r: (r["target_depth"], r["seed"]))])
        return np.array(rows)

    def contrast(self, a: str = "cream", b: str = "pose", *, n_resamples: int = 10_000, seed: int = 0) -> dict | None:
        """``a`` − ``b`` in the middle of the context, paired by seed and prompt, with the study's
        two-level bootstrap CI and permutation p-value; None with fewer than 2 seeds."""
        from creamviz.significance import paired_contrast

        if a not in self.config.methods or b not in self.config.methods or len(self.config.seeds) < 2:
            return None
        return paired_contrast(self.kv_matrix(a), self.kv_matrix(b), n_resamples=n_resamples, seed=seed)

    def verdict(self, a: str = "cream", b: str = "pose") -> str:
        """The measured difference ``a`` − ``b`` in the middle, read off its 95 % CI (whichever way it falls)."""
        from creamviz.significance import verdict

        labels = {"cream": "CREAM", "pose": "PoSE", "randpos": "RandPos"}
        la, lb = labels.get(a, a), labels.get(b, b)
        middle = self.middle_accuracy()
        if a not in middle or b not in middle:
            return f"Measured: {la} vs {lb}: not both methods were run."
        c = self.contrast(a, b)
        if c is None:
            return (f"Measured: {la} {middle[a]['mean'] * 100:.1f} % vs {lb} {middle[b]['mean'] * 100:.1f} % in the "
                    "middle of the context, one seed only: no confidence interval (needs >= 2 seeds).")
        summary = {"arms": {m: {"mean": middle[m]["mean"]} for m in (a, b)}, "contrasts": {f"{a}-vs-{b}": c}}
        base = f" (untuned base {middle['base']['mean'] * 100:.1f} %)" if "base" in middle else ""
        return "Measured: " + verdict(summary, f"{a}-vs-{b}", labels) + base

    def summary(self) -> dict:
        """Every number of the report as plain JSON-able data."""
        contrast = self.contrast()
        return {
            "contrast_cream_pose": contrast,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()},
            "middle_accuracy": self.middle_accuracy(),
            "kv_by_depth": {m: c.records() for m, c in self.kv.items()},
            "kv_mean_accuracy": {m: c.mean_accuracy for m, c in self.kv.items()},
            "niah": {m: g.records() for m, g in self.niah.items()},
            "ppl_by_position": {m: p.records() for m, p in self.ppl.items()},
            "attention_depth_profile": {m: a.depth_profile.mean(axis=(0, 1)).tolist() for m, a in self.attention.items()},
            "attention_thirds": {m: a.thirds.mean(axis=(0, 1)).tolist() for m, a in self.attention.items()},
            "train_seconds": self.train_seconds,
            "final_losses": self.final_losses,
        }


def _train_run(cfg: ExperimentConfig, method: str, seed: int) -> tuple[Path, float, float]:
    out = cfg.out / "runs" / f"{method}-s{seed}"
    tcfg = TrainConfig(model=cfg.base, sampler=method, rope=cfg.rope, target_len=cfg.target_len, steps=cfg.steps,
                       lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, save_every=max(cfg.steps, 1),
                       keep_checkpoints=1, out=str(out), data=cfg.data, progress=False,
                       record_positions=False)  # per-step bars off: the run-level bar below reports progress
    done = out / "experiment_run.json"
    if done.exists() and json.loads(done.read_text()).get("train_config") == asdict(tcfg):
        info = json.loads(done.read_text())
        return out / "final", info["seconds"], info["final_loss"]
    if out.exists():  # a stale or interrupted run with another configuration: start it over
        import shutil

        shutil.rmtree(out)
    start = time.perf_counter()
    result = train(tcfg)
    seconds = time.perf_counter() - start
    final_loss = float(result.loss_log[-1]["loss"]) if result.loss_log else float("nan")
    done.write_text(json.dumps({"train_config": asdict(tcfg), "seconds": seconds, "final_loss": final_loss}))
    return Path(result.final_model), seconds, final_loss


def _evaluate(model, tokenizer, cfg: ExperimentConfig) -> tuple:
    kv = evaluate.evaluate_eval_set(model, tokenizer, f"kv_L{cfg.target_len}", limit=cfg.kv_per_depth)
    niah = evaluate.evaluate_eval_set(model, tokenizer, "niah", limit=cfg.niah_per_cell)
    ppl = evaluate.ppl_by_position(model, tokenizer, length=cfg.target_len, n_seqs=cfg.ppl_seqs,
                                   bucket=max(cfg.target_len // 8, 1))
    return kv, niah, ppl


def _attention_prompt(tokenizer, cfg: ExperimentConfig) -> tuple[list[int], dict]:
    """The first fixed key-value prompt at L with its gold pair in the middle (depth 0.5), and
    the length of its question (the tokens after the JSON-like body: ``\\n<key>:``)."""
    examples = [ex for ex in tasks.load_eval_set(f"kv_L{cfg.target_len}", tokenizer)
                if np.isclose(ex.record()["depth"], 0.5)]
    ex = examples[0]
    question = ex.prompt[ex.prompt.rindex(tasks.KV_SUFFIX):]
    info = ex.record()
    info["question_len"] = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    return list(ex.prompt_ids), info


def run_experiment(cfg: ExperimentConfig) -> ExperimentResult:
    """Fine-tune every (method, seed), evaluate them and the base; see the module docstring."""
    cfg.out = Path(cfg.out)
    cfg.out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(cfg.base)
    runs: dict[str, Path | str] = {"base": cfg.base}
    train_seconds, final_losses = {}, {}
    jobs = [(m, s) for m in cfg.methods for s in cfg.seeds]
    for method, seed in tqdm(jobs, desc="fine-tuning", disable=not cfg.progress):
        path, seconds, loss = _train_run(cfg, method, seed)
        runs[f"{method}-s{seed}"] = path
        train_seconds[f"{method}-s{seed}"] = round(seconds, 1)
        final_losses[f"{method}-s{seed}"] = loss
    kv, niah, ppl, attn = {}, {}, {}, {}
    prompt_ids, prompt_info = _attention_prompt(tokenizer, cfg)
    for name, path in tqdm(runs.items(), desc="evaluating", disable=not cfg.progress):
        if name == "base":
            from creamviz.lengths import Lengths

            model = Lengths.resolve(cfg.base, cfg.target_len, rope=cfg.rope).load_model(cfg.base)
        else:
            model = load_model(path)  # saved with its RoPE interpolation
        model.eval()
        with torch.no_grad():
            kv[name], niah[name], ppl[name] = _evaluate(model, tokenizer, cfg)
            if cfg.attention and (name == "base" or name.endswith("-s0") or name.endswith(f"-s{cfg.seeds[0]}")):
                attn[name] = attention_maps(model, torch.tensor(prompt_ids), pool=cfg.attention_pool,
                                            query_len=prompt_info["question_len"], label=name)
    return ExperimentResult(cfg, list(runs), kv, niah, ppl, attn, prompt_info, train_seconds, final_losses)

