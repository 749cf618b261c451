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
                                         ({"data": "web"}, "data='web'"), ({"ruler_share": 1.5}, "ruler_share=1.5"),
                                         ({"deadline_s": float("nan")}, "deadline_s"), ({"deadline_s": -1.0}, "deadline_s"),
                                         ({"jobs": 10**6}, "jobs=1000000"), ({"first_seed": -1}, "first_seed=-1"),
                                         ({"kv_depths": (0.5, 1.5)}, "kv_depths=1.5")])
def test_bad_config_raises(over, match):
    with pytest.raises(ValueError, match=match):
        study.StudyConfig(**over).validate()


@pytest.mark.parametrize("argv, match", [(["--deadline-s", "nan"], "deadline_s=nan"), (["--jobs", "100000"], "jobs=100000"),
                                         (["--seeds", "0"], "seeds=0")])
def test_main_bad_argument_is_one_line(argv, match, tmp_path, capsys):
    assert study.main(["--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_replication_plan_uses_fresh_seeds_only():
    cfg = study.StudyConfig.replication(out="x")
    cfg.validate()
    plan = cfg.plan()
    assert plan[:4] == [("cream", 1000), ("pose", 1000), ("cream-sigma6", 1000), ("cream-uniform", 1000)]
    original = json.loads(SUMMARY.read_text())
    used = {s for a in original["arms"].values() for s in a["seeds"]}
    assert not used & {seed for _, seed in plan}


def test_truncated_result_file_is_named(tmp_path):
    cfg = study.StudyConfig.quick(out=tmp_path)
    done = study.run_dir(cfg, "cream", 0) / "result.json"
    done.parent.mkdir(parents=True)
    done.write_text('{"arm": "cream", "seed": 0, "rec')
    with pytest.raises(ValueError, match="result.json is not a complete result file"):
        study.run_one(cfg, "cream", 0)
    with pytest.raises(ValueError, match=str(done)):
        study.collect_results(cfg)


@pytest.mark.parametrize("original_diff, ci, p_holm, verdict", [
    (0.03, [0.01, 0.05], 0.01, "holds"), (0.03, [-0.05, -0.01], 0.01, "does not hold"),
    (0.03, [-0.01, 0.02], 0.4, "does not hold"),  # the CI excludes the original +3 points
    (0.03, [-0.02, 0.08], 0.4, "undecided at this n"), (-0.05, [-0.09, -0.02], 0.03, "holds"),
    (0.03, [0.001, 0.06], 0.06, "undecided at this n"),  # CI excludes 0 but Holm p is not < 0.05
])
def test_replication_verdict_rule(original_diff, ci, p_holm, verdict):
    assert study.replication_verdict(original_diff, ci, p_holm) == verdict


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


# ---------------------------------------------------------------------------------------------
# The shipped summaries against the shipped records, recomputed here by a separate, plain
# implementation (pandas group-bys, an explicit resampling loop, a dynamic-programming count of the
# sign-flip distribution, Holm by its definition, the t-test power from scipy's noncentral t).
MIDDLE = (0.25, 0.5, 0.75)
SHIPPED = [pytest.param("summary.json", "records.csv.gz", id="original")]
if resource_path("study", "replication", "summary.json").is_file():
    SHIPPED.append(pytest.param("replication/summary.json", "replication/records.csv.gz", id="replication"))


def _shipped(summary_name: str, records_name: str):
    import pandas as pd

    summary = json.loads(resource_path("study", *summary_name.split("/")).read_text())
    df = pd.read_csv(resource_path("study", *records_name.split("/")), keep_default_na=False, dtype={"seed": str})
    df = df[(df["set"] == "kv") & df["depth"].round(6).isin(MIDDLE)]
    return summary, df


def _per_seed(df, arm: str) -> dict[int, np.ndarray]:
    """seed -> 0/1 answers of the arm's middle prompts, ordered by (depth, prompt)."""
    rows = df[df["arm"] == arm].sort_values(["depth", "prompt"])
    return {int(seed): g["correct"].to_numpy(dtype=int) for seed, g in rows.groupby("seed")}


def _exact_sign_flip_p(counts: list[int]) -> float:
    """P(|sum of randomly signed counts| >= |observed sum|), by a DP over the distribution of sums."""
    dist = {0: 1}
    for c in counts:
        nxt: dict[int, int] = {}
        for total, ways in dist.items():
            for v in (total + c, total - c):
                nxt[v] = nxt.get(v, 0) + ways
        dist = nxt
    observed = abs(sum(counts))
    return sum(w for total, w in dist.items() if abs(total) >= observed) / 2 ** len(counts)


def _bootstrap_ci(per_seed_rows: list[np.ndarray], n_resamples: int, rng, shipped_resamples: int = 10_000):
    """Two-level percentile bootstrap by explicit resampling: seeds with replacement, then the
    prompts of each drawn seed with replacement. Returns ``(lo, hi), tolerance``: how far two
    percentile estimates (this one, and the summary's from ``shipped_resamples`` draws) can differ
    by resampling alone — the half-spread of the empirical quantile over +-4 binomial SEs of its
    rank (about 0.3-0.5 points for the original study, wider with few seeds)."""
    k = len(per_seed_rows)
    rows = np.stack(per_seed_rows)  # (k, n)
    n = rows.shape[1]
    means = np.empty(n_resamples)
    for b in range(n_resamples):
        seeds = rng.integers(0, k, k)
        prompts = rng.integers(0, n, (k, n))
        means[b] = rows[seeds[:, None], prompts].mean()
    tol = []
    for q in (0.025, 0.975):
        delta = 4 * np.sqrt(q * (1 - q) * (1 / n_resamples + 1 / shipped_resamples))
        tol.append(float(np.quantile(means, min(1.0, q + delta)) - np.quantile(means, max(0.0, q - delta))) / 2)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return (float(lo), float(hi)), max(tol)


def _mdd(sd: float, k: int) -> float:
    """Smallest d with power 0.8 of the two-sided paired t-test (alpha 0.05), by bisection."""
    from scipy import stats

    t = stats.t.ppf(0.975, k - 1)

    def power(d):
        nc = d / (sd / np.sqrt(k))
        far = stats.nct.cdf(-t, k - 1, nc)  # the far tail: NaN when it underflows
        return stats.nct.sf(t, k - 1, nc) + (0.0 if np.isnan(far) else far)

    lo, hi = 0.0, 1000 * sd  # two seeds need d of many SDs
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power(mid) < 0.8 else (lo, mid)
    return (lo + hi) / 2


@pytest.mark.parametrize("summary_name, records_name", SHIPPED)
def test_shipped_arm_means_are_what_the_records_give(summary_name, records_name):
    summary, df = _shipped(summary_name, records_name)
    rng = np.random.default_rng(1)
    for name, arm in summary["arms"].items():
        per_seed = _per_seed(df, name)
        assert sorted(per_seed) == arm["seeds"], name
        acc = [per_seed[s].mean() for s in arm["seeds"]]
        assert arm["middle_acc"] == pytest.approx(acc, abs=1e-12), name
        assert arm["mean"] == pytest.approx(np.mean(acc), abs=1e-12), name
        assert arm["n_middle_prompts"] == len(per_seed[arm["seeds"][0]]) == 300
        if len(acc) >= 2:  # CI bounds within resampling noise (~0.1 point at 3000 resamples)
            ci, tol = _bootstrap_ci([per_seed[s] for s in arm["seeds"]], 3000, rng)
            assert arm["ci95"] == pytest.approx(list(ci), abs=tol), name
    if "base" in summary:
        assert summary["base"]["middle_acc"] == pytest.approx(df[df["arm"] == "base"]["correct"].mean(), abs=1e-12)


@pytest.mark.parametrize("summary_name, records_name", SHIPPED)
def test_shipped_contrasts_are_what_the_records_give(summary_name, records_name):
    """Every contrast: the seeds both arms have, diff, exact p, CI within resampling noise, MDD."""
    summary, df = _shipped(summary_name, records_name)
    rng = np.random.default_rng(2)
    for name, c in summary["contrasts"].items():
        a, b = name.split("-vs-")
        assert (c["arm"], c["reference"]) == (a, b)
        pa, pb = _per_seed(df, a), _per_seed(df, b)
        seeds = sorted(set(pa) & set(pb))
        assert c["n_seeds"] == len(seeds) and c["n_prompts"] == 300, name
        diffs = [pa[s] - pb[s] for s in seeds]
        per_seed = np.array([d.mean() for d in diffs])
        assert c["diff"] == pytest.approx(per_seed.mean(), abs=1e-12), name
        assert c["p_value"] == pytest.approx(_exact_sign_flip_p([int(d.sum()) for d in diffs]), rel=1e-9), name
        ci, tol = _bootstrap_ci(diffs, 3000, rng)
        if len(seeds) >= 20:
            assert tol < 0.006, (name, tol)  # sharp enough to catch a bound moved by a point
        assert c["ci95"] == pytest.approx(list(ci), abs=tol), name
        sd = per_seed.std(ddof=1)
        assert c["sd_seed_diff"] == pytest.approx(sd, rel=1e-9)
        assert c["mdd80"] == pytest.approx(_mdd(sd, len(seeds)), rel=1e-6), name


@pytest.mark.parametrize("summary_name, records_name", SHIPPED)
def test_shipped_holm_is_over_the_stated_family(summary_name, records_name):
    """Holm by its definition (step-down over the sorted p's, running maximum) over the family the
    summary states; the family is every arm − CREAM reference contrast and nothing else."""
    summary, _ = _shipped(summary_name, records_name)
    family = summary["holm_family"]
    if summary_name.startswith("replication"):  # pre-registered: the three replicated contrasts
        assert sorted(family) == sorted(set(study.REPLICATED) & set(summary["contrasts"]))
    else:  # chosen after the design: every arm − CREAM reference contrast, PoSE's outside
        assert sorted(family) == sorted(k for k, c in summary["contrasts"].items()
                                        if c["reference"] == "cream" and c["arm"] != "pose")
    ps = sorted((summary["contrasts"][k]["p_value"], k) for k in family)
    running = 0.0
    for i, (p, k) in enumerate(ps):
        running = max(running, min(1.0, (len(ps) - i) * p))
        assert summary["contrasts"][k]["p_holm"] == pytest.approx(running, rel=1e-9), k
    assert all("p_holm" not in c for k, c in summary["contrasts"].items() if k not in family)
    if not summary_name.startswith("replication"):
        assert len(family) == 8


@pytest.mark.skipif(len(SHIPPED) < 2, reason="no replication shipped")
def test_replication_findings_are_what_the_records_give():
    """Pooled estimates over both record tables, and the pre-registered verdict, recomputed."""
    original, odf = _shipped("summary.json", "records.csv.gz")
    replication, rdf = _shipped("replication/summary.json", "replication/records.csv.gz")
    rng = np.random.default_rng(3)
    for name, f in replication["findings"].items():
        a, b = name.split("-vs-")
        pa, pb = {**_per_seed(odf, a), **_per_seed(rdf, a)}, {**_per_seed(odf, b), **_per_seed(rdf, b)}
        seeds = sorted(set(pa) & set(pb))
        diffs = [pa[s] - pb[s] for s in seeds]
        assert f["pooled"]["n_seeds"] == len(seeds)
        assert f["pooled"]["diff"] == pytest.approx(np.mean([d.mean() for d in diffs]), abs=1e-12)
        ci, tol = _bootstrap_ci(diffs, 3000, rng)
        assert f["pooled"]["ci95"] == pytest.approx(list(ci), abs=tol)
        assert f["original"]["diff"] == original["contrasts"][name]["diff"]
        r = replication["contrasts"].get(name)
        if r is None:
            assert f["replication"] is None and f["verdict"].startswith("not measured")
            continue
        lo, hi = r["ci95"]
        orig = f["original"]["diff"]
        if r["p_holm"] < 0.05:
            expected = "holds" if (lo + hi) * orig > 0 else "does not hold"
        else:
            expected = "undecided at this n" if lo <= orig <= hi else "does not hold"
        assert f["verdict"] == expected, name


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table of a markdown text as rows of cells (header and separator dropped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = {"header": cells, "rows": []}
            elif not all(set(c) <= set("-: ") for c in cells):
                current["rows"].append(cells)
        elif current is not None:
            tables.append(current)
            current = None
    if current is not None:
        tables.append(current)
    return tables


def _number(cell: str) -> float:
    return float(cell.replace("−", "-").replace("+", "").strip("[]* ").rstrip("%"))


def _interval(cell: str) -> tuple[float, float]:
    lo, hi = cell.strip("[] *").split(",")
    return _number(lo), _number(hi)


def _check_results_table(table: dict, summary: dict) -> int:
    """Compare a study results table (columns of study.results_table) with the summary; returns
    the number of cells checked. Display precision: 0.05 point, p to 2 significant digits."""
    header = table["header"]
    col = {h: i for i, h in enumerate(header)}
    by_label = {study.DISPLAY_NAMES[n]: n for n in summary["arms"]}
    checked = 0
    for row in table["rows"]:
        arm = by_label[row[col["arm"]]]
        a = summary["arms"][arm]
        assert int(row[col["seeds"]]) == len(a["seeds"]), arm
        assert _number(row[col["middle acc %"]]) == pytest.approx(a["mean"] * 100, abs=0.051), arm
        assert _interval(row[col["95 % CI"]]) == pytest.approx([x * 100 for x in a["ci95"]], abs=0.051), arm
        checked += 3
        contrast = summary["contrasts"].get(f"{arm}-vs-cream") or (
            {**summary["contrasts"]["cream-vs-pose"], "sign": -1} if arm == "pose" and "cream-vs-pose" in summary["contrasts"]
            else None)
        if contrast is None:
            assert row[col["vs CREAM (points)"]] == "", arm
            continue
        sign = contrast.get("sign", 1)
        lo, hi = sorted(sign * x * 100 for x in contrast["ci95"])
        assert _number(row[col["vs CREAM (points)"]]) == pytest.approx(sign * contrast["diff"] * 100, abs=0.051), arm
        assert _interval(row[col["95 % CI (points)"]]) == pytest.approx([lo, hi], abs=0.051), arm
        assert _number(row[col["p"]]) == pytest.approx(contrast["p_value"], rel=0.051, abs=5e-5), arm
        if contrast.get("p_holm") is not None:
            assert _number(row[col["p (Holm)"]]) == pytest.approx(contrast["p_holm"], rel=0.051, abs=5e-5), arm
        else:
            assert row[col["p (Holm)"]] == "", arm
        checked += 4
    return checked


def test_docs_tables_equal_the_shipped_summaries():
    """docs/study.md's results tables (replication and original) hold the summaries' numbers."""
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "docs" / "study.md").read_text()
    tables = [t for t in _markdown_tables(text) if t["header"][:2] == ["arm", "seeds"]]
    summaries = [json.loads(resource_path("study", *p.values[0].split("/")).read_text()) for p in SHIPPED[::-1]]
    assert len(tables) == len(summaries)
    for table, summary in zip(tables, summaries, strict=True):  # replication first when present
        assert len(table["rows"]) == len(summary["arms"])
        assert _check_results_table(table, summary) >= 3 * len(summary["arms"])
    if len(SHIPPED) == 2:  # the replication's verdict table: estimates, Holm p, verdict, pooled
        _check_findings_table(text, summaries[0]["findings"])


def _check_findings_table(text: str, findings: dict) -> None:
    """The replication's verdict table in ``text``: estimates, Holm p, verdict and pooled
    estimate of every finding equal the replication summary's."""
    (table,) = [t for t in _markdown_tables(text) if t["header"][0] == "finding" and "verdict" in t["header"]]
    col = {h: i for i, h in enumerate(table["header"])}
    assert len(table["rows"]) == len(findings) == 3
    by_label = {f["label"]: f for f in findings.values()}
    for row in table["rows"]:
        f = by_label[row[col["finding"]]]
        assert row[col["verdict"]] == f["verdict"]
        for column, key in (("replication (points, 95 % CI)", "replication"), ("original", "original"),
                            ("pooled", "pooled")):
            e = f[key]
            if e is None:
                assert row[col[column]] == "—"
                continue
            est, rest = row[col[column]].split(" [", 1)
            ci, seeds = rest.split("] (")
            assert _number(est) == pytest.approx(e["diff"] * 100, abs=0.051), (column, f["label"])
            assert _interval(ci) == pytest.approx([x * 100 for x in e["ci95"]], abs=0.051)
            assert int(seeds.split()[0]) == e["n_seeds"]
        if f["replication"] is not None:
            assert _number(row[col["p (Holm, 3)"]]) == pytest.approx(f["replication"]["p_holm"], rel=0.051, abs=5e-5)




def test_readme_findings_table_equals_the_replication_summary():
    """README's study table (the replication first, the original beside it) holds the summary's numbers."""
    import pathlib

    if len(SHIPPED) < 2:
        pytest.skip("no replication shipped")
    replication = json.loads(resource_path("study", *SHIPPED[-1].values[0].split("/")).read_text())
    _check_findings_table((pathlib.Path(__file__).parent.parent / "README.md").read_text(), replication["findings"])


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
    assert len(section.tables[0][1]) == len(s["arms"]) and len(section.tables[1][1]) == len(s["arms"]) + 1  # + base
    assert "cream-vs-pose" not in str(section.tables) and "PoSE" in str(section.tables)


def _experiment_result(acc: dict, seeds: tuple, n: int = 20):
    """An ExperimentResult over hand-made key-value records: per method and seed, prompts j < p·n
    correct at each depth."""
    import pandas as pd

    from creamviz.experiment import ExperimentConfig, ExperimentResult, _kv_curve

    rows, models = [], []
    for method, ps in acc.items():
        for s, p in zip((None,) if method == "base" else seeds, ps, strict=True):
            models.append(method if s is None else f"{method}-s{s}")
            rows += [{"arm": method, "seed": -1 if s is None else s, "set": "kv", "prompt": j, "depth": d,
                      "correct": int(j < round(p * n)), "generated": ""} for d in (0.0, 0.25, 0.5, 0.75, 1.0)
                     for j in range(n)]
    df = pd.DataFrame(rows)
    kv = {m: _kv_curve(df[(df["arm"] == m.split("-s")[0])
                          & (df["seed"] == (int(m.rsplit("-s", 1)[1]) if "-s" in m else -1))].to_dict("records"), 64)
          for m in models}
    return ExperimentResult(ExperimentConfig(seeds=seeds), models, df, kv, {}, {})


def test_experiment_middle_accuracy_and_verdict_from_records():
    """ExperimentResult reads middle accuracy and the paired contrast off its records."""
    result = _experiment_result({"base": [0.3], "cream": [0.8, 0.7, 0.9], "pose": [0.5, 0.6, 0.5]}, (0, 1, 2))
    middle = result.middle_accuracy()
    assert middle["cream"]["per_seed"] == pytest.approx([0.8, 0.7, 0.9]) and middle["cream"]["mean"] == pytest.approx(0.8)
    assert middle["pose"]["std"] == pytest.approx(np.std([0.5, 0.6, 0.5], ddof=1))
    assert middle["base"]["n_prompts_per_seed"] == 60  # 3 middle depths x 20 prompts
    assert result.kv_matrix("cream").shape == (3, 60)
    c = result.contrast()
    assert c["diff"] == pytest.approx(0.8 - 0.5 - 0.0333333, abs=1e-6)
    assert c["p_value"] == pytest.approx(0.25)  # 3 positive seeds: 2 of the 2^3 sign patterns are as extreme
    v = result.verdict()
    assert v.startswith("Measured: CREAM − PoSE") and f"{c['diff'] * 100:+.1f} points" in v
    assert "95 % CI" in v and "untuned base 30.0 %" in v


def test_experiment_verdict_one_seed_says_no_ci():
    result = _experiment_result({"base": [0.3], "cream": [0.75], "pose": [0.75]}, (0,))
    assert result.contrast() is None
    assert result.verdict().startswith("Measured: CREAM 75.0 % vs PoSE 75.0 %")
    assert "one seed only" in result.verdict()
