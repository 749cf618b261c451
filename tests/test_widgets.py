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
    sampler_figures,
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


def test_plain_function_equals_widget():
    ex = SamplerExplorer(train_len=256, target_len=2048, n_samples=2000, seed=3)
    figs = sampler_figures(CreamSampler(256, 2048), 2000, 3)
    for name, fig in figs.items():
        assert [t.name for t in fig.data] == [t.name for t in ex.figures[name].data]
        for a, b in zip(fig.data, ex.figures[name].data, strict=True):
            np.testing.assert_array_equal(np.asarray(a.y), np.asarray(b.y))


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


def test_randpos_coverage_curve_matches_brute_force():
    # the explorer's RandPos coverage (direct pair differences, or the FFT path past the budget) is the
    # running union of D_r = {p_j - p_i : i <= j}, computed here with Python sets
    from creamviz.samplers import RandPosSampler
    from creamviz.widgets import sampler as sampler_module

    for big_n, big_l, n in ((5, 40, 30), (12, 60, 20), (30, 500, 8)):
        ids = RandPosSampler(big_n, big_l).position_ids(n, seed=1)
        seen, expected = set(), []
        for row in ids.tolist():
            seen |= {b - a for i, a in enumerate(row) for b in row[i:]}
            expected.append(len(seen) / big_l)
        np.testing.assert_allclose(sampler_module.ids_coverage_curve(ids, big_l), expected)
        # the FFT path (forced by a zero pair budget) agrees on the samples it uses
        budget = sampler_module.COVERAGE_PAIRS_BUDGET
        try:
            sampler_module.COVERAGE_PAIRS_BUDGET = 0
            fft = sampler_module.ids_coverage_curve(ids, big_l)
        finally:
            sampler_module.COVERAGE_PAIRS_BUDGET = budget
        np.testing.assert_allclose(fft, expected[:len(fft)])


def test_randpos_explorer_at_the_largest_settings_is_bounded():
    # N = 8192, L = 262144, 200k samples asked: the ids, keys and FFT work are capped, the strip is a
    # heatmap (not 98k markers), and the figures say how many samples they show
    from creamviz.samplers import RandPosSampler

    figs = sampler_figures(RandPosSampler(8192, 262144), 200_000, 0)
    assert figs["strip"].data[0].type == "heatmap" and np.asarray(figs["strip"].data[0].z).shape == (12, 512)
    z = np.asarray(figs["strip"].data[0].z)
    np.testing.assert_allclose(z.sum(axis=1) * 512, 8192)  # each row: N ids spread over 512 bins of 512 positions
    assert "16 samples" in figs["segment_density"].layout.title.text
    assert figs["coverage"].layout.title.text.endswith("after 1 … 4 samples")
    assert sum(len(f.to_json()) for f in figs.values()) < 300_000  # was 2.2 MB of strip markers


def test_randpos_distance_frequency_matches_brute_force():
    # the RoPE explorer's RandPos distance frequency: the share of samples whose D_r holds d, by sets
    from creamviz.samplers import RandPosSampler
    from creamviz.widgets import sampler as sampler_module

    for big_n, big_l in ((5, 40), (16, 300)):
        sampler = RandPosSampler(big_n, big_l)
        freq, n = sampler_module.ids_distance_frequency(sampler, 25, seed=2)
        ids = sampler.position_ids(n, seed=2).tolist()
        sets = [{b - a for i, a in enumerate(row) for b in row[i:]} for row in ids]
        np.testing.assert_allclose(freq, [sum(d in s for s in sets) / n for d in range(big_l)])
    freq, n = sampler_module.ids_distance_frequency(RandPosSampler(16384, 262144), 20_000)
    assert n == 4 and freq[0] == 1.0 and freq.shape == (262144,)  # FFT path, 2^20 / L samples


def test_auto_parameters_show_a_plain_grey_value_not_an_editable_readout():
    ex = SamplerExplorer(train_len=256, target_len=2048)
    _ = ex.widget
    k, note, auto = ex.controls["k"], ex.controls["k_note"], ex.controls["k_auto"]
    assert ex.k is None and auto.value and k.disabled and not k.readout  # no contenteditable readout
    assert "= 32 (auto: 4·L/N)" in note.value and "color:#888" in note.value  # 4 L / N at N = 256, L = 2048
    ex.target_len = 4096
    assert "= 64 (auto" in note.value
    auto.value = False  # untick: the slider and its readout take over, with the value it showed
    assert ex.k == 64 and not k.disabled and k.readout and note.value == ""
    ex.k = None
    assert k.disabled and "(auto" in note.value and auto.value


def test_target_len_slider_steps_over_valid_l_only_in_reference_mode():
    from creamviz.widgets import RopeExplorer

    ex = SamplerExplorer(train_len=256, target_len=2048)
    _ = ex.widget
    slider = ex.controls["target_len"]
    # every value the slider can land on is a valid reference-mode L = m N, m >= 2
    values = range(slider.min, slider.max + 1, slider.step)
    assert (slider.step, slider.min) == (256, 512) and all(v % 256 == 0 and v >= 512 for v in values)
    ex.middle = "truncnorm"
    assert (slider.step, slider.min) == (16, 32) and ex.target_len == 2048  # the state is never touched
    rope_ex = RopeExplorer()
    _ = rope_ex.widget
    rope_ex.target_len = 40000  # typed: the error names a control the explorer has
    assert "middle='truncnorm'" in rope_ex.error and "middle" in rope_ex.controls
    assert rope_ex.controls["middle"].layout.display == "" and rope_ex.controls["target_len"].step == 4096
    rope_ex.middle = "truncnorm"
    assert rope_ex.error == "" and rope_ex.controls["target_len"].step == 64


def test_hiding_the_middle_control_hides_nothing_else():
    # the RoPE explorer hides CREAM's middle control for other samplers: no other control shares its layout
    from creamviz.widgets import RopeExplorer

    ex = RopeExplorer(model="tiny", train_len=256, target_len=2048)
    _ = ex.widget
    ex.method = "randpos"
    assert ex.controls["middle"].layout.display == "none"
    hidden = [k for k, c in ex.controls.items() if k != "middle" and c.layout.display == "none"]
    assert hidden == [], hidden
