"""A user's sampler, registered once, shows up everywhere; a parameter added to a sampler appears in
the CLI, both widgets and the run metadata without touching them. The CLEX example is the code of
docs/custom_sampler.md, executed as written."""

from __future__ import annotations

import itertools
import json
import pathlib
import re

import numpy as np
import pytest
from scipy import stats

from creamviz import samplers
from creamviz.samplers import (
    SAMPLERS,
    CreamSampler,
    Param,
    make_sampler,
    register_sampler,
    unregister_sampler,
)

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "custom_sampler.md"


def _doc_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def clex():
    """Run the doc's first Python block (it defines and registers ClexSampler); unregister after."""
    namespace: dict = {}
    exec(compile(_doc_blocks("python")[0], str(DOC), "exec"), namespace)  # noqa: S102 - the documented example
    try:
        yield namespace["ClexSampler"]
    finally:
        unregister_sampler("clex")


def test_clex_ids_match_a_brute_force_enumeration(clex):
    """N = 4, L = 8: t = 1 gives 0..3 (prob 1/2); t = 2 gives 0, 7 and 2 of {1..6} (15 sets, 1/30 each)."""
    big_n, big_l, n = 4, 8, 30_000
    sampler = make_sampler("clex", train_len=big_n, target_len=big_l)
    assert sampler.max_factor == 2 and sampler.params == {"train_len": 4, "target_len": 8, "max_factor": 2}
    ids = sampler.position_ids(n, seed=0)
    assert ids.shape == (n, big_n) and ids.dtype == np.int64
    assert (np.diff(ids, axis=1) > 0).all() and ids.min() == 0 and ids.max() <= big_l - 1
    expected = {(0, 1, 2, 3): 0.5}
    expected |= {(0, a, b, 7): 0.5 / 15 for a, b in itertools.combinations(range(1, 7), 2)}
    seen = {}
    for row in map(tuple, ids.tolist()):
        seen[row] = seen.get(row, 0) + 1
    assert set(seen) <= set(expected)
    keys = sorted(expected)
    observed = np.array([seen.get(k, 0) for k in keys])
    assert stats.chisquare(observed, np.array([expected[k] for k in keys]) * n).pvalue > 1e-4
    np.testing.assert_array_equal(ids, sampler.position_ids(n, seed=0))  # seeded
    with pytest.raises(ValueError, match=r"max_factor=3 .*\[1, 2\]"):
        make_sampler("clex", train_len=4, target_len=8, max_factor=3)


@pytest.mark.slow  # the launcher's first model read imports transformers (~15 s on 2 busy cores)
def test_clex_runs_through_the_explorer_and_the_launcher(clex):
    from creamviz.widgets import SamplerExplorer, TrainingLauncher

    ex = SamplerExplorer(method="clex", train_len=256, target_len=2048, n_samples=400)
    _ = ex.widget
    assert ex.error == "" and isinstance(ex.sampler, clex)
    assert "clex" in ex.controls["method"].options
    assert ex.figures["strip"].layout.title.text.endswith("clex position vectors")
    assert ex.figures["coverage"].data[0].name == "clex" and 0 < ex.figures["coverage"].data[0].y[-1] <= 1
    assert ex.param_boxes["max_factor"].layout.display == "" and ex.param_boxes["sigma"].layout.display == "none"
    assert (ex.controls["max_factor"].min, ex.controls["max_factor"].max) == (1, 8)  # valid: 1 .. L // N
    ex.controls["max_factor_auto"].value = False
    ex.controls["max_factor"].value = 2
    assert ex.error == "" and ex.sampler.max_factor == 2
    assert np.asarray(ex.figures["strip"].data[0].x).max() <= 2 * 256 - 1  # t <= 2
    la = TrainingLauncher(ex)
    cfg = la.config(out="unused")
    assert cfg.sampler == "clex" and cfg.sampler_params == {"max_factor": 2}
    assert cfg.make_sampler() == clex(256, 2048, max_factor=2)


@pytest.mark.slow
def test_clex_trains_two_steps_through_the_cli(clex, tmp_path):
    from creamviz.cli import main

    out = tmp_path / "run"
    assert main(["train", "--sampler", "clex", "--max-factor", "4", "--target-len", "1024", "--steps", "2",
                 "--batch-size", "2", "--save-every", "100", "--warmup-steps", "0", "--rope", "yarn",
                 "--out", str(out), "--no-progress"]) == 0
    meta = json.loads((out / "final" / "creamviz_run.json").read_text())
    assert meta["sampler"] == {"name": "clex", "params": {"train_len": 256, "target_len": 1024, "max_factor": 4}}
    rows = [json.loads(line) for line in (out / "positions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2
    for row in rows:  # the collator drew CLEX ids: 0 first, t·N - 1 last with t <= 4, increasing
        ids = np.array(row["position_ids"])
        assert ids[0] == 0 and (np.diff(ids) > 0).all() and (ids[-1] + 1) % 256 == 0 and ids[-1] < 4 * 256


def test_a_parameter_added_to_a_sampler_appears_everywhere():
    """A throwaway sampler with one extra declared parameter: the CLI flag, both widgets' traits and
    controls, the launcher's config and the run metadata (``sampler.params``) all carry it."""
    from creamviz import cli
    from creamviz.widgets import SamplerExplorer, TrainingLauncher

    @register_sampler
    class Throwaway(CreamSampler):
        name = "throwaway"
        parameters = CreamSampler.parameters + (
            Param("stride", int, 3, "a parameter no file mentions", symbol="s", low=1, high=9),)

    try:
        assert "stride" in samplers.sampler_parameters()
        flags = {a.dest: a for a in cli.build_parser("train")._actions}
        assert flags["stride"].option_strings == ["--stride"] and "no file mentions" in flags["stride"].help
        assert cli.build_parser("train").parse_args(["--stride", "5"]).stride == 5

        ex = SamplerExplorer(method="throwaway", train_len=256, target_len=2048, n_samples=300)
        _ = ex.widget
        assert ex.stride == 3 and ex.error == "" and ex.sampler.stride == 3
        assert (ex.controls["stride"].min, ex.controls["stride"].max) == (1, 9)
        ex.controls["stride"].value = 7
        assert ex.sampler.params["stride"] == 7  # the run metadata records sampler.params
        ex.set_params(method="cream")
        assert ex.param_boxes["stride"].layout.display == "none"  # cream does not declare it

        la = TrainingLauncher(ex, method="throwaway")
        assert la.stride == 7 and la.config(out="unused").sampler_params["stride"] == 7
        _ = la.widget
        assert "s = 7" in la.summary_html.value
        ex.set_params(stride=0)
        assert "stride=0" in ex.error and "stride=0" in la.error
    finally:
        unregister_sampler("throwaway")
    assert "throwaway" not in SAMPLERS and "stride" not in samplers.sampler_parameters()


def test_register_sampler_refuses_what_would_break_the_registry():
    class NotASampler:
        name = "x"

    with pytest.raises(ValueError, match="subclass"):
        register_sampler(NotASampler)

    class Clash(CreamSampler):
        name = "cream"

    with pytest.raises(ValueError, match="already registered"):
        register_sampler(Clash)

    class WrongKind(CreamSampler):
        name = "wrongkind"
        parameters = (Param("sigma", int, 3, "sigma as an int", low=1),)

    with pytest.raises(ValueError, match="sigma: int"):
        register_sampler(WrongKind)
    with pytest.raises(ValueError, match="auto"):
        Param("x", int, None, "no rule")
    with pytest.raises(ValueError, match="identifier"):
        Param("train_len", int, 1, "reserved")
