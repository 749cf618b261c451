"""A real browser: JupyterLab in headless Chromium runs 01_sampling.ipynb and a slider moves a figure."""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def jupyterlab(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the browser test (make setup installs it)")
    work = tmp_path / "nb"
    shutil.copytree(ROOT / "notebooks", work)  # JupyterLab saves notebooks: never touch the repo's copies
    port, token = free_port(), secrets.token_hex(16)
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # render every cell (JupyterLab 4 virtualises off-screen cells by default)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    notifications = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "CREAMVIZ_QUICK": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        yield url, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


LAST_CELL = "Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')).pop()"
PLOT_DATA_JS = f"""() => Array.from(({LAST_CELL}).querySelectorAll('.js-plotly-plot'))
    .map(gd => JSON.stringify((gd.data || []).map(t => [t.name, Array.from(t.y || [])])))"""
ALL_DONE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return kernel && kernel.status === 'idle' &&
        panel.content.widgets.every(c => c.model.type !== 'code' || c.model.executionCount);
}"""


def test_notebook_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright

    url, token = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page_errors = []
        page.on("pageerror", lambda err: page_errors.append(str(err)))
        page.goto(f"{url}/lab/tree/01_sampling.ipynb?token={token}")
        page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&
                   w.sessionContext.session.kernel.status === 'idle'; }""", timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(ALL_DONE_JS, timeout=300_000, polling=500)
        # the explorer (last cell) renders its sliders and four plotly figures
        last = page.locator(".jp-Notebook .jp-Cell").last
        last.locator(".widget-slider").first.wait_for(timeout=60_000)
        page.wait_for_function(f"() => ({LAST_CELL}).querySelectorAll('.js-plotly-plot').length >= 4", timeout=60_000)
        n_plots = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
        assert n_plots >= 9, n_plots  # 5 static figures + 4 explorer figures
        rendered = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot')).filter(g => g.querySelector('.main-svg')).length")
        assert rendered == n_plots
        before = page.evaluate(PLOT_DATA_JS)
        # move the sigma slider ten steps to the right with the keyboard, like a person would
        sigma = last.locator(".widget-slider", has_text="sigma")
        sigma.locator(".noUi-handle").focus()
        for _ in range(10):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(f"(before) => JSON.stringify(({PLOT_DATA_JS})()) !== JSON.stringify(before)",
                               arg=before, timeout=60_000)
        assert page.evaluate(PLOT_DATA_JS) != before
        assert float(sigma.locator(".widget-readout").inner_text()) > 3.0
        page.set_viewport_size({"width": 1300, "height": 1500})
        last.evaluate("cell => cell.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "explorer.png"))
        browser.close()
    assert not page_errors, page_errors


# --------------------------------------------------------------------------- RoPE explorer: update time
ROPE_SETUP_JS = f"""() => {{
    const plots = Array.from(({LAST_CELL}).querySelectorAll('.js-plotly-plot'));
    window.__ropeDrawn = plots.map(() => 0);
    plots.forEach((gd, k) => gd.on('plotly_afterplot', () => {{ window.__ropeDrawn[k] = performance.now(); }}));
    window.__ropeBusy = 0; window.__ropeIdle = 0;
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    kernel.statusChanged.connect((_, status) => {{
        if (status === 'busy') window.__ropeBusy = performance.now();
        if (status === 'idle') window.__ropeIdle = performance.now();
    }});
    return plots.length;
}}"""
ROPE_CHANGE_JS = f"""([label, value]) => {{
    const box = Array.from(({LAST_CELL}).querySelectorAll('.widget-dropdown'))
        .find(d => d.querySelector('label') && d.querySelector('label').textContent.trim() === label);
    const select = box.querySelector('select');
    window.__ropeT0 = performance.now();
    select.value = value;
    select.dispatchEvent(new Event('change', {{bubbles: true}}));
}}"""
# the kernel handled the change (busy, then idle), some figure was redrawn, then 400 ms of quiet;
# a figure whose content did not change gets no update and no redraw
ROPE_DRAWN_JS = """() => {
    const t0 = window.__ropeT0, drawn = window.__ropeDrawn.filter(t => t > t0);
    return window.__ropeBusy > t0 && window.__ropeIdle > window.__ropeBusy && drawn.length > 0 &&
        performance.now() - Math.max(window.__ropeIdle, ...drawn) > 400;
}"""
ROPE_ELAPSED_JS = """() => [(Math.max(...window.__ropeDrawn.filter(t => t > window.__ropeT0)) - window.__ropeT0) / 1000,
    window.__ropeDrawn.filter(t => t > window.__ropeT0).length]"""
ROPE_WAVELENGTHS_JS = f"""() => {{
    const gd = Array.from(({LAST_CELL}).querySelectorAll('.js-plotly-plot'))
        .find(g => g.layout && g.layout.title && String(g.layout.title.text || '').startsWith('Wavelength'));
    return gd && gd.data && gd.data.length ? JSON.stringify([gd.layout.title.text,
        gd.data.map(t => Array.from(t.y || []))]) : 'missing';
}}"""


def test_rope_explorer_updates_within_a_second(jupyterlab):
    """Notebook 07's RopeExplorer (N = 4096, L = 32768, 2000 samples) in JupyterLab: time from a
    dropdown change in the page until every figure has been redrawn (plotly_afterplot)."""
    import json
    import statistics

    from playwright.sync_api import sync_playwright

    url, token = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page_errors = []
        page.on("pageerror", lambda err: page_errors.append(str(err)))
        page.goto(f"{url}/lab/tree/07_rope.ipynb?token={token}")
        page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&
                   w.sessionContext.session.kernel.status === 'idle'; }""", timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(ALL_DONE_JS, timeout=300_000, polling=500)
        page.wait_for_function(f"() => ({LAST_CELL}).querySelectorAll('.js-plotly-plot .main-svg').length >= 4",
                               timeout=60_000)
        assert page.evaluate(ROPE_SETUP_JS) == 4
        page.wait_for_timeout(1000)
        page.evaluate(ROPE_CHANGE_JS, ["scaling", "llama3"])  # warm-up (first redraw compiles code paths)
        page.wait_for_function(ROPE_DRAWN_JS, timeout=30_000, polling="raf")
        warmup = page.evaluate(ROPE_ELAPSED_JS)[0]
        changes = [("scaling", "linear"), ("scaling", "dynamic"), ("scaling", "llama3"), ("scaling", "default"),
                   ("scaling", "yarn"), ("scaling", "linear"), ("sampler", "pose"), ("sampler", "randpos"),
                   ("sampler", "cream"), ("scaling", "yarn")]
        timings = []
        for label, value in changes:
            before = page.evaluate(ROPE_WAVELENGTHS_JS)
            page.evaluate(ROPE_CHANGE_JS, [label, value])
            page.wait_for_function(ROPE_DRAWN_JS, timeout=30_000, polling="raf")
            seconds, redrawn = page.evaluate(ROPE_ELAPSED_JS)
            python_ms = page.evaluate(f"() => ({LAST_CELL}).querySelector('.widget-html').textContent")
            timings.append({"change": f"{label}={value}", "seconds": round(seconds, 3), "figures_redrawn": redrawn,
                            "status": python_ms.strip()})
            if label == "scaling":  # the wavelengths really changed
                after = page.evaluate(ROPE_WAVELENGTHS_JS)
                assert "missing" not in (before, after) and after != before, (before[:200], after[:200])
        assert not page.evaluate(f"() => ({LAST_CELL}).querySelector('.creamviz-error')")
        last = page.locator(".jp-Notebook .jp-Cell").last
        last.evaluate("cell => cell.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "rope_explorer.png"))
        browser.close()
    seconds = [t["seconds"] for t in timings]
    (ARTIFACTS / "rope_explorer_timing.json").write_text(json.dumps({"warmup_s": warmup, "changes": timings}, indent=1))
    print(f"RopeExplorer browser update times (s): warm-up {warmup:.3f}, then {seconds}")
    assert not page_errors, page_errors
    assert statistics.median(seconds) < 1.0, timings
    assert max(seconds) < 2.0, timings  # a loaded 2-core machine may stretch one update, never to 2 s
