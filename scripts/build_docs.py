"""Build the documentation site into ``site/``, offline.

    python scripts/build_docs.py [--executed DIR] [--only 01,07] [--site site]

1. Every notebook in ``notebooks/`` is executed once in quick mode (``CREAMVIZ_QUICK=1``) with
   nbclient into ``build/docs/executed/`` -- unless an executed copy with the same code cells is
   already there, or in ``--executed DIR`` and newer than the source (the browser suite saves the
   notebooks it ran in JupyterLab to ``test-artifacts/executed/``).
2. The executed notebooks are made static for the site (``build/docs/src/learn/``): each plotly
   output becomes a ``<div>`` drawn by the bundled plotly.js; each explorer widget (widget state is
   not saved) becomes its figures at default settings plus one sentence on what its controls change.
3. ``docs/`` (pages and images), the bundled plotly.js and MathJax go to ``build/docs/src/``, and
   ``mkdocs build`` (mkdocs-material, mkdocs-jupyter, mkdocstrings) writes ``site/``.

Nothing is downloaded: plotly.js comes from the plotly package, MathJax from jupyter-server-mathjax,
the theme uses the system fonts.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
BUILD = ROOT / "build" / "docs"
EXECUTED = BUILD / "executed"   # nbclient's executed notebooks (reused while newer than the source)
SRC = BUILD / "src"             # mkdocs' docs_dir, assembled here
PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# what each explorer's controls change: shown under its static figures on the site
WIDGET_NOTES = {
    "SamplerExplorer": "In the notebook the sliders change the method, N, L, k, μ, σ, p_continuity and the "
                       "middle mode; every figure (sampled position vectors, segment density, middle "
                       "placement, distance coverage) is redrawn for the new sampler.",
    "TheoremExplorer": "In the notebook the sliders change N, L, L_h and L_t; the span profile, the region "
                       "map and the verdict on Theorem B.1 follow (try N = 16, L = 44, L_h = L_t = 2, "
                       "below L*).",
    "RopeExplorer": "In the notebook the controls change the model geometry, the scaling (none, linear, "
                    "dynamic, YaRN, LongRoPE, Llama 3), the factor, N, L, the base θ, YaRN's β, the sampler "
                    "and the number of samples; the wavelength, decay and angle-coverage figures are redrawn.",
    "TrainingLauncher": "In the notebook this is a launch / cancel / resume panel: it fine-tunes the tiny "
                        "model with the sampler set above, draws the loss live and evaluates the run. It "
                        "needs a running kernel, so the site shows no figure for it.",
}
WIDGET_CLASSES = "|".join(WIDGET_NOTES)
# under each notebook's title on the site
QUICK_NOTE = ('<div class="admonition note"><p class="admonition-title">Rendered from a quick run</p><p>The outputs '
              'below come from running this notebook with <code>CREAMVIZ_QUICK=1</code> (toy sizes, a few training '
              'steps), so its numbers are not results: the measured ones are on the findings pages. Run it yourself '
              'with <code>make lab</code> (<code>notebooks/{name}</code>).</p></div>')
EXPLORER_RE = re.compile(rf"(\w+)\s*=\s*({WIDGET_CLASSES})\(")


def execute(path: Path, out: Path, timeout: int = 1800) -> float:
    """Run ``path`` top to bottom with nbclient (quick sizes) and write it to ``out``; seconds taken."""
    from nbclient import NotebookClient

    start = time.time()
    nb = nbformat.read(path, as_version=4)
    env_before = {k: os.environ.get(k) for k in ("CREAMVIZ_QUICK", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(CREAMVIZ_QUICK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return time.time() - start


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def executed_notebooks(executed_dir: Path | None, only: list[str] | None = None) -> dict[str, Path]:
    """``{name: executed copy}`` for every notebook. An executed copy is used when its code cells are
    the source's: from ``executed_dir`` (the browser suite's) if it is also newer than the source,
    else from the last build; otherwise the notebook is executed with nbclient."""
    result = {}
    for src in sorted(NOTEBOOKS.glob("*.ipynb")):
        if only and not any(src.name.startswith(o) for o in only):
            continue
        code = code_sources(nbformat.read(src, as_version=4))
        found = None
        for folder, need_newer in ((executed_dir, True), (EXECUTED, False)):
            copy = folder / src.name if folder is not None else None
            if copy is None or not copy.exists() or (need_newer and copy.stat().st_mtime <= src.stat().st_mtime):
                continue
            if code_sources(nbformat.read(copy, as_version=4)) == code:
                found = copy
                break
        if found:
            print(f"[docs] {src.name}: executed copy {found}")
            result[src.name] = found
        else:
            seconds = execute(src, EXECUTED / src.name)
            print(f"[docs] {src.name}: executed with nbclient in {seconds:.0f} s")
            result[src.name] = EXECUTED / src.name
    return result


def with_outputs(source: Path, executed: Path):
    """The source notebook (its current text) with the executed copy's outputs."""
    nb = nbformat.read(source, as_version=4)
    done = [c for c in nbformat.read(executed, as_version=4).cells if c.cell_type == "code"]
    for cell, ran in zip([c for c in nb.cells if c.cell_type == "code"], done, strict=True):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    return nb


def plotly_html(fig_json: dict, div_id: str) -> str:
    """A plotly figure as a ``<div>`` drawn by the page's plotly.js once the page has loaded."""
    from plotly.io.json import to_json_plotly

    data = to_json_plotly({"data": fig_json.get("data", []), "layout": fig_json.get("layout", {})})
    data = data.replace("</", "<\\/")  # never close the script early
    height = fig_json.get("layout", {}).get("height") or 450
    return (f'<div id="{div_id}" class="plotly-graph-div creamviz-figure" style="width:100%;height:{height}px"></div>'
            f'<script>document.addEventListener("DOMContentLoaded",function(){{var f={data};'
            f'Plotly.newPlot("{div_id}",f.data,f.layout,{{responsive:true,displaylogo:false}});}});</script>')


def html_output(text: str) -> dict:
    return nbformat.v4.new_output("display_data", data={"text/html": text})


def explorer_classes(nb) -> dict[int, str]:
    """For each code cell that displays a widget: the explorer class it shows, read from the
    assignments (``explorer = SamplerExplorer(...)``) and the cell's last line."""
    variables, shown = {}, {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for var, cls in EXPLORER_RE.findall(cell.source):
            variables[var] = cls
        lines = [ln for ln in cell.source.strip().splitlines() if ln.strip() and not ln.startswith("#")]
        last = lines[-1].strip() if lines else ""
        direct = re.match(rf"({WIDGET_CLASSES})\(", last)
        name = last.split(".")[0].split("(")[0]
        shown[i] = direct.group(1) if direct else variables.get(name)
    return shown


def static_widget(cls_name: str, prefix: str) -> list[dict]:
    """The explorer's figures at default settings and the sentence on its controls."""
    import creamviz.widgets as widgets

    outputs = []
    if cls_name != "TrainingLauncher":
        explorer = getattr(widgets, cls_name)()
        for j, fig in enumerate(explorer.figures.values()):
            outputs.append(html_output(plotly_html(fig.to_plotly_json(), f"{prefix}-{j}")))
        note = f"<p><em>Static view: {cls_name} at its default settings.</em> {html.escape(WIDGET_NOTES[cls_name])}</p>"
    else:
        note = f"<p><em>{cls_name}.</em> {html.escape(WIDGET_NOTES[cls_name])}</p>"
    return [html_output(note)] + outputs


def make_static(nb, stem: str) -> None:
    """Plotly outputs -> ``<div>`` + plotly.js call; widget outputs -> static figures + a note."""
    shown = explorer_classes(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = []
        for k, out in enumerate(cell.get("outputs", [])):
            data = out.get("data", {})
            if PLOTLY_MIME in data:
                outputs.append(html_output(plotly_html(data[PLOTLY_MIME], f"fig-{stem}-{i}-{k}")))
            elif WIDGET_MIME in data:
                cls_name = shown.get(i)
                if cls_name:
                    outputs.extend(static_widget(cls_name, f"fig-{stem}-{i}-{k}"))
            else:
                outputs.append(out)
        cell.outputs = outputs
    nb.metadata.pop("widgets", None)


def assemble(executed: dict[str, Path]) -> None:
    """``build/docs/src``: docs/ pages and images, the static notebooks, plotly.js and MathJax."""
    import jupyter_server_mathjax
    import plotly

    if SRC.exists():
        shutil.rmtree(SRC)
    shutil.copytree(ROOT / "docs", SRC, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    learn = SRC / "learn"
    learn.mkdir()
    for name, path in executed.items():
        nb = with_outputs(NOTEBOOKS / name, path)
        make_static(nb, Path(name).stem)
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(QUICK_NOTE.format(name=name)))
        nbformat.write(nb, learn / name)
    assets = SRC / "assets"
    assets.mkdir(exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", assets / "plotly.min.js")
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", assets / "mathjax")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", type=Path, default=None,
                        help="folder of notebooks already executed (e.g. test-artifacts/executed)")
    parser.add_argument("--only", default=None, help="comma-separated notebook prefixes (a partial site)")
    parser.add_argument("--site", type=Path, default=ROOT / "site", help="output folder")
    parser.add_argument("--no-build", action="store_true", help="only execute the notebooks")
    args = parser.parse_args(argv)
    start = time.time()
    only = args.only.split(",") if args.only else None
    executed = executed_notebooks(args.executed, only)
    if args.no_build:
        return 0
    assemble(executed)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--clean", "-q", "-f", str(ROOT / "mkdocs.yml"),
                    "-d", str(args.site.resolve())], cwd=ROOT, check=True, env=env)
    print(f"[docs] site in {args.site} ({time.time() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
