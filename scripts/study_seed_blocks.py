"""The seed-block difference of the shipped study, looked into with what the records allow.

Prints JSON: (1) whether the per-seed CREAM − PoSE differences differ between the seed blocks
0–9, 10–19, 20–29 beyond chance (one-way ANOVA, Kruskal–Wallis); (2) per seed, what the seed
changes in training — the share of RULER-style rows in the 2,400 training rows (and per task),
CREAM's share of continuity-branch rows and mean middle placement, PoSE's mean skip — by block
and as Spearman correlations with the per-seed difference; (3) the run provenance the summary
carries. Usage: ``python scripts/study_seed_blocks.py`` (about a minute on one CPU thread).
"""

from __future__ import annotations

import json

import numpy as np
from scipy import stats

from creamviz import study
from creamviz.models import FastByteTokenizer
from creamviz.samplers import make_sampler
from creamviz.training import PositionCollator


def per_seed_training_stats(seed: int, cfg: study.StudyConfig, n_rows: int) -> dict:
    ds = study.RulerMixDataset(FastByteTokenizer(), 256, n_rows, seed, ruler_share=cfg.ruler_share)
    tasks_ = []
    for i in range(n_rows):  # the dataset's own draw order: the first uniform decides, then the task
        rng = np.random.default_rng([seed, 7, i])
        if rng.random() < cfg.ruler_share:
            tasks_.append(cfg.ruler_tasks[int(rng.integers(len(cfg.ruler_tasks)))])
    check = [ds.example(i) for i in range(40)]  # the shortcut agrees with the dataset
    assert sum(e is not None for e in check) == sum(
        np.random.default_rng([seed, 7, i]).random() < cfg.ruler_share for i in range(40))
    out = {"ruler_share": len(tasks_) / n_rows, **{f"ruler_{t}": tasks_.count(t) / n_rows for t in cfg.ruler_tasks}}
    row_seeds = [[seed, 1, i] for i in range(n_rows)]  # PositionCollator.row_seed of indexed rows
    for name in ("cream", "pose"):
        _, _, recs = PositionCollator(make_sampler(name, train_len=256, target_len=cfg.target_len), seed=seed).sample_rows(row_seeds)
        mid = np.array([(r["mid_start"] + r["mid_end"]) / 2 for r in recs]) / cfg.target_len
        out[f"{name}_mid_centre"] = float(mid.mean())
        out[f"{name}_mid_in_middle_half"] = float(np.mean((mid > 0.25) & (mid < 0.75)))
        if name == "cream":
            out["cream_continuity_share"] = float(np.mean([r["branch"] == 0 for r in recs]))
    return out


def main() -> None:
    summary = study.shipped_summary()
    cfg = study.StudyConfig()
    cream, pose = summary["arms"]["cream"], summary["arms"]["pose"]
    seeds = cream["seeds"]
    diff = np.array(cream["middle_acc"]) - np.array(pose["middle_acc"])  # same seeds, same order
    blocks = [diff[(np.array(seeds) >= lo) & (np.array(seeds) <= lo + 9)] * 100 for lo in (0, 10, 20)]
    report = {"block_means_points": [float(b.mean()) for b in blocks],
              "anova_p": float(stats.f_oneway(*blocks).pvalue), "kruskal_p": float(stats.kruskal(*blocks).pvalue),
              "cream_block_means": [float(np.mean(cream["middle_acc"][i:i + 10]) * 100) for i in (0, 10, 20)],
              "pose_block_means": [float(np.mean(pose["middle_acc"][i:i + 10]) * 100) for i in (0, 10, 20)]}
    n_rows = cfg.steps * cfg.batch_size
    per_seed = [per_seed_training_stats(s, cfg, n_rows) for s in seeds]
    report["training_stats"] = {}
    for key in per_seed[0]:
        values = np.array([p[key] for p in per_seed])
        rho, p = stats.spearmanr(values, diff)
        report["training_stats"][key] = {"block_means": [float(values[i:i + 10].mean()) for i in (0, 10, 20)],
                                         "spearman_rho_with_diff": float(rho), "p": float(p)}
    report["provenance"] = summary["config"].get("provenance")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
