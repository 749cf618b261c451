"""TrainingLauncher: fine-tune with the sampler you just explored, watch the loss, evaluate.

The launcher is a traitlets state object like the explorers. Given a :class:`SamplerExplorer`,
its sampler traits (method, N = ``train_len``, L = ``target_len``, k, mu, sigma, p_continuity,
middle) are *linked* to the explorer's, so the position ids trained with are the ones on screen.
It adds the run's own traits (model, RoPE interpolation, steps, learning rate, seed, output
directory, evaluation) and runs :func:`creamviz.training.train` in a background thread: the
notebook stays responsive, a progress bar and a live loss curve follow the run, ``cancel()``
stops it after the current step *with* a checkpoint (resume later with ``resume=True``), and a
completed run is evaluated at L with the chosen evaluation and plotted with the
``creamviz.figures`` builders. Problems (bad parameters, failures inside the thread) go to
``.error`` and are shown inline, never as a traceback.

    explorer = SamplerExplorer(train_len=256, target_len=2048)
    launcher = TrainingLauncher(explorer, steps=200)
    launcher            # the widget: press "launch"
    launcher.launch(); launcher.wait()   # the same from code
"""

from __future__ import annotations

import html
import sys
import threading
import time
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go
import traitlets as T

from creamviz import figures as F
from creamviz.report import Section, write_report
from creamviz.samplers import MIDDLE_MODES, SAMPLERS
from creamviz.widgets.base import ExplorerBase, _json_safe
from creamviz.widgets.sampler import SamplerExplorer

__all__ = ["TrainingLauncher", "EVALUATIONS", "SHARED_PARAMS"]

SHARED_PARAMS = ("method", "train_len", "target_len", "k", "mu", "sigma", "p_continuity", "middle")
EVALUATIONS = {  # evaluation trait value -> label
    "kv": "key-value retrieval by depth at L",
    "niah": "needle in a haystack: length x depth grid up to L",
    "ppl": "perplexity by position at L",
}
STATUSES = ("idle", "running", "evaluating", "done", "cancelled", "failed")


def _live_callback(launcher: TrainingLauncher):
    """A ``TrainerCallback`` feeding the launcher's progress and loss curve from inside
    ``Trainer.train`` (worker thread). Built on demand: importing transformers takes seconds."""
    from transformers import TrainerCallback

    class LiveCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            launcher.step = int(state.global_step)  # > 0 when resuming

        def on_step_end(self, args, state, control, **kwargs):
            launcher.step = int(state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                launcher._add_loss(int(state.global_step), float(logs["loss"]))

    return LiveCallback()


class _ThreadOutput:
    """A ``sys.stdout`` / ``sys.stderr`` stand-in that keeps one thread's writes (the Trainer's log
    prints) in a list and passes every other thread's writes through unchanged."""

    def __init__(self, stream, thread: threading.Thread, sink: list[str]) -> None:
        self._stream, self._thread, self._sink = stream, thread, sink

    def write(self, text: str) -> int:
        if threading.current_thread() is self._thread:
            self._sink.append(text)
            return len(text)
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class TrainingLauncher(ExplorerBase):
    """State + view of one fine-tuning run (see the module docstring).

    Sampler traits (linked to ``explorer`` when one is given): ``method``, ``train_len`` (N; None
    = the model's pre-trained window, and any other value is refused: CREAM fine-tunes on windows
    of exactly the pre-trained length), ``target_len`` (L), ``k``, ``mu``, ``sigma``,
    ``p_continuity``, ``middle``. Run traits: ``model`` ("tiny" or a local HF directory), ``rope``
    (linear / yarn, factor L / N), ``steps``, ``lr``, ``warmup_steps``, ``batch_size``, ``seed``,
    ``save_every``, ``out`` ('' = ``runs/launcher/<method>-L<L>-<time>``), ``resume``, ``data``
    ("mix" = text + retrieval tasks, "text" = corpus text), ``evaluation`` (kv / niah / ppl) and
    ``eval_limit`` (examples per depth, per NIAH cell, or sequences for perplexity).

    Run state: ``status`` (idle / running / evaluating / done / cancelled / failed), ``step``,
    ``message``, ``.loss_log`` (rows ``{"step", "loss"}``), ``.result`` (``TrainResult``),
    ``.eval_result`` (``DepthCurve`` / ``NiahGrid`` / ``PplCurve``); figures ``"loss"`` and
    ``"evaluation"`` in ``.figures``.
    """

    # ---- sampler (shared with the SamplerExplorer) ----
    method = T.Enum(sorted(SAMPLERS), default_value="cream")
    train_len = T.Int(None, allow_none=True)
    target_len = T.Int(2048)
    k = T.Int(None, allow_none=True)
    mu = T.Float(None, allow_none=True)
    sigma = T.Float(3.0)
    p_continuity = T.Float(0.5)
    middle = T.Enum(list(MIDDLE_MODES), default_value="reference")
    # ---- the run ----
    model = T.Unicode("tiny")
    rope = T.Enum(["linear", "yarn"], default_value="yarn")  # linear x8 breaks the byte-level tiny model
    steps = T.Int(100)
    lr = T.Float(3e-4)
    warmup_steps = T.Int(10)
    batch_size = T.Int(8)
    seed = T.Int(0)
    save_every = T.Int(50)
    out = T.Unicode("")
    resume = T.Bool(False)
    data = T.Enum(["mix", "text"], default_value="mix")
    evaluation = T.Enum(list(EVALUATIONS), default_value="kv")
    eval_limit = T.Int(5)
    # ---- run state (not parameters) ----
    status = T.Enum(list(STATUSES), default_value="idle")
    step = T.Int(0)  # optimizer steps done in the current run
    message = T.Unicode("")  # one line about the current run

    figure_names = ("loss", "evaluation")
    param_names = SHARED_PARAMS + ("model", "rope", "steps", "lr", "warmup_steps", "batch_size", "seed",
                                   "save_every", "out", "resume", "data", "evaluation", "eval_limit")

    def __init__(self, explorer: SamplerExplorer | None = None, **params) -> None:
        if explorer is not None and not isinstance(explorer, SamplerExplorer):
            raise ValueError(f"explorer must be a SamplerExplorer or None, got {type(explorer).__name__}")
        self.explorer = explorer
        self.result = None  # TrainResult of the last run
        self.eval_result = None  # DepthCurve / NiahGrid / PplCurve of the last completed run
        self.loss_log: list[dict] = []
        self.output_log: list[str] = []  # what the Trainer printed in the worker thread
        self._thread: threading.Thread | None = None
        self._stop = None  # StopCallback of the current run
        self._windows: dict[str, int] = {}  # model -> pre-trained window N
        self._launch_target = 0  # steps of the current run
        if explorer is not None:  # shared parameters given here are set on the explorer first
            shared = {n: params.pop(n) for n in SHARED_PARAMS if n in params}
            if shared:
                explorer.set_params(**shared)
            params = {**{n: getattr(explorer, n) for n in SHARED_PARAMS}, **params}
        super().__init__(**params)
        self._links = []
        if explorer is not None:
            with self.hold_updates():
                self._links = [T.link((explorer, n), (self, n)) for n in SHARED_PARAMS]
        self._show("loss", F.fig_loss_curve({self.method: []}, total_steps=max(1, self.steps)))

    # ---- parameters -> TrainConfig ----------------------------------------------------------
    def model_window(self) -> int:
        """The pre-trained window N of ``model`` (cached)."""
        if self.model not in self._windows:
            from creamviz.training import model_window

            try:
                self._windows[self.model] = model_window(self.model)
            except ValueError as err:
                raise ValueError(f"model={self.model!r}: {err}") from None
            except Exception as err:  # noqa: BLE001 - a missing directory, a broken config
                raise ValueError(f"model={self.model!r} cannot be read ({type(err).__name__}: {err}); "
                                 "valid: 'tiny' or a local Hugging Face causal-LM directory") from None
        return self._windows[self.model]

    def config(self, *, out: str | None = None):
        """The :class:`~creamviz.training.TrainConfig` the traits describe (ValueError if invalid)."""
        from creamviz.training import TrainConfig

        window = self.model_window()
        big_n = window if self.train_len is None else self.train_len
        if big_n != window:
            src = "the SamplerExplorer's" if self.explorer is not None else "train_len"
            raise ValueError(
                f"N = train_len = {big_n} ({src}) differs from the pre-trained window N = {window} of "
                f"model={self.model!r}: fine-tuning feeds windows of the pre-trained length; set N to {window}")
        if isinstance(self.eval_limit, bool) or self.eval_limit < 1 or self.eval_limit > 1000:
            raise ValueError(f"eval_limit={self.eval_limit} is out of range: valid is [1, 1000]")
        sampler_params = {}
        if self.method == "cream":
            sampler_params = {"k": self.k, "mu": self.mu, "sigma": self.sigma,
                              "p_continuity": self.p_continuity, "middle": self.middle}
        cfg = TrainConfig(
            model=self.model, sampler=self.method, sampler_params=sampler_params, rope=self.rope,
            train_len=big_n, target_len=self.target_len, steps=self.steps, lr=self.lr,
            warmup_steps=self.warmup_steps, batch_size=self.batch_size, seed=self.seed,
            save_every=self.save_every, out=out if out is not None else (self.out or "runs/launcher/auto"),
            resume=self.resume, data=None if self.data == "text" else "mix", progress=False)
        cfg.validate()
        cfg.make_sampler()  # ValueError naming the sampler parameter
        return cfg

    def _compute(self) -> dict[str, go.Figure]:
        self.config()  # validation only; the figures change when a run reports
        return {}

    # ---- the run ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def launch(self) -> bool:
        """Start training in a background thread. Returns False (and sets ``.error``) if the
        parameters are invalid or a run is already going."""
        from creamviz.training import StopCallback

        if self.running:
            self.error = "a run is already in progress: cancel it or wait for it to finish"
            return False
        out = self.out or f"runs/launcher/{self.method}-L{self.target_len}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            cfg = self.config(out=out)
        except ValueError as err:
            self.error = str(err)
            return False
        self.error = ""
        self.result, self.eval_result, self.loss_log = None, None, []
        self._launch_target = cfg.steps
        self._stop = StopCallback(save=True)  # before the thread starts, so cancel() works at once
        self.step = 0
        self.message = f"training {cfg.sampler} N = {cfg.train_len} -> L = {cfg.target_len} for {cfg.steps} steps in {out}"
        self.status = "running"
        self._show("loss", F.fig_loss_curve({cfg.sampler: []}, total_steps=cfg.steps,
                                            title=f"Fine-tuning loss ({cfg.sampler}, N = {cfg.train_len} → L = {cfg.target_len:,})"))
        self._show("evaluation", go.Figure())
        self._thread = threading.Thread(target=self._run, args=(cfg,), name="creamviz-train", daemon=True)
        self._thread.start()
        return True

    def cancel(self) -> bool:
        """Stop the run after the current optimizer step, saving a checkpoint there (a later
        launch with ``resume=True`` continues from it). Returns whether a run was going."""
        if not self.running or self._stop is None:
            return False
        self._stop.request()
        if self.status == "running":
            self.message = "cancelling: stopping after the current step and saving a checkpoint …"
        return True

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run (training and evaluation) ends or ``timeout`` seconds pass; the status."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status

    def _add_loss(self, step: int, loss: float) -> None:
        self.loss_log.append({"step": step, "loss": loss})
        fig = self.figures["loss"]
        if fig.data:
            with fig.batch_update():
                fig.data[0].x = [r["step"] for r in self.loss_log]
                fig.data[0].y = [r["loss"] for r in self.loss_log]

    def _run(self, cfg) -> None:
        from transformers.utils import logging as hf_logging

        from creamviz.training import train

        me = threading.current_thread()
        saved = sys.stdout, sys.stderr
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars would pop up in whichever cell runs now
        sys.stdout = _ThreadOutput(sys.stdout, me, self.output_log)
        sys.stderr = _ThreadOutput(sys.stderr, me, self.output_log)
        try:
            result = train(cfg, callbacks=[self._stop, _live_callback(self)])
            self.result = result
            self.step = result.steps_done
            if not result.completed:
                kept = result.checkpoints[-1] if result.checkpoints else None
                self.message = (f"cancelled at step {result.steps_done}/{cfg.steps}; checkpoint kept in {kept}. "
                                "Tick 'resume' and launch again to continue from it.")
                self.status = "cancelled"
                return
            self.status = "evaluating"
            self.message = f"trained {result.steps_done} steps in {result.wall_time_s:.1f} s; evaluating ({EVALUATIONS[self.evaluation]}) …"
            self.eval_result, fig = self._evaluate(cfg, result.final_model)
            self._show("evaluation", fig)
            rate = result.steps_done / max(result.wall_time_s, 1e-9)
            last = f", final loss {self.loss_log[-1]['loss']:.3f}" if self.loss_log else ""
            self.message = (f"done: {result.steps_done} steps in {result.wall_time_s:.1f} s ({rate:.2f} steps/s){last}; "
                            f"model in {result.final_model}")
            self.status = "done"
        except ValueError as err:
            self.error = str(err)
            self.message = "the run failed"
            self.status = "failed"
        except Exception as err:  # noqa: BLE001 - shown inline, never a traceback
            self.error = f"{type(err).__name__}: {err}"
            self.message = "the run failed"
            self.status = "failed"
        finally:
            if bars:
                hf_logging.enable_progress_bar()
            for name, stream in zip(("stdout", "stderr"), saved, strict=True):
                current = getattr(sys, name)
                if isinstance(current, _ThreadOutput) and current._thread is me:
                    setattr(sys, name, stream)

    def _evaluate(self, cfg, final_model: Path):
        """Evaluate the fine-tuned model at L; returns (result dataclass, figure)."""
        from creamviz import evaluate, models, tasks

        model = models.load_model(final_model)
        tok = models.load_tokenizer(cfg.model)
        big_l, big_n, label, limit = cfg.target_len, cfg.train_len, cfg.sampler, self.eval_limit
        after = f"after {cfg.steps} steps of {label}"
        if self.evaluation == "kv":
            name = f"kv_L{big_l}"
            if name in tasks.eval_set_names():  # the shipped fixed set: comparable across runs
                curve = evaluate.evaluate_eval_set(model, tok, name, limit=limit)
            else:
                curve = evaluate.accuracy_by_depth(model, tok, task="kv", length=big_l, n_per_depth=limit)
            title = f"Key-value retrieval by depth at L = {big_l:,} ({after}; {int(curve.n.sum())} prompts)"
            return curve, F.fig_accuracy_by_depth({label: curve}, title=title)
        if self.evaluation == "niah":
            lengths = tuple(sorted({x for x in tasks.EVAL_LENGTHS if x <= big_l} | {big_l}))
            if lengths == tuple(tasks.EVAL_LENGTHS) and "niah" in tasks.eval_set_names():
                grid = evaluate.evaluate_eval_set(model, tok, "niah", limit=limit)
            else:
                grid = evaluate.niah_grid(model, tok, lengths=lengths, n_per_cell=limit)
            return grid, F.fig_niah_heatmap(grid, window=big_n, title=f"Needle in a haystack ({after})")
        curve = evaluate.ppl_by_position(model, tok, length=big_l, bucket=max(1, big_l // 8), n_seqs=limit,
                                         batch_size=1)
        return curve, F.fig_ppl_by_position({label: curve}, window=big_n,
                                            title=f"Perplexity by position at L = {big_l:,} ({after})")

    def _show(self, name: str, fig: go.Figure) -> None:
        widget = self.figures[name]
        with widget.batch_update():
            widget.data = ()
            widget.add_traces([_json_safe(trace) for trace in fig.data])
            widget.layout = fig.layout

    # ---- view -------------------------------------------------------------------------------
    def _sampler_summary(self) -> str:
        try:
            window = self.model_window()
        except ValueError:
            window = None
        n = self.train_len if self.train_len is not None else window
        factor = f"{self.target_len / n:g}" if n else "?"
        parts = [f"<b>{html.escape(self.method)}</b>", f"N = {n}", f"L = {self.target_len:,}", f"factor L/N = {factor}"]
        if self.method == "cream":
            parts += [f"k = {'auto' if self.k is None else self.k}", f"μ = {'auto' if self.mu is None else self.mu}",
                      f"σ = {self.sigma:g}", f"p continuity = {self.p_continuity:g}", f"middle = {self.middle}"]
        source = " (shared with the SamplerExplorer)" if self.explorer is not None else ""
        return f"Position sampler{source}: " + ", ".join(parts)

    @property
    def widget(self) -> W.Widget:
        """Controls, launch / cancel buttons, progress bar, status line, inline error, figures."""
        if self._widget is None:
            style = {"description_width": "110px"}
            layout = W.Layout(width="330px")
            c = {
                "method": W.Dropdown(options=sorted(SAMPLERS), description="sampler", style=style, layout=layout),
                "target_len": W.IntText(description="L (target_len)", style=style, layout=layout),
                "rope": W.Dropdown(options=["linear", "yarn"], description="RoPE", style=style, layout=layout),
                "steps": W.IntText(description="steps", style=style, layout=layout),
                "lr": W.FloatText(description="learning rate", style=style, layout=layout),
                "warmup_steps": W.IntText(description="warm-up steps", style=style, layout=layout),
                "batch_size": W.IntText(description="batch size", style=style, layout=layout),
                "seed": W.IntText(description="seed", style=style, layout=layout),
                "data": W.Dropdown(options=[("text + retrieval tasks", "mix"), ("corpus text", "text")],
                                   description="data", style=style, layout=layout),
                "evaluation": W.Dropdown(options=[(v, k) for k, v in EVALUATIONS.items()], description="evaluation",
                                         style=style, layout=layout),
                "eval_limit": W.IntText(description="eval examples", style=style, layout=layout,
                                        tooltip="per depth (kv), per cell (niah), sequences (ppl)"),
                "out": W.Text(description="output dir", placeholder="runs/launcher/<method>-L<L>-<time>",
                              style=style, layout=layout),
                "resume": W.Checkbox(description="resume from the last checkpoint in the output dir",
                                     indent=False),
            }
            for name, control in c.items():
                control.value = getattr(self, name)
                W.link((control, "value"), (self, name))
            self.controls = c
            summary = W.HTML(self._sampler_summary())
            self.observe(lambda _: setattr(summary, "value", self._sampler_summary()), names=list(SHARED_PARAMS) + ["model"])
            launch = W.Button(description="launch", icon="play", button_style="primary")
            cancel = W.Button(description="cancel", icon="stop", tooltip="stop after this step, keep a checkpoint")
            launch.on_click(lambda _: self.launch())
            cancel.on_click(lambda _: self.cancel())
            progress = W.IntProgress(min=0, max=max(1, self.steps), description="step 0", style=style)
            status = W.HTML()
            error = W.HTML()

            def show_state(_=None):
                busy = self.status in ("running", "evaluating")
                launch.disabled, cancel.disabled = busy, self.status != "running"
                progress.max = max(1, self._launch_target or self.steps)
                progress.value = min(self.step, progress.max)
                progress.description = f"step {self.step}"
                progress.bar_style = {"done": "success", "cancelled": "warning", "failed": "danger"}.get(self.status, "")
                status.value = f"<b>{self.status}</b> <span style='color:#666'>{html.escape(self.message)}</span>"

            def show_error(_=None):
                error.value = ("" if not self.error else
                               f"<div class='creamviz-error' style='color:#b00020;border-left:3px solid #b00020;"
                               f"padding:2px 8px'>⚠ {html.escape(self.error)}</div>")

            self.observe(show_state, ["status", "step", "message", "steps"])
            self.observe(show_error, "error")
            show_state()
            show_error()
            order = list(c.values())
            half = (len(order) + 1) // 2
            panel = W.HBox([W.VBox(order[:half]), W.VBox(order[half:])])
            self.buttons = {"launch": launch, "cancel": cancel}
            self.progress = progress
            self._widget = W.VBox([summary, panel, W.HBox([launch, cancel, progress]), status, error,
                                   *[self.figures[n] for n in self.figure_names]])
        return self._widget

    def export_html(self, path: str | Path = "creamviz_training.html") -> Path:
        """Write the loss and evaluation figures to one standalone HTML file."""
        params = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names)
        section = Section(title="Training run", paragraphs=[params, f"{self.status}: {self.message}"],
                          figures=[go.Figure(f) for f in self.figures.values() if f.data])
        return write_report(path, "creamviz — training run", [section])
