"""The paper's main experiment in miniature: fine-tune a base with CREAM and PoSE, evaluate all.

``run_experiment(ExperimentConfig())`` is the study's runner (:func:`creamviz.study.run_one`) with
two arms: it fine-tunes the shipped tiny base (N = 256) to L = 2048 with each method and seed
(same data, steps, learning rate, RoPE interpolation and seeds) and scores every model, the untuned
base (with the same RoPE interpolation) included, on the key-value prompts by depth of the gold
pair at L (the Lost-in-the-Middle curve). On top of the study's records it evaluates what the
demo shows besides: a needle-in-a-haystack grid, perplexity by position at L, and the attention
depth profile of one key-value prompt. Finished runs in ``out/runs`` with the same configuration
are reused (the study's rule), so an interrupted experiment continues where it stopped.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from creamviz import evaluate, significance, study, tasks
from creamviz.attention import attention_maps
from creamviz.models import load_model, load_tokenizer
from creamviz.scores import depth_curve

__all__ = ["ExperimentConfig", "ExperimentResult", "run_experiment"]


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

    def study_config(self) -> study.StudyConfig:
        """The study configuration whose runs this experiment is: its methods as arms, the
        key-value set at L (the first ``kv_per_depth`` prompts per depth), no RULER-style sets."""
        return study.StudyConfig(out=Path(self.out), base=self.base, target_len=self.target_len, rope=self.rope,
                                 steps=self.steps, lr=self.lr, batch_size=self.batch_size, data=self.data,
                                 arms=tuple(self.methods), kv_set=f"kv_L{self.target_len}",
                                 kv_per_depth=self.kv_per_depth, eval_ruler=False, progress=self.progress)


@dataclass
class ExperimentResult:
    config: ExperimentConfig
    models: list[str]  # "base", "cream-s0", ...
    records: object  # per-prompt key-value records (pandas DataFrame, creamviz.study.RECORD_COLUMNS)
    kv: dict[str, evaluate.DepthCurve]  # model -> key-value accuracy by gold depth at L (from records)
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
        """Per method: key-value accuracy over the middle depths (:func:`creamviz.significance.middle_accuracy`),
        per seed and overall."""
        by_run = significance.middle_accuracy(self.records)
        n_middle = significance.arm_matrix(self.records, "base")[1].shape[1] if "base" in self.models else None
        out = {}
        for method in ("base", *self.config.methods):
            per_seed = [v for (arm, _), v in sorted(by_run.items()) if arm == method]
            if not per_seed:
                continue
            out[method] = {"mean": float(np.mean(per_seed)),
                           "std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
                           "per_seed": per_seed, "n_prompts_per_seed": n_middle}
        return out

    def kv_matrix(self, method: str) -> np.ndarray:
        """0/1 matrix (seeds, prompts) of one method's middle key-value answers (the same prompts,
        in the same order, for every seed and method: the input of a paired contrast)."""
        return significance.arm_matrix(self.records, method)[1]

    def contrast(self, a: str = "cream", b: str = "pose", *, n_resamples: int = 10_000, seed: int = 0) -> dict | None:
        """``a`` − ``b`` in the middle of the context, paired by seed and prompt, with the study's
        two-level bootstrap CI and exact sign-flip p-value; None with fewer than 2 seeds."""
        if a not in self.config.methods or b not in self.config.methods or len(self.config.seeds) < 2:
            return None
        return significance.paired_contrast(self.kv_matrix(a), self.kv_matrix(b), n_resamples=n_resamples, seed=seed)

    def verdict(self, a: str = "cream", b: str = "pose") -> str:
        """The measured difference ``a`` − ``b`` in the middle, read off its 95 % CI (whichever way it falls)."""
        la, lb = study.DISPLAY_NAMES.get(a, a), study.DISPLAY_NAMES.get(b, b)
        middle = self.middle_accuracy()
        if a not in middle or b not in middle:
            return f"Measured: {la} vs {lb}: not both methods were run."
        c = self.contrast(a, b)
        if c is None:
            return (f"Measured: {la} {middle[a]['mean'] * 100:.1f} % vs {lb} {middle[b]['mean'] * 100:.1f} % in the "
                    "middle of the context, one seed only: no confidence interval (needs >= 2 seeds).")
        summary = {"arms": {m: {"mean": middle[m]["mean"]} for m in (a, b)}, "contrasts": {f"{a}-vs-{b}": c}}
        base = f" (untuned base {middle['base']['mean'] * 100:.1f} %)" if "base" in middle else ""
        return "Measured: " + significance.verdict(summary, f"{a}-vs-{b}", {a: la, b: lb}) + base

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


def _evaluate_extras(model, tokenizer, cfg: ExperimentConfig) -> tuple:
    """What the demo shows besides the study's key-value records: the NIAH grid, perplexity by position."""
    niah = evaluate.evaluate_eval_set(model, tokenizer, "niah", limit=cfg.niah_per_cell)
    ppl = evaluate.ppl_by_position(model, tokenizer, length=cfg.target_len, n_seqs=cfg.ppl_seqs,
                                   bucket=max(cfg.target_len // 8, 1))
    return niah, ppl


def _kv_curve(records: list[dict], length: int) -> evaluate.DepthCurve:
    """A study run's key-value records as a depth curve (prompt index as the example id)."""
    return depth_curve([{"task": "kv", "length": length, "depth": r["depth"], "target_depth": r["depth"],
                         "seed": r["prompt"], "correct": bool(r["correct"]),
                         **{k: r[k] for k in ("mode", "scorer", "budget") if k in r}}  # labels (older runs: none)
                        for r in records if r["set"] == "kv"])


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
    """Run (or reuse) every (method, seed) and the base with the study's runner, then evaluate
    the extras; see the module docstring."""
    import pandas as pd

    cfg.out = Path(cfg.out)
    scfg = cfg.study_config()
    scfg.validate()
    tokenizer = load_tokenizer(cfg.base)
    jobs = [(study.BASE, None)] + [(m, s) for m in cfg.methods for s in cfg.seeds]
    results, train_seconds, final_losses = {}, {}, {}
    for arm, seed in tqdm(jobs, desc="fine-tuning and key-value scoring", disable=not cfg.progress):
        name = arm if seed is None else f"{arm}-s{seed}"
        results[name] = study.run_one(scfg, arm, seed)
        if seed is not None:
            train_seconds[name] = results[name]["train_seconds"]
            final_losses[name] = results[name]["final_loss"]
    records = pd.DataFrame([{"arm": r["arm"], "seed": -1 if r["seed"] is None else r["seed"], **rec}
                            for r in results.values() for rec in r["records"]], columns=study.RECORD_COLUMNS)
    kv = {name: _kv_curve(r["records"], cfg.target_len) for name, r in results.items()}
    niah, ppl, attn = {}, {}, {}
    prompt_ids, prompt_info = _attention_prompt(tokenizer, cfg)
    for name in tqdm(results, desc="evaluating NIAH, perplexity, attention", disable=not cfg.progress):
        if name == study.BASE:
            model = study.base_model(scfg)
        else:
            arm, seed = name.rsplit("-s", 1)
            model = load_model(study.run_dir(scfg, arm, int(seed)) / "train" / "final")  # saved with its RoPE
        model.eval()
        with torch.no_grad():
            niah[name], ppl[name] = _evaluate_extras(model, tokenizer, cfg)
            if cfg.attention and (name == study.BASE or name.endswith(f"-s{cfg.seeds[0]}")):
                attn[name] = attention_maps(model, torch.tensor(prompt_ids), pool=cfg.attention_pool,
                                            query_len=prompt_info["question_len"], label=name)
    return ExperimentResult(cfg, list(results), records, kv, niah, ppl, attn, prompt_info, train_seconds, final_losses)
