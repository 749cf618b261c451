"""TrainingLauncher: fine-tune with the sampler you just explored, watch the loss, evaluate.

Three parts, as in the other explorers:

- the **state**: a traitlets object (:class:`TrainingLauncher`'s traits). Given a
  :class:`SamplerExplorer`, its sampler traits (method, N = ``train_len``, L = ``target_len`` and
  one trait per registered sampler parameter, from the samplers' declarations) are *linked* to the
  explorer's, so the position ids trained with are the ones on screen. The run's own traits
  (model, RoPE interpolation, steps, learning rate, seed, output directory, evaluation) turn into
  a :class:`~creamviz.training.TrainConfig`, which validates them.
- the **run control**: :class:`~creamviz.widgets.run_control.RunControl` runs
  :func:`creamviz.training.train` in a background thread (the notebook stays responsive),
  captures its prints and cancels it after the current step *with* a checkpoint.
- the **view**: built through :class:`~creamviz.widgets.base.ExplorerBase` (controls by name in
  ``.controls``, the status line, the inline error, the figures), plus launch / cancel buttons and
  a progress bar "step i / total" with an ETA.

A cancelled run resumes with ``resume=True`` (output dir blank: the same run directory); the loss
curve keeps the earlier steps' losses (read from the checkpoint). A completed run is evaluated at L
(:func:`creamviz.evaluate.evaluate_at`). Problems go to ``.error`` and are shown inline, never as a
traceback.

    explorer = SamplerExplorer(train_len=256, target_len=2048)
    launcher = TrainingLauncher(explorer, steps=200)
    launcher            # the widget: press "launch"
    launcher.launch(); launcher.wait()   # the same from code
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import replace
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go
import traitlets as T

from creamviz import figures as F
from creamviz.evaluate import EVALUATIONS, check_evaluation
from creamviz.report import Section, write_report
from creamviz.samplers import SAMPLERS, sampler_parameters
from creamviz.widgets.base import ExplorerBase
from creamviz.widgets.run_control import RunControl
from creamviz.widgets.sampler import SamplerExplorer, sampler_traits

__all__ = ["TrainingLauncher", "EVALUATIONS", "shared_params", "progress_text"]

STATUSES = ("idle", "running", "evaluating", "done", "cancelled", "failed")
LIVE_REDRAW_S = 0.5  # the live loss curve is redrawn at most this often (and once when the run ends):
# re-sending the whole figure on every step kept the browser busy drawing, so a click on "cancel"
# waited behind a queue of redraws and reached the kernel steps (or the whole run) late


def shared_params() -> tuple[str, ...]:
    """The traits a launcher shares with its SamplerExplorer: method, N, L and every registered
    sampler parameter (so a parameter added to a sampler is shared without touching this file)."""
    return ("method", "train_len", "target_len", *sampler_parameters())


def progress_text(step: int, total: int, elapsed_s: float, first_step: int) -> str:
    """"step i / total" and, once a step of this launch is done, the ETA at the current rate."""
    text = f"step {step} / {total}"
    done = step - first_step
    if done > 0 and elapsed_s > 0 and step < total:
        eta = (total - step) * elapsed_s / done
        text += f" · ETA {int(eta // 60)}:{int(eta % 60):02d}"
    return text


def checkpoint_losses(out_dir: str | Path) -> list[dict]:
    """``{"step", "loss"}`` rows logged up to the newest checkpoint in ``out_dir`` ([] if none)."""
    from transformers.trainer_utils import get_last_checkpoint

    out_dir = Path(out_dir)
    last = get_last_checkpoint(str(out_dir)) if out_dir.is_dir() else None
    state = Path(last) / "trainer_state.json" if last else None
    if state is None or not state.is_file():
        return []
    history = json.loads(state.read_text()).get("log_history", [])
    return [{"step": int(e["step"]), "loss": float(e["loss"])} for e in history if "loss" in e and "step" in e]


class TrainingLauncher(ExplorerBase):
    """State + view of one fine-tuning run (see the module docstring).

    Sampler traits (linked to ``explorer`` when one is given): ``method``, ``train_len`` (N; None =
    the model's pre-trained window W; a shorter N, e.g. 256 tokens of an 8K model, spreads N tokens
    over L with the sampler's factor L / N while RoPE is interpolated by L / W, see :meth:`lengths`;
    what does not fit, such as CREAM's default k = 4·L/N > (N-1)/2, is refused with the fix),
    ``target_len`` (L) and one trait per registered sampler parameter. Run traits: ``model``
    ("tiny", "smollm2-135m" or a local HF directory), ``rope`` (linear / yarn, factor L / W), ``steps``, ``lr`` (default: the notebooks' 5e-4), ``warmup_steps``,
    ``batch_size``, ``seed``, ``save_every``, ``out`` ('' = ``runs/launcher/<method>-L<L>-<time>``,
    or the last run's directory when resuming), ``resume``, ``data`` ("mix" = text + retrieval
    tasks, "text" = corpus text), ``evaluation`` (kv / niah / ppl) and ``eval_limit``.

    Run state: ``status`` (idle / running / evaluating / done / cancelled / failed), ``step``,
    ``total_steps``, ``progress_label`` ("step i / total · ETA", also on the ``.progress`` bar), ``message``, ``run_dir``,
    ``.loss_log`` (rows ``{"step", "loss"}``, earlier steps included after a resume), ``.result``
    (``TrainResult``), ``.eval_result``; figures ``"loss"`` and ``"evaluation"`` in ``.figures``.
    """

    # ---- sampler (shared with the SamplerExplorer; the parameters are added per instance) ----
    method = T.Unicode("cream")
    train_len = T.Int(None, allow_none=True)
    target_len = T.Int(2048)
    # ---- the run ----
    model = T.Unicode("tiny")
    rope = T.Enum(["linear", "yarn"], default_value="yarn")  # linear x8 breaks the byte-level tiny model
    steps = T.Int(100)
    lr = T.Float(5e-4)  # the notebooks' (ExperimentConfig) learning rate for the tiny model
    warmup_steps = T.Int(10)
    batch_size = T.Int(8)
    seed = T.Int(0)
    save_every = T.Int(50)
    out = T.Unicode("")
    resume = T.Bool(False)
    data = T.Enum(["mix", "text"], default_value="mix")
    evaluation = T.Unicode("kv")
    eval_limit = T.Int(5)
    lora_r = T.Int(None, allow_none=True)  # LoRA rank (creamviz.lora); None = full fine-tuning
    # ---- run state (not parameters) ----
    status = T.Enum(list(STATUSES), default_value="idle")
    step = T.Int(0)  # optimizer steps done in the current run (global step)
    total_steps = T.Int(0)  # steps of the current run
    progress_label = T.Unicode("")  # "step i / total · ETA m:ss"
    message = T.Unicode("")  # one line about the current run (never repeats the status)
    run_dir = T.Unicode("")  # output directory of the last launch

    figure_names = ("loss", "evaluation")
    wide_figures = ("loss", "evaluation")  # long run titles: each figure gets the whole row
    status_traits = ("status", "message", "progress_label")
    run_params = ("model", "rope", "steps", "lr", "warmup_steps", "batch_size", "seed", "save_every", "out",
                  "resume", "data", "evaluation", "eval_limit")

    def __init__(self, explorer: SamplerExplorer | None = None, **params) -> None:
        if explorer is not None and not isinstance(explorer, SamplerExplorer):
            raise ValueError(f"explorer must be a SamplerExplorer or None, got {type(explorer).__name__}")
        self.add_traits(**sampler_traits())
        self.shared = shared_params()
        self.param_names = (*self.shared, *self.run_params)
        self.explorer = explorer
        self.result = None  # TrainResult of the last run
        self.eval_result = None  # DepthCurve / NiahGrid / PplCurve of the last completed run
        self.loss_log: list[dict] = []
        self.run_control = RunControl()
        self._windows: dict[str, int] = {}  # model -> pre-trained window N
        self._clock = (0.0, 0)  # (start time, first step) of the current launch, for the ETA
        self._loss_drawn_at = 0.0  # perf_counter of the last live redraw of the loss curve
        self.cancelled_at_step: int | None = None  # step reported when cancel was pressed (this launch)
        self._loss_title = ""
        if explorer is not None:  # shared parameters given here are set on the explorer first
            shared = {n: params.pop(n) for n in self.shared if n in params}
            if shared:
                explorer.set_params(**shared)
            params = {**{n: getattr(explorer, n) for n in self.shared if explorer.has_trait(n)}, **params}
        super().__init__(**params)
        self._links = []
        if explorer is not None:
            with self.hold_updates():
                self._links = [T.link((explorer, n), (self, n)) for n in self.shared if explorer.has_trait(n)]
        self._show("loss", F.fig_loss_curve({self.method: []}, total_steps=max(1, self.steps),
                                            title="Fine-tuning loss (appears when a run starts)"))
        self._show("evaluation", _placeholder("Evaluation at L (runs when training completes)"))

    @property
    def output_log(self) -> list[str]:
        """What the Trainer printed in the worker thread."""
        return self.run_control.output_log

    # ---- parameters -> TrainConfig ----------------------------------------------------------
    def model_window(self) -> int:
        """The pre-trained window N of ``model`` (cached)."""
        if self.model not in self._windows:
            from creamviz.lengths import model_window

            try:
                self._windows[self.model] = model_window(self.model)
            except ValueError as err:
                raise ValueError(f"model={self.model!r}: {err}") from None
            except Exception as err:  # noqa: BLE001 - a missing directory, a broken config
                raise ValueError(f"model={self.model!r} cannot be read ({type(err).__name__}: {err}); "
                                 "valid: 'tiny' or a local Hugging Face causal-LM directory") from None
        return self._windows[self.model]

    def sampler_params(self) -> dict:
        """The parameters the chosen sampler declares, as the state holds them."""
        declared = [p.name for p in SAMPLERS[self.method].parameters] if self.method in SAMPLERS else []
        return {n: getattr(self, n) for n in declared}

    def config(self, *, out: str | None = None):
        """The :class:`~creamviz.training.TrainConfig` the traits describe (ValueError if invalid:
        the config, the sampler and the evaluation validate themselves)."""
        from creamviz.training import TrainConfig

        self.model_window()  # a readable model first (its error names `model`)
        check_evaluation(self.evaluation, self.eval_limit)
        cfg = TrainConfig(
            model=self.model, sampler=self.method, sampler_params=self.sampler_params(), rope=self.rope,
            train_len=self.train_len, target_len=self.target_len, steps=self.steps, lr=self.lr,
            warmup_steps=self.warmup_steps, batch_size=self.batch_size, seed=self.seed,
            save_every=self.save_every, out=out if out is not None else (self.out or "runs/launcher/auto"),
            resume=self.resume, data=None if self.data == "text" else "mix", progress=False, lora_r=self.lora_r)
        cfg.validate()
        lengths = cfg.lengths()  # N vs the model's window W, sampler factor L/N vs RoPE L/W, k vs N
        cfg.make_sampler(lengths)  # ValueError naming the sampler parameter
        return replace(cfg, train_len=lengths.train_len)

    def lengths(self) -> str:
        """Which length and which factor is which for the current traits (N, L, the model's window
        W, the sampler's factor L/N and the RoPE factor L/W), as the run metadata records them."""
        cfg = self.config()
        return cfg.lengths().describe(cfg.sampler, cfg.sampler_params)

    def _compute(self) -> dict[str, go.Figure]:
        self.config()  # validation only; the figures change when a run reports
        return {}

    # ---- the run ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.run_control.running

    def output_dir(self) -> str:
        """Where the next launch writes: ``out``; else, when resuming, the last run's directory;
        else a new ``runs/launcher/<method>-L<L>-<time>``."""
        if self.out:
            return self.out
        if self.resume and self.run_dir:
            return self.run_dir
        return f"runs/launcher/{self.method}-L{self.target_len}-{time.strftime('%Y%m%d-%H%M%S')}"

    def launch(self) -> bool:
        """Start training in a background thread. Returns False (and sets ``.error``) if the
        parameters are invalid or a run is already going."""
        if self.running:
            self.error = "a run is already in progress: cancel it or wait for it to finish"
            return False
        out = self.output_dir()
        try:
            cfg = self.config(out=out)
        except ValueError as err:
            self.error = str(err)
            return False
        self.error = ""
        self.result, self.eval_result = None, None
        self.cancelled_at_step = None
        self.loss_log = checkpoint_losses(out) if cfg.resume else []  # a resume keeps the earlier losses
        self.run_dir = out
        self.total_steps = cfg.steps
        self.step = self.loss_log[-1]["step"] if self.loss_log else 0
        self._clock = (time.perf_counter(), self.step)
        self.progress_label = progress_text(self.step, cfg.steps, 0.0, self.step)
        fresh = " (no checkpoint there yet: a fresh run)" if cfg.resume and not self.loss_log else ""
        self.message = (f"{'resuming at step ' + str(self.step) if self.loss_log else 'training'} {cfg.sampler} "
                        f"N = {cfg.train_len} → L = {cfg.target_len} for {cfg.steps} steps in {out}{fresh}")
        self.status = "running"
        self._loss_title = f"Fine-tuning loss ({cfg.sampler}, N = {cfg.train_len} → L = {cfg.target_len:,})"
        self._redraw_loss(cfg.sampler)
        self._show("evaluation", _placeholder(f"Evaluation at L = {cfg.target_len:,}: runs when training completes"))
        self.run_control.start(lambda callbacks: self._job(cfg, callbacks), on_begin=self._on_step,
                               on_step=self._on_step, on_loss=self._add_loss)
        return True

    def cancel(self) -> bool:
        """Stop the run after the current optimizer step, saving a checkpoint there (a later
        launch with ``resume=True`` continues from it). Returns whether a run was going."""
        if not self.run_control.cancel():
            return False
        self.cancelled_at_step = self.step  # the step the run had reported when cancel was pressed
        if self.status == "running":
            self.message = "stopping after the current step and saving a checkpoint …"
        return True

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run (training and evaluation) ends or ``timeout`` seconds pass; the status."""
        self.run_control.wait(timeout)
        return self.status

    def _on_step(self, step: int) -> None:
        self.step = step
        start, first = self._clock
        self.progress_label = progress_text(step, self.total_steps, time.perf_counter() - start, first)

    def _add_loss(self, step: int, loss: float) -> None:
        self.loss_log.append({"step": step, "loss": loss})
        if time.perf_counter() - self._loss_drawn_at >= LIVE_REDRAW_S:  # throttled: see LIVE_REDRAW_S
            self._redraw_loss()

    def _redraw_loss(self, method: str | None = None) -> None:
        """Draw the loss curve of the current run (its title, its x range up to the run's steps)."""
        self._loss_drawn_at = time.perf_counter()
        self._show("loss", F.fig_loss_curve({method or self.method: list(self.loss_log)},
                                            total_steps=max(1, self.total_steps), title=self._loss_title or None))

    def _job(self, cfg, callbacks: list) -> None:
        """The worker thread's body: train, then evaluate; every outcome ends in a status."""
        from creamviz.training import train

        try:
            try:
                result = train(cfg, callbacks=callbacks)
            finally:
                self._redraw_loss(cfg.sampler)  # the steps since the last throttled redraw
            self.result = result
            self.step = result.steps_done
            self.progress_label = progress_text(result.steps_done, cfg.steps, 0.0, result.steps_done)  # no ETA
            if not result.completed:
                kept = result.checkpoints[-1] if result.checkpoints else None
                pressed = "" if self.cancelled_at_step is None else f" (cancel pressed at step {self.cancelled_at_step})"
                self.message = (f"at step {result.steps_done} / {cfg.steps}{pressed}; checkpoint kept in {kept}. "
                                "Tick 'resume' and launch again to continue this run.")
                self.status = "cancelled"
                return
            self.status = "evaluating"
            self.message = (f"trained {result.steps_done - self._clock[1]} steps in {result.wall_time_s:.1f} s; "
                            f"{EVALUATIONS[self.evaluation]} …")
            self.eval_result = self._evaluate(cfg, result.final_model)
            self._show("evaluation", self._evaluation_figure(self.eval_result, cfg))
            self.message = self._done_text(result)
            self.status = "done"
        except Exception as err:  # noqa: BLE001 - shown inline, never a traceback
            self.error = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
            self.message = "see the error below"
            self.status = "failed"

    def _done_text(self, result) -> str:
        """Steps run in this launch (a resume continues at ``first``) and the run's total."""
        first = self._clock[1]
        session = result.steps_done - first
        rate = session / max(result.wall_time_s, 1e-9)
        total = f" (steps {first + 1}–{result.steps_done} of {result.steps_done}, resumed at {first})" if first else ""
        last = f", final loss {self.loss_log[-1]['loss']:.3f}" if self.loss_log else ""
        return (f"{session} steps in {result.wall_time_s:.1f} s ({rate:.2f} steps/s){total}{last}; "
                f"model in {result.final_model}")

    def _evaluate(self, cfg, final_model: Path):
        """The chosen evaluation of the fine-tuned model at L (:func:`creamviz.evaluate.evaluate_at`)."""
        from creamviz import evaluate, models

        model = models.load_model(final_model)
        tok = models.load_tokenizer(cfg.model)
        return evaluate.evaluate_at(model, tok, self.evaluation, target_len=cfg.target_len, limit=self.eval_limit)

    def _evaluation_figure(self, result, cfg) -> go.Figure:
        label, big_l = cfg.sampler, cfg.target_len
        after = f"after {cfg.steps} steps of {label}"
        if self.evaluation == "kv":
            title = f"Key-value retrieval by depth at L = {big_l:,} ({after}; {int(result.n.sum())} prompts)"
            return F.fig_accuracy_by_depth({label: result}, title=title)
        if self.evaluation == "niah":
            return F.fig_niah_heatmap(result, window=cfg.train_len, title=f"Needle in a haystack ({after})")
        return F.fig_ppl_by_position({label: result}, window=cfg.train_len,
                                     title=f"Perplexity by position at L = {big_l:,} ({after})")

    def _show(self, name: str, fig: go.Figure) -> None:
        self.draw(name, fig)

    # ---- view -------------------------------------------------------------------------------
    def _sampler_summary(self) -> str:
        try:
            window = self.model_window()
        except ValueError:
            window = None
        n = self.train_len if self.train_len is not None else window
        factor = f"{self.target_len / n:g}" if n else "?"
        parts = [f"<b>{html.escape(str(self.method))}</b>", f"N = {n}", f"L = {self.target_len:,}",
                 f"factor L/N = {factor}"]
        params = sampler_parameters()
        for name, value in self.sampler_params().items():
            symbol = params[name].symbol or name
            parts.append(f"{html.escape(symbol)} = {'auto' if value is None else html.escape(f'{value:g}' if isinstance(value, float) else str(value))}")
        source = " (shared with the SamplerExplorer)" if self.explorer is not None else ""
        return f"Position sampler{source}: " + ", ".join(parts)

    def _header_views(self) -> list[W.Widget]:
        self.summary_html = W.HTML(self._sampler_summary())
        self.observe(lambda _: setattr(self.summary_html, "value", self._sampler_summary()),
                     names=[*self.shared, "model"])
        return [self.summary_html]

    def _controls(self) -> list[W.Widget]:
        style = {"description_width": "110px"}
        layout = W.Layout(width="330px")
        c = {
            "method": W.Dropdown(options=list(SAMPLERS), description="sampler", style=style, layout=layout),
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
            "resume": W.Checkbox(description="resume from the last checkpoint (blank dir: the last run's)",
                                 indent=False),
        }
        return [self.bind(name, control) for name, control in c.items()]

    def _action_views(self) -> list[W.Widget]:
        launch = W.Button(description="launch", icon="play", button_style="primary")
        cancel = W.Button(description="cancel", icon="stop", tooltip="stop after this step, keep a checkpoint")
        launch.on_click(lambda _: self.launch())
        cancel.on_click(lambda _: self.cancel())
        bar = W.IntProgress(min=0, max=1, style={"description_width": "160px"},
                            layout=W.Layout(width="420px"))

        def show_run(_=None):
            busy = self.status in ("running", "evaluating")
            launch.disabled, cancel.disabled = busy, self.status != "running"
            bar.max = max(1, self.total_steps or self.steps)
            bar.value = min(self.step, bar.max)
            bar.description = self.progress_label or f"step 0 / {self.steps}"
            bar.bar_style = {"done": "success", "cancelled": "warning", "failed": "danger"}.get(self.status, "")

        self.observe(show_run, ["status", "step", "progress_label", "steps", "total_steps"])
        show_run()
        self.buttons = {"launch": launch, "cancel": cancel}
        self.progress = bar
        return [W.HBox([launch, cancel, bar])]

    def _status_text(self) -> str:
        return f"<b>{self.status}</b> <span style='color:#666'>{html.escape(self.message)}</span>"

    def export_html(self, path: str | Path = "creamviz_training.html") -> Path:
        """Write the loss and evaluation figures to one standalone HTML file."""
        params = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names)
        section = Section(title="Training run", paragraphs=[params, f"{self.status}: {self.message}"],
                          figures=[go.Figure(f) for f in self.figures.values() if f.data])
        return write_report(path, "creamviz — training run", [section])


def _placeholder(text: str) -> go.Figure:
    """An empty chart that says what will appear there (no stale title, no bare frame)."""
    return F.fig_placeholder(text, text)
