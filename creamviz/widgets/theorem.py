"""TheoremExplorer: pick N, L, L_h, L_t and see Theorem B.1 checked placement by placement."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go
import traitlets as T

from creamviz import figures as F
from creamviz import theorem
from creamviz.figures.audit import fig_span_profile
from creamviz.report import Section, write_report
from creamviz.widgets.base import ExplorerBase

__all__ = ["TheoremExplorer", "theorem_figures", "describe_audit"]

MAX_REGION_CELLS = 400_000  # head lengths x placements drawn in the region map


def describe_audit(audit: theorem.TheoremAudit) -> str:
    """The audit's verdict in plain words (one paragraph, paper symbols)."""
    a = audit
    starts = a.maximisers.tolist()
    shown = ", ".join(map(str, starts[:8])) + (" …" if len(starts) > 8 else "")
    parts = [f"N = {a.train_len}, L = {a.target_len}, L_h = {a.head_len}, L_m = {a.mid_len}, L_t = {a.tail_len}: "
             f"the largest |D_r| over all {len(a.mid_starts)} middle placements is {a.max_span}, "
             f"reached at P_s ∈ {{{shown}}}."]
    if a.paper_value_matches:
        parts.append(f"The paper's constant max(L_h−1, P_e−P_s, L_t−1) + 2N = {a.paper_value} matches.")
    else:
        parts.append(f"The paper's constant max(L_h−1, P_e−P_s, L_t−1) + 2N = {a.paper_value} (P_e inclusive) is "
                     f"off by {a.paper_value - a.max_span:+d}; read with P_e exclusive it gives "
                     f"{a.paper_value_exclusive}.")
    parts.append(f"The upper bound W + 2N − 3 = {a.upper_bound} (W = max(L_h, L_m, L_t)) is "
                 f"{'reached' if a.max_span == a.upper_bound else 'not reached: the four distance intervals cannot be made disjoint'}.")
    if a.iff_holds:
        parts.append("The reconstructed conditions hold exactly at the maximal placements: the 'iff' holds here.")
    else:
        bad = a.counterexamples.tolist()
        parts.append(f"The 'iff' fails at {len(bad)} placement(s), P_s ∈ {{{', '.join(map(str, bad[:8]))}"
                     f"{' …' if len(bad) > 8 else ''}}}.")
    parts.append(f"Predicted threshold: the iff holds for every L ≥ L* = {a.min_target_len}.")
    return " ".join(parts)


def theorem_figures(train_len: int, target_len: int, head_len: int, tail_len: int) -> tuple[dict[str, go.Figure], theorem.TheoremAudit]:
    """The audit at one configuration and its figures: span profile and region map over L_h."""
    audit = theorem.audit(train_len, target_len, head_len, tail_len)
    head_lens = list(range(1, train_len - tail_len))
    if len(head_lens) * target_len > MAX_REGION_CELLS:
        raise ValueError(f"target_len={target_len} x {len(head_lens)} head lengths is too large for the region map "
                         f"(at most {MAX_REGION_CELLS:,} cells); lower N or L")
    region = theorem.region_map(train_len, target_len, head_lens=head_lens, tail_len=tail_len)
    return {"span_profile": fig_span_profile(audit), "region_map": F.fig_region_map(region)}, audit


class TheoremExplorer(ExplorerBase):
    """State + view of the Theorem B.1 audit. Traits ``train_len`` (N), ``target_len`` (L),
    ``head_len`` (L_h), ``tail_len`` (L_t); ``.audit`` and ``.verdict`` follow them."""

    train_len = T.Int(12)
    target_len = T.Int(60)
    head_len = T.Int(2)
    tail_len = T.Int(3)
    verdict = T.Unicode("")

    figure_names = ("span_profile", "region_map")
    param_names = ("train_len", "target_len", "head_len", "tail_len")

    def _compute(self) -> dict[str, go.Figure]:
        figs, audit = theorem_figures(self.train_len, self.target_len, self.head_len, self.tail_len)
        self.audit = audit
        self.verdict = describe_audit(audit)
        return figs

    def _controls(self) -> list[W.Widget]:
        style = {"description_width": "110px"}
        layout = W.Layout(width="340px")
        c = {
            "train_len": W.IntSlider(min=3, max=64, description="N (train_len)", style=style, layout=layout,
                                     continuous_update=False),
            "target_len": W.IntSlider(min=4, max=1024, description="L (target_len)", style=style, layout=layout,
                                      continuous_update=False),
            "head_len": W.IntSlider(min=1, max=62, description="L_h (head_len)", style=style, layout=layout,
                                    continuous_update=False),
            "tail_len": W.IntSlider(min=1, max=62, description="L_t (tail_len)", style=style, layout=layout,
                                    continuous_update=False),
        }
        for name, control in c.items():
            control.value = getattr(self, name)
            W.link((control, "value"), (self, name))
        self.controls = c
        return list(c.values())

    def _extra_views(self) -> list[W.Widget]:
        box = W.HTML()

        def show(_=None):
            box.value = f"<p style='max-width:900px'><b>Verdict.</b> {html.escape(self.verdict)}</p>"

        self.observe(show, "verdict")
        show()
        return [box]

    def export_html(self, path: str | Path = "creamviz_theorem.html") -> Path:
        """Write the current figures and verdict to one standalone HTML file."""
        section = Section(title="Theorem B.1 audit", paragraphs=[self.verdict],
                          figures=[go.Figure(f) for f in self.figures.values()])
        return write_report(path, "creamviz — Theorem B.1 explorer", [section])
