"""Shared machinery of the explorers: one traitlets state object, views that observe it."""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Iterator

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import traitlets as T

__all__ = ["ExplorerBase"]


def _json_safe(trace):
    """Widget messages are JSON: NaN / inf in data arrays (blank heatmap cells) become None."""
    for attr in ("x", "y", "z"):
        value = getattr(trace, attr, None)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            trace[attr] = np.where(np.isfinite(value), value, None).tolist()
    return trace


class ExplorerBase(T.HasTraits):
    """Subclasses declare parameter traits, ``param_names``, ``figure_names`` and ``_compute()``
    (returning ``{name: go.Figure}`` or raising ``ValueError``); this base keeps ``.figures``
    (``go.FigureWidget``s updated in place), ``.error`` ('' when valid), ``.busy``,
    ``.last_update_s`` (seconds the last update took) and builds ``.widget`` on first use.
    """

    error = T.Unicode("")  # message of the last invalid combination, '' when valid
    busy = T.Bool(False)  # True while figures are being recomputed
    last_update_s = T.Float(0.0)  # wall time of the last update, seconds
    updates = T.Int(0)  # number of successful updates so far

    param_names: tuple[str, ...] = ()
    figure_names: tuple[str, ...] = ()

    def __init__(self, **initial_params) -> None:
        unknown = set(initial_params) - set(self.param_names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; valid: {', '.join(self.param_names)}")
        self._hold = False
        try:
            super().__init__(**initial_params)
        except T.TraitError as err:
            raise ValueError(str(err)) from None
        self.figures: dict[str, go.FigureWidget] = {name: go.FigureWidget() for name in self.figure_names}
        self._widget: W.Widget | None = None
        self.observe(self._on_change, names=list(self.param_names))
        self.update()

    # ---- state -> figures -------------------------------------------------------------------
    def _compute(self) -> dict[str, go.Figure]:
        raise NotImplementedError

    def _on_change(self, _change=None) -> None:
        if not self._hold:
            self.update()

    def update(self) -> bool:
        """Recompute every figure from the current traits. Returns False (and sets ``.error``,
        keeping the previous figures) when the combination is invalid; never raises."""
        start = time.perf_counter()
        self.busy = True
        try:
            figs = self._compute()
        except ValueError as err:
            self.error = str(err)
            return False
        except Exception as err:  # noqa: BLE001 - a widget shows the message, never a traceback
            self.error = f"{type(err).__name__}: {err}"
            return False
        finally:
            self.busy = False
        for name, fig in figs.items():
            widget = self.figures[name]
            with widget.batch_update():
                widget.data = ()
                widget.add_traces([_json_safe(trace) for trace in fig.data])
                widget.layout = fig.layout
        self.error = ""
        self.updates += 1
        self.last_update_s = time.perf_counter() - start
        return True

    @contextlib.contextmanager
    def hold_updates(self) -> Iterator[None]:
        """Set several traits with a single update at the end: ``with ex.hold_updates(): ...``."""
        self._hold = True
        try:
            yield
        finally:
            self._hold = False
            self.update()

    def set_params(self, **params) -> bool:
        """Plain-call equivalent of moving several controls; returns whether the result is valid."""
        unknown = set(params) - set(self.param_names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; valid: {', '.join(self.param_names)}")
        with self.hold_updates():
            for name, value in params.items():
                try:
                    setattr(self, name, value)
                except T.TraitError as err:
                    self.error = str(err)
        return not self.error

    @property
    def params(self) -> dict:
        return {name: getattr(self, name) for name in self.param_names}

    # ---- view -------------------------------------------------------------------------------
    def _controls(self) -> list[W.Widget]:
        raise NotImplementedError

    def _extra_views(self) -> list[W.Widget]:
        return []

    @property
    def widget(self) -> W.Widget:
        """The ipywidgets layout: controls, status line, inline error, figures, export button."""
        if self._widget is None:
            self.controls: dict[str, W.Widget] = {}
            controls = self._controls()
            status = W.HTML()
            error = W.HTML()

            def show_status(_=None):
                status.value = ("<i>computing…</i>" if self.busy else
                                f"<span style='color:#666'>updated in {self.last_update_s * 1000:.0f} ms</span>")

            def show_error(_=None):
                error.value = ("" if not self.error else
                               f"<div class='creamviz-error' style='color:#b00020;border-left:3px solid #b00020;"
                               f"padding:2px 8px'>⚠ {html.escape(self.error)} — showing the last valid figures</div>")

            self.observe(show_status, ["busy", "last_update_s"])
            self.observe(show_error, "error")
            show_status()
            show_error()
            export = W.Button(description="export HTML", icon="download", tooltip="write the figures to an HTML file")
            exported = W.HTML()

            def do_export(_):
                try:
                    exported.value = f"wrote <code>{html.escape(str(self.export_html()))}</code>"
                except OSError as err:
                    exported.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"

            export.on_click(do_export)
            half = (len(controls) + 1) // 2
            panel = W.HBox([W.VBox(controls[:half]), W.VBox(controls[half:])])
            figs = [self.figures[n] for n in self.figure_names]
            grid = W.VBox(figs, layout=W.Layout(width="100%"))  # one column: figures keep their full width
            self._widget = W.VBox([panel, W.HBox([status, export, exported]), error, *self._extra_views(), grid])
            self.export_button = export
        return self._widget

    def export_html(self, path=None):  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
