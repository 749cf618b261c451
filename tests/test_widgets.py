"""Explorers driven headless: move controls, check state, figures and inline errors."""

import base64

import numpy as np
import plotly.graph_objects as go
import pytest

from creamviz.samplers import CreamSampler
from creamviz.theorem import describe_audit
from creamviz.widgets import (
    SamplerExplorer,
    TheoremExplorer,
    theorem_figures,
)


@pytest.fixture(scope="module")
def explorer():
    ex = SamplerExplorer(n_samples=5000)
    assert ex.widget is not None  # build the controls
    return ex


def test_initial_state(explorer):
    assert explorer.error == ""
    assert set(explorer.figures) == {"strip", "segment_density", "middle_placement", "coverage"}
    assert all(isinstance(f, go.Figure) for f in explorer.figures.values())
    # each figure is shown by an Output in a responsive grid; the two-panel one spans the row
    grid = explorer.widget.children[-1]
    assert "repeat(auto-fit" in grid.layout.grid_template_columns
    spans = {name: cell.layout.grid_area for name, cell in zip(explorer.figure_names, grid.children, strict=True)}
    assert spans["middle_placement"] == "auto / 1 / auto / -1" and spans["strip"] is None
    for name, fig in explorer.figures.items():
        shown = explorer._views[name].outputs[0]["data"]["application/vnd.plotly.v1+json"]
        assert [t.get("name") for t in shown["data"]] == [t.name for t in fig.data]
        assert fig.layout.width is None  # no fixed width: the figure fills its cell
    assert explorer.sampler == CreamSampler(4096, 32768)
    assert [t.name for t in explorer.figures["segment_density"].data] == ["head", "middle", "tail"]


def test_slider_updates_state_and_figures(explorer):
    before = explorer.updates
    pmf_before = np.array(next(t.y for t in explorer.figures["middle_placement"].data if t.name == "reference (exact)"))
    explorer.controls["sigma"].value = 1.5
    assert explorer.sigma == 1.5 and explorer.sampler.sigma == 1.5
    assert explorer.updates == before + 1 and explorer.error == ""
    pmf_after = np.array(next(t.y for t in explorer.figures["middle_placement"].data if t.name == "reference (exact)"))
    assert not np.allclose(pmf_before, pmf_after)
    np.testing.assert_allclose(pmf_after, CreamSampler(4096, 32768, sigma=1.5).rand_factor_pmf()[1])
    shown = explorer._views["middle_placement"].outputs[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    bar = next(t for t in shown if t.get("name") == "reference (exact)")  # the view shows the new pmf
    y = bar["y"]
    y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.array(y)
    np.testing.assert_allclose(y, pmf_after)
    # a sharper Gaussian concentrates rand_factor near mu = 9
    assert pmf_after[7] > pmf_before[7]
    assert explorer.last_update_s < 5  # generous: the 200 ms target lives in benchmarks/bench_widgets.py


def test_train_len_and_k_controls(explorer):
    with explorer.hold_updates():
        explorer.controls["train_len"].value = 256
        explorer.controls["target_len"].value = 2048
    assert explorer.error == ""
    assert explorer.controls["k"].value == 32 and explorer.controls["k"].disabled  # auto: 4·factor
    explorer.controls["k_auto"].value = False
    explorer.controls["k"].value = 10
    assert explorer.k == 10 and explorer.sampler.k == 10
    strip = explorer.figures["strip"]
    heads = np.array(strip.data[0].x)
    assert set(heads) <= {10, 256 // 3}
    explorer.controls["k_auto"].value = True
    assert explorer.k is None and explorer.sampler.k == 32


def test_invalid_combination_shows_error_and_keeps_figures(explorer):
    explorer.set_params(train_len=256, target_len=2048, method="cream", middle="reference")
    kept = [list(t.x) for t in explorer.figures["strip"].data]
    updates = explorer.updates
    explorer.controls["target_len"].value = 2000  # not a multiple of N in reference mode
    assert "target_len=2000 must be a multiple of train_len=256" in explorer.error
    assert explorer.updates == updates
    assert [list(t.x) for t in explorer.figures["strip"].data] == kept
    html_error = explorer.error_html.value
    assert "must be a multiple" in html_error and "last valid figures" in html_error
    explorer.controls["middle"].value = "truncnorm"  # non-integer factors are fine there
    assert explorer.error == "" and explorer.updates == updates + 1
    assert explorer.error_html.value == ""


def test_method_switch(explorer):
    explorer.set_params(method="pose", train_len=256, target_len=2048)
    assert explorer.error == "" and explorer.sampler.name == "pose"
    tails = explorer.figures["strip"].data[2].x
    assert all(t == 0 for t in tails)  # PoSE has no tail
    explorer.set_params(method="randpos")
    assert explorer.error == ""
    assert "RandPos" in explorer.figures["middle_placement"].layout.annotations[0].text
    explorer.set_params(method="cream")


def test_unknown_params_and_bad_values():
    with pytest.raises(ValueError, match="unknown parameter"):
        SamplerExplorer(foo=1)
    ex = SamplerExplorer(train_len=256, target_len=2048, n_samples=1000)
    assert not ex.set_params(sigma=-1.0)
    assert "sigma=-1" in ex.error
    assert not ex.set_params(sigma=3.0, n_samples=0) and "n_samples" in ex.error


def test_export_button(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ex = SamplerExplorer(train_len=256, target_len=2048, n_samples=1000)
    assert ex.widget is not None
    ex.export_button.click()
    page = (tmp_path / "creamviz_sampler.html").read_text()
    assert page.count("plotly-graph-div") >= 4 and "train_len=256" in page


def test_widget_coverage_curve_equals_brute_force_distances():
    """The explorer's coverage figure against an independent count: after m samples, the fraction of
    [0, L) that some pair of ids of the first m samples is apart (distance 0 included)."""
    ex = SamplerExplorer(train_len=128, target_len=512, n_samples=2000, seed=3)
    assert ex.error == ""
    curve = np.asarray(ex.figures["coverage"].data[0].y, dtype=float)
    ids = CreamSampler(128, 512).sample(2000, seed=3).position_ids()  # (n, N), the explorer's seed
    seen = np.zeros(512, bool)
    for m in range(1, 31):
        row = ids[m - 1]
        seen[np.abs(row[:, None] - row[None, :]).ravel()] = True
        assert curve[m - 1] == pytest.approx(seen.mean(), abs=1e-12), m
    assert np.all(np.diff(curve) >= 0) and curve[-1] <= 1.0


def test_theorem_explorer():
    ex = TheoremExplorer(train_len=12, target_len=60, head_len=2, tail_len=3)
    assert ex.widget is not None
    assert ex.error == "" and ex.audit.max_span == ex.audit.spans.max()
    assert "largest |D_r|" in ex.verdict and str(ex.audit.max_span) in ex.verdict
    names = [t.name for t in ex.figures["span_profile"].data]
    assert names[:3] == ["|D_r|", "maximal", "conditions hold"]
    ex.controls["head_len"].value = 4
    assert ex.audit.head_len == 4 and "L_h = 4" in ex.verdict
    assert ex.controls["tail_len"].max == 12 - 1 - 4  # the slider's range is the valid one
    assert not ex.set_params(tail_len=9)  # L_h + L_t > N - 1: invalid, figures kept
    assert ex.tail_len == 9 and "tail_len" in ex.error
    assert ex.audit.tail_len == 3
    figs, audit = theorem_figures(12, 60, 4, 3)
    assert describe_audit(audit) == ex.verdict
