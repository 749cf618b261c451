"""Shared machinery of the explorers: one traitlets state object, views that observe it.

Controls are bound to the state by :meth:`ExplorerBase.bind`, not by ``ipywidgets.link``: a slider
never clamps the state (``k = 10**6`` stays ``10**6`` and the inline error says why it is
invalid), and a value a control cannot show (NaN, inf) leaves the control as it was instead of
bouncing between the two.
"""

from __future__ import annotations

import contextlib
import html
import math
import numbers
import time
from collections.abc import Iterator

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import traitlets as T

__all__ = ["ExplorerBase", "MAX_SVG_POINTS", "show_figure", "show_auto"]

MAX_SVG_POINTS = 500  # lines+markers traces with more points are drawn as lines only
FIGURE_MIN_WIDTH = 520  # px: below twice this, the figure grid has one column
_SLIDERS = (W.IntSlider, W.FloatSlider, W.FloatLogSlider, W.BoundedIntText, W.BoundedFloatText)


def _bundle(fig: go.Figure) -> dict:
    """``fig`` as one display_data output for an ``ipywidgets.Output``: JupyterLab's plotly renderer
    draws it responsively (the full width of its grid cell, and again when the window resizes)."""
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(fig.to_dict())
    return {"output_type": "display_data", "data": bundle, "metadata": {}}


def _json_safe(trace):
    """Widget messages are JSON: NaN / inf in data arrays (blank heatmap cells) become None."""
    for attr in ("x", "y", "z"):
        value = getattr(trace, attr, None)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
            trace[attr] = np.where(np.isfinite(value), value, None).tolist()
    return trace


def show_figure(widget: go.Figure, fig: go.Figure) -> None:
    """Replace a figure's (or FigureWidget's) traces and layout by ``fig``'s in one update."""
    with widget.batch_update():
        widget.data = ()
        widget.add_traces([_json_safe(_fast(trace)) if isinstance(widget, go.FigureWidget) else _fast(trace)
                           for trace in fig.data])
        widget.layout = fig.layout


def _fast(trace):
    """Long SVG lines with a marker per point slow the browser down: past ``MAX_SVG_POINTS`` points
    a lines+markers trace keeps its line only (the same data; no WebGL, which headless and
    GPU-less browsers emulate slowly)."""
    if type(trace) is go.Scatter and trace.x is not None and len(trace.x) > MAX_SVG_POINTS \
            and trace.mode and "lines" in trace.mode and "markers" in trace.mode:
        trace.mode = "lines"
    return trace


def show_auto(control: W.Widget, note: W.HTML, auto: bool, rule: str = "") -> None:
    """An 'auto' parameter's look: the slider disabled and without its (editable-looking) readout,
    and beside it a grey, plain-text ``note`` "= 32 (auto: 4·L/N)" that takes no focus; not auto:
    the slider and its readout back, the note empty."""
    control.disabled = auto
    if hasattr(control, "readout"):
        control.readout = not auto
    if not auto:
        note.value = ""
        return
    value = control.value
    text = f"{value:.3g}" if isinstance(value, float) and not float(value).is_integer() else f"{value:g}"
    rule = f": {html.escape(rule)}" if rule else ""
    note.value = (f"<span class='creamviz-auto' style='color:#888;user-select:none' "
                  f"title='the default rule; untick auto to set it'>= {text} (auto{rule})</span>")


def _representable(control: W.Widget, value) -> bool:
    """Whether ``control`` can display ``value`` as it is (no clamping, no coercion)."""
    if isinstance(control, (W.Dropdown, W.RadioButtons, W.ToggleButtons)):
        return value in [o[1] if isinstance(o, tuple) else o for o in control.options]
    if isinstance(control, (W.Checkbox, W.ToggleButton)):
        return isinstance(value, bool)
    if isinstance(control, (W.Text, W.Textarea)):
        return isinstance(value, str)
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        return False
    if isinstance(control, (W.IntSlider, W.IntText, W.BoundedIntText)) and value != int(value):
        return False
    if isinstance(control, W.FloatLogSlider):
        return value > 0
    return True


class ExplorerBase(T.HasTraits):
    """Subclasses declare parameter traits, ``param_names``, ``figure_names`` and ``_compute()``
    (returning ``{name: go.Figure}`` or raising ``ValueError``); this base keeps ``.figures``
    (``go.Figure``s updated in place, each shown by an ``ipywidgets.Output`` in a responsive grid:
    plotly's FigureWidget keeps a fixed 700 px width in JupyterLab 4 and is cut in a grid cell),
    ``.error`` ('' when valid), ``.busy``,
    ``.last_update_s`` (Python compute time of the last update, seconds) and builds ``.widget``
    on first use: ``_controls()`` (registered by name in ``.controls``), the status line
    (``.status_html``), the inline error (``.error_html``), ``_extra_views()`` and the figures.
    """

    error = T.Unicode("")  # message of the last invalid combination, '' when valid
    busy = T.Bool(False)  # True while figures are being recomputed
    last_update_s = T.Float(0.0)  # Python compute time of the last update, seconds
    updates = T.Int(0)  # number of successful updates so far

    param_names: tuple[str, ...] = ()
    figure_names: tuple[str, ...] = ()
    status_traits: tuple[str, ...] = ("busy", "last_update_s")  # the status line follows these
    wide_figures: tuple[str, ...] = ()  # figures that take a whole row of the grid (several panels)
    # True: go.FigureWidgets in one column (in-place plotly updates, fixed 700 px width); False:
    # go.Figures shown by Outputs in the responsive grid
    uses_figure_widgets: bool = False

    def __init__(self, **initial_params) -> None:
        unknown = set(initial_params) - set(self.param_names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; valid: {', '.join(self.param_names)}")
        self._hold = False
        try:
            super().__init__(**initial_params)
        except T.TraitError as err:
            raise ValueError(str(err)) from None
        kind = go.FigureWidget if self.uses_figure_widgets else go.Figure
        self.figures: dict[str, go.Figure] = {name: kind() for name in self.figure_names}
        self._views: dict[str, W.Output] = {}  # name -> the Output that shows the figure (built with .widget)
        self.controls: dict[str, W.Widget] = {}
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
            self.draw(name, fig)
        self.error = ""
        self.updates += 1
        self.last_update_s = time.perf_counter() - start
        return True

    def _show_figure(self, widget: go.Figure, fig: go.Figure) -> None:
        """Put a computed figure into ``.figures[...]`` (subclasses may update in place)."""
        show_figure(widget, fig)

    def draw(self, name: str, fig: go.Figure) -> None:
        """Make ``.figures[name]`` (the same object, updated in place) show ``fig``, and redraw its view."""
        target = self.figures[name]
        self._show_figure(target, fig)
        view = self._views.get(name)
        if view is not None:
            view.outputs = (_bundle(target),)  # a trait: safe from the training thread too

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
        """Plain-call equivalent of moving several controls; returns whether the result is valid.
        A value the state cannot hold (wrong type) is reported in ``.error`` and leaves that
        parameter unchanged."""
        unknown = set(params) - set(self.param_names)
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}; valid: {', '.join(self.param_names)}")
        refused = []
        with self.hold_updates():
            for name, value in params.items():
                try:
                    setattr(self, name, value)
                except T.TraitError as err:
                    refused.append(f"{name}={value!r} refused: {' '.join(str(err).split())}")
        if refused:  # this call's refusals, then what the update found about the state as it stands
            self.error = "; ".join(refused + ([self.error] if self.error else []))
        return not self.error

    @property
    def params(self) -> dict:
        return {name: getattr(self, name) for name in self.param_names}

    # ---- controls <-> state -----------------------------------------------------------------
    def bind(self, name: str, control: W.Widget, *, key: str | None = None) -> W.Widget:
        """Two-way binding of trait ``name`` and ``control.value`` that never rewrites the state:
        a control that cannot show the state's value (out of its range: the range is widened;
        NaN / inf / wrong type: the control is left alone) does not push anything back. The
        control is kept in ``controls[key]`` (default: the trait's name)."""
        key = key or name
        self.controls[key] = control
        self._bound[key] = name

        def to_state(change):
            if key in self._syncing:
                return
            self._syncing.add(key)
            try:
                setattr(self, name, change["new"])
            except T.TraitError as err:
                self.error = f"{name}={change['new']!r} refused: {' '.join(str(err).split())}"
            finally:
                self._syncing.discard(key)

        def to_control(change=None):
            if key not in self._syncing:
                self._show_in_control(key)

        to_control()
        control.observe(to_state, "value")
        self.observe(to_control, name)
        return control

    @property
    def _bound(self) -> dict:
        return self.__dict__.setdefault("_bound_controls", {})

    @property
    def _syncing(self) -> set:
        return self.__dict__.setdefault("_syncing_keys", set())

    def _show_in_control(self, key: str, low=None, high=None) -> None:
        """Show the state's value in ``controls[key]``; with ``low`` / ``high``, first set the
        control's range to them (widened to hold the state's value: nothing is clamped)."""
        control, value = self.controls[key], getattr(self, self._bound.get(key, key))
        shown = _representable(control, value)
        self._syncing.add(key)
        try:
            if isinstance(control, W.FloatLogSlider):
                if low is not None:
                    control.min, control.max = math.log(low, control.base), math.log(high, control.base)
                if shown:
                    exp = math.log(value, control.base)
                    control.min, control.max = min(control.min, exp), max(control.max, exp)
            elif isinstance(control, _SLIDERS):
                if low is not None:
                    lo, hi = (min(low, value), max(high, value)) if shown else (low, high)
                    if lo > control.max:
                        control.max = hi
                    control.min = lo
                    control.max = hi
                elif shown:
                    control.min, control.max = min(control.min, value), max(control.max, value)
            if shown:
                control.value = value
        finally:
            self._syncing.discard(key)

    # ---- view -------------------------------------------------------------------------------
    def _controls(self) -> list[W.Widget]:
        raise NotImplementedError

    def _header_views(self) -> list[W.Widget]:
        return []

    def _action_views(self) -> list[W.Widget]:
        return []

    def _trait_note(self, trait: str, label: str, *, escape: bool = True) -> W.HTML:
        """A paragraph ``label. <value of the text trait>``, redrawn whenever the trait changes."""
        note = W.HTML()

        def show(_=None):
            text = getattr(self, trait)
            note.value = f"<p style='max-width:900px'><b>{label}.</b> {html.escape(text) if escape else text}</p>"

        self.observe(show, trait)
        show()
        return note

    def _extra_views(self) -> list[W.Widget]:
        return []

    def _status_text(self) -> str:
        """The status line (HTML). Default: the Python compute time of the last update (the
        browser's drawing comes on top of it)."""
        if self.busy:
            return "<i>computing…</i>"
        return (f"<span style='color:#666'>Python compute time {self.last_update_s * 1000:.0f} ms "
                "(figures drawn by the browser after that)</span>")

    @property
    def widget(self) -> W.Widget:
        """The ipywidgets layout: controls, status line, inline error, figures, export button."""
        if self._widget is None:
            controls = self._controls()
            self.status_html = W.HTML()
            self.error_html = W.HTML()

            def show_status(_=None):
                self.status_html.value = self._status_text()

            def show_error(_=None):
                self.error_html.value = (
                    "" if not self.error else
                    f"<div class='creamviz-error' style='color:#b00020;border-left:3px solid #b00020;"
                    f"padding:2px 8px'>⚠ {html.escape(self.error)} — showing the last valid figures</div>")

            self.observe(show_status, list(self.status_traits))
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
            # two columns that wrap under each other when the output area is narrower than both
            panel = W.HBox([W.VBox(controls[:half]), W.VBox(controls[half:])],
                           layout=W.Layout(flex_flow="row wrap", column_gap="16px", max_width="100%"))
            self._widget = W.VBox([*self._header_views(), panel, *self._action_views(),
                                   W.HBox([self.status_html, export, exported]), self.error_html,
                                   *self._extra_views(), self._figure_grid()])
            self._tag(self._widget)
            self.export_button = export
        return self._widget

    def _tag(self, widget: W.Widget) -> None:
        """CSS classes naming the view (``creamviz-explorer``, ``creamviz-<class name>``): for page
        styles and for browser tests to find it."""
        widget.add_class("creamviz-explorer")
        widget.add_class(f"creamviz-{type(self).__name__.lower()}")

    def _figure_grid(self) -> W.Widget:
        """The figures in a responsive grid: two columns where the output area is wide enough
        (>= 2 x ``FIGURE_MIN_WIDTH``), one otherwise; names in ``wide_figures`` span the whole row.
        The figures have no fixed width (plotly autosize): each fills its grid cell.
        With ``uses_figure_widgets`` the FigureWidgets themselves, in one column."""
        if self.uses_figure_widgets:
            return W.VBox([self.figures[n] for n in self.figure_names], layout=W.Layout(width="100%"))
        cells = []
        for name in self.figure_names:
            wide = name in self.wide_figures
            view = self._views[name] = W.Output(layout=W.Layout(width="100%", min_width="0"))
            if self.figures[name].data or self.figures[name].layout.title.text:
                view.outputs = (_bundle(self.figures[name]),)
            # grid_area, not grid_column: ipywidgets applies grid_area last, and its default (None)
            # removes the shorthand, grid-column included
            cells.append(W.Box([view], layout=W.Layout(
                min_width="0", width="100%", display="block", grid_area="auto / 1 / auto / -1" if wide else None)))
        columns = f"repeat(auto-fit, minmax(min({FIGURE_MIN_WIDTH}px, 100%), 1fr))"
        return W.GridBox(cells, layout=W.Layout(width="100%", grid_template_columns=columns, grid_gap="4px 12px"))

    def export_html(self, path=None):  # pragma: no cover - overridden
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
