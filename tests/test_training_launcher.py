"""TrainingLauncher (headless): shared sampler state, background runs with a live loss curve,
cancel with a checkpoint, resume, evaluation figures, inline errors; and the loss-curve builder.

The runs fine-tune the shipped tiny base (N = 256) to L = 2048 for 2-3 steps of batch 2."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from creamviz import figures as F
from creamviz.widgets import SamplerExplorer, TrainingLauncher

RUN = dict(steps=3, batch_size=2, warmup_steps=0, save_every=100, eval_limit=1)
WAIT_S = 600  # generous: the machine is shared


def _explorer(**params) -> SamplerExplorer:
    return SamplerExplorer(train_len=256, target_len=2048, n_samples=300, **params)


# --------------------------------------------------------------------------- figure builder
def test_fig_loss_curve_lines_per_run_and_empty_runs():
    logs = {"cream": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}], "pose": []}
    fig = F.fig_loss_curve(logs, total_steps=10)
    assert [t.name for t in fig.data] == ["CREAM", "CREAM, moving average (0.9)", "PoSE", "PoSE, moving average (0.9)"]
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[0].y) == [2.0, 1.5]
    # debiased EMA by hand: s1 = 0.1*2 / 0.1 = 2; s2 = (0.9*0.2 + 0.1*1.5) / (1 - 0.81) = 0.33 / 0.19
    np.testing.assert_allclose(fig.data[1].y, [2.0, 0.33 / 0.19])
    assert len(fig.data[2].x) == 0 and len(fig.data[3].x) == 0
    assert fig.layout.xaxis.range == (0, 10.5)
    assert fig.data[0].line.color != fig.data[2].line.color
    assert not fig.layout.annotations  # there are steps: no "no steps yet"
    empty = F.fig_loss_curve({"cream": []})
    assert empty.layout.title.text and [a.text for a in empty.layout.annotations] == ["no steps yet"]
    raw = F.fig_loss_curve(logs, smoothing=None)
    assert [t.name for t in raw.data] == ["CREAM", "PoSE"]
    with pytest.raises(ValueError, match="logs"):
        F.fig_loss_curve({})
    with pytest.raises(ValueError, match="smoothing"):
        F.fig_loss_curve(logs, smoothing=1.0)


def test_ema_against_a_long_constant_and_a_step():
    np.testing.assert_allclose(F.ema(np.full(50, 3.0)), 3.0)  # debiased: a constant stays itself
    step = F.ema(np.r_[np.zeros(200), np.ones(30)])  # after a unit step, 1 - 0.9^t of the way up
    np.testing.assert_allclose(step[200:], 1 - 0.9 ** np.arange(1, 31), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="weight"):
        F.ema([1.0], weight=1.0)


# --------------------------------------------------------------------------- state, no training
def test_launcher_shares_the_explorers_sampler_state():
    ex = _explorer()
    la = TrainingLauncher(ex, k=16, middle="uniform")  # shared params given here go to the explorer
    assert (ex.k, ex.middle) == (16, "uniform") and la.error == ""
    assert {n: getattr(la, n) for n in ("method", "train_len", "target_len", "sigma")} == \
        {n: getattr(ex, n) for n in ("method", "train_len", "target_len", "sigma")}
    ex.set_params(method="pose", target_len=1024)  # explorer -> launcher
    assert (la.method, la.target_len) == ("pose", 1024)
    _ = la.widget
    la.controls["method"].value = "cream"  # launcher control -> explorer
    assert ex.method == "cream" and "shared with the SamplerExplorer" in la.summary_html.value
    cfg = la.config(out="x")
    assert cfg.sampler == "cream" and cfg.train_len == 256 and cfg.target_len == 1024
    assert cfg.sampler_params["k"] == 16 and cfg.sampler_params["middle"] == "uniform"
    assert cfg.make_sampler().params["k"] == 16


def test_invalid_parameters_are_inline_errors_and_block_launch(tmp_path):
    ex = _explorer()
    la = TrainingLauncher(ex, out=str(tmp_path / "run"))
    _ = la.widget
    error_html = la.error_html
    la.controls["steps"].value = 0
    assert "steps=0" in la.error and "steps=0" in error_html.value and "creamviz-error" in error_html.value
    assert la.launch() is False and la.status == "idle" and not la.running
    la.controls["steps"].value = 5
    assert la.error == "" and error_html.value == ""
    la.controls["lr"].value = -1.0
    assert "lr=-1.0" in la.error
    la.controls["lr"].value = 1e-3
    ex.train_len = 128  # N below the tiny model's window: CREAM's default k = 4 L / N = 64 > (N - 1) / 2
    assert "k defaults to 4·L/N = 64" in la.error and "N = 128" in la.error
    ex.k = 16  # an explicit k fits: N = 128 is accepted, with both factors explained
    assert la.error == "" and "sampler factor L/N = 16" in la.lengths() and "x8 (L / W)" in la.lengths()
    ex.k = None
    ex.train_len = 256
    ex.sigma = -1.0  # a bad sampler parameter names itself
    assert "sigma" in la.error
    ex.sigma = 3.0
    la.controls["eval_limit"].value = 0
    assert "eval_limit=0" in la.error
    la.controls["eval_limit"].value = 1
    la.model = str(tmp_path / "no-such-model")
    assert "model=" in la.error
    assert la.launch() is False and la.status == "idle"
    with pytest.raises(ValueError, match="explorer"):
        TrainingLauncher(explorer="not an explorer")
    with pytest.raises(ValueError, match="unknown"):
        TrainingLauncher(stepz=3)


def test_worker_thread_output_is_kept_off_the_notebook():
    """Prints from the training thread go to a list; other threads' prints pass through."""
    import io
    import threading

    from creamviz.widgets.training import _ThreadOutput

    sink, passed = [], io.StringIO()
    worker = threading.Thread(target=lambda: print("from the worker", file=stream))
    stream = _ThreadOutput(passed, worker, sink)
    worker.start()
    worker.join()
    print("from the main thread", file=stream)
    assert "".join(sink) == "from the worker\n"
    assert passed.getvalue() == "from the main thread\n"


# --------------------------------------------------------------------------- runs
@pytest.mark.slow
def test_launch_trains_in_the_background_then_evaluates(tmp_path):
    ex = _explorer(k=16)
    la = TrainingLauncher(ex, out=str(tmp_path / "run"), **RUN)
    _ = la.widget
    la.controls["seed"].value = 3
    la.controls["evaluation"].value = "kv"
    assert la.launch() is True
    assert la.status in ("running", "evaluating", "done")  # returned at once: the run is in a thread
    assert la.wait(WAIT_S) == "done", la.error
    assert la.error == "" and not la.running

    # live loss curve: one point per step, also in the figure
    assert [r["step"] for r in la.loss_log] == [1, 2, 3]
    trace = la.figures["loss"].data[0]
    assert list(trace.x) == [1, 2, 3] and list(trace.y) == [r["loss"] for r in la.loss_log]
    assert la.loss_log == [{"step": r["step"], "loss": r["loss"]} for r in la.result.loss_log]
    assert la.progress.value == 3 and la.progress.bar_style == "success"
    assert la.progress.description == "step 3 / 3"

    # the run used the explorer's sampler and the launcher's seed
    meta = json.loads((la.result.final_model / "creamviz_run.json").read_text())
    assert meta["sampler"]["name"] == "cream" and meta["sampler"]["params"]["k"] == 16
    assert meta["seed"] == 3 and meta["rope"]["factor"] == 8.0
    rows = [json.loads(line) for line in (tmp_path / "run" / "positions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2 and all(r["head_len"] == 16 for r in rows if r["branch"] == 0)
    assert any(f.suffix == ".safetensors" for f in la.result.final_model.iterdir())

    # the evaluation: kv retrieval by depth at L = 2048, one prompt per depth
    curve = la.eval_result
    assert curve.length == 2048 and list(curve.n) == [1] * 5
    evaluation = la.figures["evaluation"]
    assert len(evaluation.data) == 1 and evaluation.data[0].name == "CREAM"
    assert list(evaluation.data[0].x) == pytest.approx([0, 25, 50, 75, 100])
    assert "L = 2,048" in evaluation.layout.title.text
    assert all(0 <= y <= 100 for y in evaluation.data[0].y)


@pytest.mark.slow
def test_cancel_keeps_a_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # output dir left blank: runs/launcher/<method>-L<L>-<time> under here
    la = TrainingLauncher(target_len=2048, **{**RUN, "steps": 2})
    _ = la.widget
    assert la.cancel() is False  # nothing to cancel yet
    assert la.launch() is True
    assert la.cancel() is True  # stops after the first step
    assert la.wait(WAIT_S) == "cancelled", la.error
    run_dir = pathlib.Path(la.run_dir)
    assert run_dir.parent == pathlib.Path("runs/launcher")
    ckpt = run_dir / "checkpoint-1"
    assert (ckpt / "model.safetensors").is_file()
    assert la.step == 1 and la.result.final_model is None and str(ckpt) in la.message
    assert "(cancel pressed at step 0)" in la.message  # pressed before the first step reported
    assert not la.message.startswith("cancelled") and la.progress.description == "step 1 / 2"
    assert "Evaluation" in la.figures["evaluation"].layout.title.text  # a placeholder, no stale title

    # launching again into the same directory without resume fails in the thread -> inline error
    la.out = str(run_dir)
    assert la.launch() is True
    assert la.wait(WAIT_S) == "failed"
    assert "already holds checkpoints" in la.error and "Traceback" not in la.error
    assert "creamviz-error" in la.error_html.value

    # resume with the output dir blank continues the same run from checkpoint-1; perplexity this time
    la.out = ""
    la.resume = True
    la.evaluation = "ppl"
    assert la.error == ""
    assert la.launch() is True
    assert [r["step"] for r in la.loss_log] == [1]  # the checkpoint's losses, before the thread reports
    assert la.wait(WAIT_S) == "done", la.error
    assert pathlib.Path(la.run_dir) == run_dir
    assert la.result.resumed_from == ckpt and la.result.steps_done == 2
    assert [r["step"] for r in la.result.loss_log] == [1, 2] and [r["step"] for r in la.loss_log] == [1, 2]
    assert [r["loss"] for r in la.loss_log] == [r["loss"] for r in la.result.loss_log]
    assert list(la.figures["loss"].data[0].x) == [1, 2]  # the live curve keeps step 1
    assert la.progress.description == "step 2 / 2" and not la.message.startswith("done")
    # this launch ran one step (2 of 2, resumed at 1): the message counts that one, not the run's total
    assert la.message.startswith("1 steps in ") and "steps 2–2 of 2, resumed at 1" in la.message, la.message
    ppl = la.eval_result
    assert ppl.length == 2048 and (ppl.nll > 0).all()
    assert la.figures["evaluation"].data[0].name == "CREAM"
    assert pathlib.Path(la.export_html(tmp_path / "run.html")).stat().st_size > 0


def test_launcher_defaults_match_the_notebooks():
    from creamviz.experiment import ExperimentConfig

    assert TrainingLauncher.lr.default_value == ExperimentConfig().lr


def test_progress_text_counts_steps_and_eta():
    from creamviz.widgets.training import progress_text

    assert progress_text(0, 10, 0.0, 0) == "step 0 / 10"
    assert progress_text(2, 10, 4.0, 0) == "step 2 / 10 · ETA 0:16"  # 2 s per step, 8 steps left
    assert progress_text(7, 10, 60.0, 5) == "step 7 / 10 · ETA 1:30"  # resumed at 5: 30 s per step
    assert progress_text(10, 10, 9.0, 0) == "step 10 / 10"


def test_live_loss_curve_is_redrawn_at_most_every_live_redraw_s(monkeypatch):
    # many loss reports in a burst: one redraw per LIVE_REDRAW_S, not one per step
    from creamviz.widgets import training as launcher_module

    la = TrainingLauncher(target_len=2048, **{**RUN, "steps": 500})
    drawn = []
    monkeypatch.setattr(la, "_show", lambda name, fig: drawn.append((name, len(fig.data[0].x))))
    clock = iter(100 + i * 0.01 for i in range(10_000))  # each report 10 ms after the previous one
    monkeypatch.setattr(launcher_module.time, "perf_counter", lambda: next(clock))
    for step in range(1, 201):  # 2 s of reports
        la._add_loss(step, 1.0)
    redraws = [n for name, n in drawn if name == "loss"]
    assert 3 <= len(redraws) <= 2.0 / launcher_module.LIVE_REDRAW_S + 1, redraws
    assert redraws == sorted(redraws) and redraws[0] == 1  # points are appended, the first drawn at once
    la._redraw_loss()  # what the run's end does: the last points appear
    assert drawn[-1] == ("loss", 200)
