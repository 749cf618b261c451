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
