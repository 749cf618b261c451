"""scripts/extend_smollm2.py --cpu-smoke: the whole GPU experiment at tiny sizes (train CREAM and PoSE
with LoRA, evaluate base / CREAM / PoSE, retrieval heads), resumable part by part."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location("extend_smollm2", REPO / "scripts" / "extend_smollm2.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_cpu_smoke_runs_every_part_and_resumes(tmp_path):
    script = load_script()
    out = tmp_path / "smoke"
    assert script.main(["--cpu-smoke", "--out", str(out), "--parts", "train"]) == script.DONE
    for method in ("cream", "pose"):
        final = out / "runs" / method / "final"
        meta = json.loads((final / "creamviz_run.json").read_text())
        assert meta["sampler"]["name"] == method and meta["rope"]["type"] == "yarn" and meta["lora"]["r"] == 4
        assert meta["seed"] == 0 and meta["steps"] == 2
    # the two methods differ only in the sampler
    a, b = (json.loads((out / "runs" / m / "creamviz_train_config.json").read_text()) for m in ("cream", "pose"))
    assert {k for k in a if a[k] != b[k]} == {"sampler", "sampler_params", "out"}
    assert script.main(["--cpu-smoke", "--out", str(out)]) == script.DONE
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"base", "cream", "pose"}
    for rows in summary.values():
        assert rows["litm_kv_3"]["n"] == 3 and rows["litm_kv_3"]["max_new_tokens"] == 8
        assert rows["niah_chat_1024"]["n"] == 1 and rows["passkey_chat_512"]["n"] == 1
        assert "masking_top" in rows["retrieval_heads"]
    # a finished experiment is not redone: nothing is rewritten
    stamp = (out / "results" / "pose" / "litm_kv_3.json").stat().st_mtime_ns
    assert script.main(["--cpu-smoke", "--out", str(out)]) == script.DONE
    assert (out / "results" / "pose" / "litm_kv_3.json").stat().st_mtime_ns == stamp


def test_out_of_time_stops_and_says_so(tmp_path):
    script = load_script()
    assert script.main(["--cpu-smoke", "--out", str(tmp_path / "x"), "--parts", "eval", "--max-minutes", "0"]) \
        == script.OUT_OF_TIME
    assert not list((tmp_path / "x" / "results" / "base").glob("*.json"))
