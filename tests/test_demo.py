"""`creamviz demo` end to end, and its report in a real browser (offline, no page errors)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from creamviz.report import Section, write_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]


def open_in_chromium(path: Path) -> dict:
    """Load a report from disk; return plot counts, page errors and any non-file request."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors, external = [], []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("request", lambda req: None if req.url.startswith(("file:", "data:", "blob:")) else external.append(req.url))
        page.goto(path.resolve().as_uri())
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length > 0", timeout=60_000)
        page.wait_for_timeout(500)
        info = page.evaluate("""() => ({
            plots: document.querySelectorAll('.plotly-graph-div').length,
            rendered: Array.from(document.querySelectorAll('.plotly-graph-div')).filter(g => g.querySelector('.main-svg')).length,
            results: document.getElementById('creamviz-results') ? document.getElementById('creamviz-results').textContent.length : 0})""")
        browser.close()
    return {**info, "errors": errors, "external": external}


@pytest.mark.browser
def test_report_is_standalone_and_renders(tmp_path):
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 0], name="line"))
    path = write_report(tmp_path / "r.html", "t <b>", [Section("A & B", ["x < y"], [fig], [(["k"], [[1.5]])], ["note"])],
                        data={"a": 1, "s": "</script>"})
    page = path.read_text()
    assert "t &lt;b&gt;" in page and "x &lt; y" in page and "<\\/script>" in page
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1]  # plotly.js is inlined, not fetched
    info = open_in_chromium(path)
    assert info["plots"] == info["rendered"] == 1 and not info["errors"] and not info["external"]


def test_demo_without_experiment(tmp_path):
    from creamviz.demo import DemoConfig, run_demo

    report, results = run_demo(DemoConfig(out=tmp_path, n_samples=5000, quick=True, skip_experiment=True))
    assert report.exists() and set(results) >= {"sampling", "coverage", "timings_s"}
    cov = results["coverage"]
    assert cov["theorem_sweep"]["paper_value_matches"] == 0  # the audit's finding, recomputed
    assert cov["max_span_at_scale"]["continuity"] == cov["paper_constant_at_scale"]["continuity"] - 2
    assert json.loads((tmp_path / "results.json").read_text())["sampling"]["train_len"] == 4096
    rope = results["rope"]  # the experiment's interpolation of the tiny base: yarn x8, N = 256 -> L = 2048
    assert (rope["scaling"], rope["train_len"], rope["target_len"]) == ("yarn", 256, 2048)
    # YaRN keeps the needed angles within the pre-trained ones (up to the last fraction of a position:
    # r / 8 for r < 2048 reaches 255.875 > 255, one extra bin of pair 8)
    assert rope["needed_angles_exercised_min"]["pre-training"] > 0.95
    assert rope["needed_angles_exercised_min"]["contiguous"] < 0.5  # distances < N: slow pairs miss angles
    middle = rope["slow_pairs_middle_rate"]
    assert set(middle) == {"cream", "pose", "randpos", "contiguous"}
    assert middle["contiguous"] < min(middle["cream"], middle["pose"])


@pytest.mark.slow
@pytest.mark.browser
def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "creamviz.cli", "demo", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "middle acc %" in proc.stdout and "report:" in proc.stdout
    terminal = proc.stdout + proc.stderr  # creamviz's own bars and table only
    for noise in ("Loading weights", "Writing model shards", "predefined maximum length"):
        assert noise not in terminal, noise
    results = json.loads((out / "results.json").read_text())
    exp = results["experiment"]
    assert set(exp["middle_accuracy"]) == {"base", "cream", "pose"}
    # the experiment is the study's runner: each run's result.json holds its per-prompt records, and
    # the demo's middle accuracy is their share correct at the middle depths (recomputed here)
    for run, method in (("base", "base"), ("cream-s0", "cream"), ("pose-s0", "pose")):
        res = json.loads((out / "runs" / run / "result.json").read_text())
        middle = [r["correct"] for r in res["records"] if r["set"] == "kv" and r["depth"] in (0.25, 0.5, 0.75)]
        assert len(middle) == 3 * 2  # quick: 2 prompts per depth
        assert exp["middle_accuracy"][method]["per_seed"] == [sum(middle) / len(middle)]
        assert res["environment"]["torch"] and res["worker"] == 0 and res["wall_seconds"] > 0
        if method != "base":
            assert res["loss"]["steps"] == 12 and res["loss"]["final"] == res["final_loss"]
    assert set(exp["kv_by_depth"]) == {"base", "cream-s0", "pose-s0"}
    for curve in exp["kv_by_depth"].values():  # every score names its mode, scorer and budget
        assert all(p["mode"] == "byte-scaled (tiny model)" and p["scorer"] == "substring_exact" and p["budget"] >= 6
                   for p in curve), curve
    assert exp["verdict"].startswith("Measured: CREAM")
    # the perplexity stage finds the experiment's fine-tuned runs (where the study runner saves them)
    ppl = results["perplexity"]
    assert set(ppl) == {"base", "cream", "pose"}, ppl
    for curve in ppl.values():
        assert {r["length"] for r in curve} >= {256, 2048, 4096}
        assert all(np.isfinite(r["ppl"]) and r["ppl"] >= 1 and r["n_tokens"] > 0 for r in curve)
    info = open_in_chromium(out / "report.html")
    assert info["plots"] >= 12 and info["rendered"] == info["plots"], info
    assert not info["errors"] and not info["external"], info
    assert info["results"] > 1000


def test_coverage_table_has_a_number_for_every_method():
    # RandPos has no segments: its mean |D_r| is the sum of its distance frequency (not "nan")
    from creamviz import coverage
    from creamviz.demo import DemoConfig, coverage_section
    from creamviz.samplers import RandPosSampler

    cfg = DemoConfig(train_len=256, target_len=1024, quick=True)
    section, results = coverage_section(cfg)
    rows = {row[0]: row for row in section.tables[0][1]}
    assert set(rows) == {"CREAM", "PoSE", "contiguous windows", "RandPos"}
    assert not any("nan" in str(cell) for row in rows.values() for cell in row)
    ids = RandPosSampler(256, 1024).position_ids(4, seed=cfg.seed)
    brute = sum(len({b - a for i, a in enumerate(r) for b in r[i:]}) for r in ids.tolist()) / len(ids)
    assert results["mean_span_size"]["randpos"] == pytest.approx(brute)
    assert rows["RandPos"][3].endswith("(after 4 samples)")
    assert results["coverage_after_2000"]["randpos"] == pytest.approx(coverage.coverage_curve(ids, 1024)[-1])
