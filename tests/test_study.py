"""`creamviz study`: the plan, the training rows, the quick run end to end, the shipped summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from creamviz import study, tasks
from creamviz.models import FastByteTokenizer
from creamviz.resources import resource_path

SUMMARY = resource_path("study", "summary.json")


def test_plan_is_seed_major_with_key_arms_first_then_extra_key_seeds():
    cfg = study.StudyConfig(arms=("contiguous", "pose", "cream"), seeds=2, key_seeds=3)
    assert cfg.plan() == [("cream", 0), ("pose", 0), ("contiguous", 0), ("cream", 1), ("pose", 1),
                          ("contiguous", 1), ("cream", 2), ("pose", 2)]


@pytest.mark.parametrize("over, match", [({"arms": ("cream", "nope")}, "nope"), ({"seeds": 0}, "seeds=0"),
                                         ({"seeds": 4, "key_seeds": 3}, "key_seeds=3"),
                                         ({"data": "web"}, "data='web'"), ({"ruler_share": 1.5}, "ruler_share=1.5")])
def test_bad_config_raises(over, match):
    with pytest.raises(ValueError, match=match):
        study.StudyConfig(**over).validate()


def test_arms_cover_the_asked_knobs():
    params = {a.name: a.record() for a in study.ARMS}
    assert len(params) >= 10
    assert params["cream-sigma1"]["sigma"] == 1.0 and params["cream-sigma6"]["sigma"] == 6.0
    assert params["cream-uniform"]["middle"] == "uniform" and params["cream-truncnorm"]["middle"] == "truncnorm"
    assert params["cream-continuity"]["p_continuity"] == 1.0 and params["cream-relativity"]["p_continuity"] == 0.0
    assert {params[n]["sampler"] for n in ("pose", "randpos", "contiguous")} == {"pose", "randpos", "contiguous"}


def test_ruler_mix_rows_train_on_the_answer_only():
    tok = FastByteTokenizer()
    ds = study.RulerMixDataset(tok, 256, 400, seed=3, ruler_share=0.25)
    ruler = [i for i in range(400) if ds.example(i) is not None]
    assert 60 <= len(ruler) <= 140  # Binomial(400, 0.25): mean 100, sd 8.7
    assert {ds.example(i).task for i in ruler} == set(tasks.RULER_TASKS)
    for i in ruler[:20]:
        row, ex = ds[i], ds.example(i)
        ids, labels = row["input_ids"].numpy(), row["labels"].numpy()
        assert len(ids) <= 256 and row["sample_index"] == i
        target = ids[labels != -100]
        assert tok.decode(target[:-1].tolist()) == ex.answer and target[-1] == tok.eos_token_id
        assert (labels[:ex.n_tokens] == -100).all()
    again = study.RulerMixDataset(tok, 256, 400, seed=3)
    assert all(np.array_equal(ds[i]["input_ids"], again[i]["input_ids"]) for i in ruler[:5])
    mix_row = next(i for i in range(400) if i not in ruler)
    assert len(ds[mix_row]["input_ids"]) == 256  # the pre-training mixture row, unchanged


@pytest.mark.slow
def test_quick_study_end_to_end_and_resume(tmp_path):
    """`creamviz study --quick`: trains, evaluates, writes summary.json in the issue's schema; a second
    call reuses the finished runs."""
    out = tmp_path / "study"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "creamviz.cli", "study", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"cream", "pose"} and "cream-vs-pose" in summary["contrasts"]
    for arm in summary["arms"].values():
        assert arm["seeds"] == [0, 1] and len(arm["middle_acc"]) == 2
        assert arm["ci95"][0] <= arm["mean"] <= arm["ci95"][1]
        assert set(arm["tasks"]) == set(tasks.RULER_TASKS)
    c = summary["contrasts"]["cream-vs-pose"]
    assert c["ci95"][0] <= c["diff"] <= c["ci95"][1] and 0 < c["p_value"] <= 1
    df = study.load_records(out / "records.csv.gz")
    assert len(df) == 5 * (5 * 2 + 4 * 2)  # base + 4 runs; 2 kv prompts x 5 depths + 2 per RULER task
    cfg = study.StudyConfig.quick(out=out)
    result_file = study.run_dir(cfg, "cream", 1) / "result.json"
    mtime = result_file.stat().st_mtime
    again = study.run_one(cfg, "cream", 1)
    assert result_file.stat().st_mtime == mtime and again["records"] == json.loads(result_file.read_text())["records"]
    print(f"quick study: {elapsed:.1f} s")


def test_shipped_summary_has_the_issue_schema():
    s = json.loads(SUMMARY.read_text())
    assert set(s) >= {"config", "arms", "contrasts"}
    assert len(s["arms"]) >= 10
    for name, arm in s["arms"].items():
        assert set(arm) >= {"params", "seeds", "middle_acc", "mean", "ci95"}
        assert len(arm["seeds"]) == len(arm["middle_acc"]) >= 5, name
        assert arm["mean"] == pytest.approx(np.mean(arm["middle_acc"]))
        assert arm["ci95"][0] <= arm["mean"] <= arm["ci95"][1]
    assert set(s["contrasts"]) >= {"cream-vs-pose"} | {f"{a}-vs-cream" for a in s["arms"] if a not in ("cream", "pose")}
    for c in s["contrasts"].values():
        assert set(c) >= {"diff", "ci95", "p_value"} and 0 < c["p_value"] <= 1


def test_shipped_summary_is_what_the_records_give():
    """Recompute the per-seed middle accuracies from the shipped per-prompt records."""
    from creamviz.significance import arm_matrix

    s = json.loads(SUMMARY.read_text())
    df = study.load_records(SUMMARY.parent / "records.csv.gz")
    for name in ("cream", "pose", "cream-uniform"):
        seeds, m = arm_matrix(df, name)
        assert list(seeds) == s["arms"][name]["seeds"]
        assert m.mean(axis=1) == pytest.approx(s["arms"][name]["middle_acc"])
        assert m.shape[1] == 300


def test_study_figures_from_the_shipped_summary():
    from creamviz import figures as F

    s = json.loads(SUMMARY.read_text())
    forest = F.fig_study_forest(s)
    assert len(forest.data) == len(s["arms"])
    cream = next(t for t in forest.data if t.name == "cream")
    assert cream.x[0] == pytest.approx(s["arms"]["cream"]["mean"] * 100)
    assert cream.error_x.arrayminus[0] == pytest.approx((s["arms"]["cream"]["mean"] - s["arms"]["cream"]["ci95"][0]) * 100)
    contrasts = F.fig_study_contrasts(s)
    assert len(contrasts.data) == len(s["contrasts"])
    depth = F.fig_study_depth(s, arms=["cream", "pose"])
    assert [t.x for t in depth.data][0] == (0.0, 25.0, 50.0, 75.0, 100.0) and len(depth.data) == 3  # + base
    with pytest.raises(ValueError, match="no arms"):
        F.fig_study_forest({})


def test_demo_shows_the_shipped_study():
    from creamviz.demo import DemoConfig, study_section

    section, res = study_section(DemoConfig())
    s = json.loads(SUMMARY.read_text())
    assert res["verdict"] == s["verdict"] and len(section.figures) == 3
    assert len(section.tables[0][1]) == len(s["arms"]) and len(section.tables[1][1]) == len(s["contrasts"])


def test_experiment_verdict_uses_the_paired_ci():
    """ExperimentResult.verdict: the study's paired contrast on hand-made key-value records."""
    from creamviz.evaluate import depth_curve
    from creamviz.experiment import ExperimentConfig, ExperimentResult
    from creamviz.significance import paired_contrast

    rng = np.random.default_rng(0)
    kv, models = {}, ["base"]
    for method, p in (("base", 0.3), ("cream", 0.8), ("pose", 0.5)):
        for s in ((None,) if method == "base" else (0, 1, 2)):
            name = method if s is None else f"{method}-s{s}"
            if s is not None:
                models.append(name)
            kv[name] = depth_curve([{"task": "kv", "length": 64, "depth": d, "target_depth": d, "seed": j,
                                     "correct": bool(rng.random() < p)} for d in (0.0, 0.25, 0.5, 0.75, 1.0)
                                    for j in range(20)])
    result = ExperimentResult(ExperimentConfig(seeds=(0, 1, 2)), models, kv, {}, {})
    m_cream, m_pose = result.kv_matrix("cream"), result.kv_matrix("pose")
    assert m_cream.shape == (3, 60)
    c = result.contrast()
    assert c == paired_contrast(m_cream, m_pose)
    v = result.verdict()
    assert v.startswith("Measured: CREAM − PoSE") and f"{c['diff'] * 100:+.1f} points" in v and "95 % CI" in v


def test_experiment_verdict_one_seed_says_no_ci():
    from creamviz.evaluate import depth_curve
    from creamviz.experiment import ExperimentConfig, ExperimentResult

    kv = {name: depth_curve([{"task": "kv", "length": 64, "depth": 0.5, "target_depth": 0.5, "seed": j,
                              "correct": j < 3} for j in range(4)]) for name in ("base", "cream-s0", "pose-s0")}
    result = ExperimentResult(ExperimentConfig(seeds=(0,)), list(kv), kv, {}, {})
    assert result.contrast() is None
    assert result.verdict().startswith("Measured: CREAM 75.0 % vs PoSE 75.0 %") and "one seed only" in result.verdict()
