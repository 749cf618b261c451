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
from creamviz.proof import CLAIMS, VARIANTS  # plain descriptions: importing them needs no solver
from creamviz.report import Section, write_report
from creamviz.widgets.base import ExplorerBase

__all__ = ["TheoremExplorer", "theorem_figures", "proof_status_text"]

MAX_REGION_CELLS = 400_000  # head lengths x placements computed for the region map


def theorem_figures(train_len: int, target_len: int, head_len: int, tail_len: int) -> tuple[dict[str, go.Figure], theorem.TheoremAudit]:
    """The audit at one configuration and its figures: span profile and region map over L_h."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (train_len, target_len, tail_len))
    n_heads = max(1, train_len - tail_len - 1) if ints else 1  # rows of the region map: L_h = 1 .. N - L_t - 1
    if ints and n_heads * target_len > MAX_REGION_CELLS:  # refuse before allocating anything
        raise ValueError(f"train_len={train_len:,}, target_len={target_len:,}, tail_len={tail_len:,}: the region map "
                         f"would have {n_heads:,} head lengths x {target_len:,} placements; at most "
                         f"{MAX_REGION_CELLS:,} cells (L <= {MAX_REGION_CELLS // n_heads:,} at this N and L_t)")
    audit = theorem.audit(train_len, target_len, head_len, tail_len)
    region = theorem.region_map(train_len, target_len, head_lens=list(range(1, train_len - tail_len)), tail_len=tail_len)
    # both figures stay small at any N and L: the region map outlines the maximal / condition cells
    # (points on their perimeter only), the span profile draws runs of placements as bars
    fig = F.fig_region_map(region)
    profile = fig_span_profile(audit)
    return {"span_profile": profile, "region_map": fig}, audit


def proof_status_text() -> str:
    """Which statements about Theorem B.1 hold for every N and L (proved by the SMT solver in
    :mod:`creamviz.proof`) and what the explorer only audits at the configuration it shows. Static:
    derived from the module-level claim descriptions (the proof tests check them against the solver)."""
    proved = [c for c in CLAIMS if c.status == "proved"]
    refuted = [v for v in VARIANTS if v.status == "refuted"]
    return (f"Proved for every N and L (SMT solver z3, creamviz.proof; claims {proved[0].key}–{proved[-1].key}): "
            + "; ".join(c.title for c in proved) + ". "
            + "Refuted with a counterexample: " + "; ".join(v.title for v in refuted) + ". "
            + "Only audited, at the configuration you pick: the numbers and figures above — |D_r| at every "
            f"placement, brute-forced over the pairs of the real id vector when placements × N² ≤ "
            f"{theorem.BRUTE_FORCE_PAIRS:,}, else from the six-interval closed form, whose model claim 0 proves.")


class TheoremExplorer(ExplorerBase):
    """State + view of the Theorem B.1 audit. Traits ``train_len`` (N), ``target_len`` (L),
    ``head_len`` (L_h), ``tail_len`` (L_t); ``.audit`` and ``.verdict`` follow them."""

    train_len = T.Int(12)
    target_len = T.Int(60)
    head_len = T.Int(2)
    tail_len = T.Int(3)
    verdict = T.Unicode("")

    figure_names = ("span_profile", "region_map")
    wide_figures = ("span_profile", "region_map")  # every placement along x: the whole row
    param_names = ("train_len", "target_len", "head_len", "tail_len")

    def _compute(self) -> dict[str, go.Figure]:
        figs, audit = theorem_figures(self.train_len, self.target_len, self.head_len, self.tail_len)
        self.audit = audit
        self.verdict = theorem.describe_audit(audit)
        return figs

    def _controls(self) -> list[W.Widget]:
        style = {"description_width": "110px"}
        layout = W.Layout(width="340px")
        slider = dict(style=style, continuous_update=False)
        self.bind("train_len", W.IntSlider(min=3, max=64, description="N (train_len)", layout=layout, **slider))
        self.bind("target_len", W.IntSlider(min=4, max=1024, description="L (target_len)",
                                            layout=W.Layout(width="260px"), readout=False, **slider))
        self.bind("target_len", W.IntText(layout=W.Layout(width="80px"), tooltip="type any L"),
                  key="target_len_text")
        self.bind("head_len", W.IntSlider(min=1, max=62, description="L_h (head_len)", layout=layout, **slider))
        self.bind("tail_len", W.IntSlider(min=1, max=62, description="L_t (tail_len)", layout=layout, **slider))
        self.observe(self._refresh_ranges, list(self.param_names))
        self._refresh_ranges()
        c = self.controls
        return [c["train_len"], W.HBox([c["target_len"], c["target_len_text"]]), c["head_len"], c["tail_len"]]

    def _refresh_ranges(self, _change=None) -> None:
        """Slider ranges follow validity: L_h in [1, N-2], L_t in [1, N-1-L_h], L from N+1 up to
        the region map's cell limit (the typed box takes any L)."""
        a = getattr(self, "audit", None)
        ok = all(isinstance(getattr(self, n), int) for n in self.param_names)
        big_n, head, tail = (self.train_len, self.head_len, self.tail_len) if ok else \
            ((a.train_len, a.head_len, a.tail_len) if a else (12, 2, 3))
        big_n = max(3, big_n)
        top_l = max(big_n + 1, min(1024, MAX_REGION_CELLS // max(1, big_n - max(1, tail) - 1)))
        self._show_in_control("target_len", big_n + 1, top_l)
        self._show_in_control("head_len", 1, max(1, big_n - 2))
        self._show_in_control("tail_len", 1, max(1, big_n - 1 - max(1, head)))

    def _extra_views(self) -> list[W.Widget]:
        proved = W.HTML(f"<p style='max-width:900px;color:#444'><b>Proved vs audited.</b> "
                        f"{html.escape(proof_status_text())}</p>")
        return [self._trait_note("verdict", "Verdict"), proved]

    def export_html(self, path: str | Path = "creamviz_theorem.html") -> Path:
        """Write the current figures and verdict to one standalone HTML file."""
        section = Section(title="Theorem B.1 audit", paragraphs=[self.verdict, proof_status_text()],
                          figures=[go.Figure(f) for f in self.figures.values()])
        return write_report(path, "creamviz — Theorem B.1 explorer", [section])
