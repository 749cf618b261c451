"""SamplerExplorer's link to the measured study: the nearest arm for the current parameters."""

from __future__ import annotations

import json

import pytest

from creamviz.resources import resource_path
from creamviz.widgets.sampler import SamplerExplorer, nearest_study_arm

SUMMARY = json.loads(resource_path("study", "summary.json").read_text())


@pytest.mark.parametrize("params, arm", [
    ({}, "cream"),
    ({"sigma": 6.0}, "cream-sigma6"),
    ({"sigma": 1.4}, "cream-sigma1"),
    ({"middle": "uniform"}, "cream-uniform"),
    ({"p_continuity": 0.95}, "cream-continuity"),
    ({"p_continuity": 0.0}, "cream-relativity"),
])
def test_nearest_cream_arm(params, arm):
    res = nearest_study_arm("cream", 4096, 32768, summary=SUMMARY, **params)  # factor 8, as in the study
    assert res["arm"] == arm
    assert f"{SUMMARY['arms'][arm]['mean'] * 100:.1f} %" in res["text"]


def test_none_near():
    assert nearest_study_arm("cream", 4096, 32768, sigma=4.5, summary=SUMMARY)["arm"] is None  # between 3 and 6
    far = nearest_study_arm("cream", 4096, 16384, summary=SUMMARY)  # factor 4: the study ran at 8
    assert far["arm"] is None and "factor" in far["text"]
    assert nearest_study_arm("cream", 256, 2048, k=5, summary=SUMMARY)["arm"] is None  # non-default k


def test_peer_arm_reports_its_contrast_with_cream():
    res = nearest_study_arm("pose", 256, 2048, summary=SUMMARY)
    c = SUMMARY["contrasts"]["cream-vs-pose"]
    assert res["arm"] == "pose" and f"{-c['diff'] * 100:+.1f} points" in res["text"]


def test_explorer_shows_the_note_headless():
    ex = SamplerExplorer(train_len=256, target_len=2048, n_samples=500)
    assert "Nearest study arm: CREAM (" in ex.study_note
    ex.sigma = 6.0
    assert "σ = 6" in ex.study_note
    ex.target_len = 1024
    assert ex.study_note.startswith("No study arm is near")
    assert any("Measured." in getattr(w, "value", "") for w in ex.widget.children)
