"""A real browser: JupyterLab in headless Chromium runs every notebook from top to bottom, as a new
user would, and drives its widgets.

Per notebook: run all cells (CREAMVIZ_QUICK=1 sizes); no error output and none of transformers'
loading bars or length warnings; every plotly figure drawn. Per explorer (SamplerExplorer,
TheoremExplorer, ...): move one control with the keyboard and check a figure changed; type one
invalid value and check the inline error; time what the user waits for — from the change until
the browser has finished drawing (the last DOM mutation of the explorer) — over the most
expensive settings its controls allow, in one notebook per explorer (written to test-artifacts/<notebook>-browser.json; the target
is 1 s, a wait over ``CREAMVIZ_WAIT_LIMIT_S`` (8 s) fails: a frozen explorer). In 03 and 05: the
TrainingLauncher launches a short run, cancels it, resumes it, and the step counter and the loss
curve continue from the checkpoint. A screenshot of every notebook's last state (and of each
explorer) goes to the git-ignored test-artifacts/ folder.
"""

from __future__ import annotations

import json
import os
import re
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
# 06 has no widgets to drive and runs SmolLM2 on the CPU for minutes; tests/test_notebooks.py executes it
BROWSER_SKIP = {"06_real_model.ipynb"}
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb") if p.name not in BROWSER_SKIP)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1500, "height": 1100}  # a laptop-sized window: the output area is ~1200 px wide
WAIT_TARGET_S = 1.0  # what a user should wait for a figure after moving a control (reported in waits)
WAIT_LIMIT_S = float(os.environ.get("CREAMVIZ_WAIT_LIMIT_S", "8"))  # fails the test: a frozen explorer
NOISE = ("Loading weights", "Writing model shards", "predefined maximum length")  # must not reach the notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab server on a copy of notebooks/ and one headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the browser test (make setup installs it)")
    tmp = tmp_path_factory.mktemp("lab")
    work = tmp / "nb"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns("runs", ".ipynb_checkpoints"))
    port, token = free_port(), secrets.token_hex(16)
    settings = tmp / "settings" / "@jupyterlab"
    (settings / "notebook-extension").mkdir(parents=True)
    # render every cell (JupyterLab 4 virtualises off-screen cells by default)
    (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JUPYTER_CONFIG_DIR": str(tmp / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "rt"), "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "CREAMVIZ_QUICK": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log = open(tmp / "lab.log", "w")
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
            raise RuntimeError("JupyterLab did not start: " + (tmp / "lab.log").read_text()[-2000:])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield browser, url, token, work
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# ------------------------------------------------------------------------------ page helpers
LAST_CELL = "Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell')).pop()"
KERNEL_IDLE_JS = """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel &&
           w.sessionContext.session.kernel.status === 'idle'; }"""
ALL_DONE_JS = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    return kernel && kernel.status === 'idle' &&
        panel.content.widgets.every(c => c.model.type !== 'code' || c.model.executionCount);
}"""
OUTPUTS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .filter(c => c.model.type === 'code')
    .flatMap((c, i) => c.model.outputs.toJSON().map(o => ({cell: i, type: o.output_type, name: o.name || '',
        text: [].concat(o.text || []).join('') + (o.ename ? o.ename + ': ' + o.evalue : '')})))"""
# what the figures of a view show: trace names, data heads, titles (typed arrays included)
PLOTS_JS = """(root) => {
    const head = a => a == null ? null : (ArrayBuffer.isView(a) || Array.isArray(a)) ?
        Array.from(a).slice(0, 400) : JSON.stringify(a).slice(0, 4000);
    return JSON.stringify(Array.from(root.querySelectorAll('.js-plotly-plot')).map(gd => [
        (gd.layout && gd.layout.title && gd.layout.title.text) || '',
        (gd.data || []).map(t => [t.name, head(t.x), head(t.y), t.z ? t.z.length : null])]));
}"""
WATCH_JS = """(root) => {
    if (window.__cvObserver) window.__cvObserver.disconnect();
    window.__cvLast = performance.now();
    window.__cvObserver = new MutationObserver(() => { window.__cvLast = performance.now(); });
    window.__cvObserver.observe(root, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
ERROR_JS = "(root) => { const e = root.querySelector('.creamviz-error'); return e ? e.innerText : ''; }"
# the figures changed (or a new inline error came up) and the view has been still for 800 ms
# (nothing left to draw), and no "computing…"
SETTLED_JS = f"""([root, before, errorBefore]) => (({PLOTS_JS})(root) !== before ||
    ({ERROR_JS})(root) !== errorBefore) &&
    performance.now() - window.__cvLast > 800 && !root.innerText.includes('computing')"""


def open_notebook(page, url, token, name):
    # ?reset: a fresh workspace, so earlier notebooks are not reopened (each with a new kernel)
    page.goto(f"{url}/lab/tree/{name}?reset&token={token}")
    page.wait_for_function(f"""() => {{ const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
        return w && w.context && w.context.path.endsWith({json.dumps(name)}) && ({KERNEL_IDLE_JS})(); }}""",
                           timeout=120_000)
    page.wait_for_timeout(500)
    dialog = page.locator(".jp-Dialog")
    if dialog.count():  # e.g. a kernel choice: take the default
        dialog.locator(".jp-mod-accept").first.click()


STARTED_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets
    .some(c => c.model.type === 'code' && c.model.executionCount)"""


def run_all(page) -> None:
    """Run every cell and wait until the last has run (run-all is asked again if nothing started)."""
    for attempt in range(2):
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        try:
            page.wait_for_function(STARTED_JS, timeout=90_000, polling=500)
            break
        except Exception:  # noqa: BLE001 - nothing ran: a dialog or a kernel not ready yet
            if attempt:
                raise
            dialog = page.locator(".jp-Dialog")
            if dialog.count():
                dialog.locator(".jp-mod-accept").first.click()
    page.wait_for_function(ALL_DONE_JS, timeout=600_000, polling=500)


def control(root, label: str):
    """The ipywidgets control whose description is exactly ``label``."""
    return root.locator(".widget-inline-hbox").filter(
        has=root.page.locator("label.widget-label", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))).first


def plots(root) -> str:
    return root.evaluate(PLOTS_JS)


def timed_change(page, root, act, what: str, waits: list) -> float:
    """Do ``act()`` and return the seconds until the view has redrawn (its last DOM mutation).
    A change to an invalid combination (an inline error, figures kept) is recorded as such."""
    handle = root.element_handle()
    before, error_before = plots(root), root.evaluate(ERROR_JS)
    root.evaluate(WATCH_JS)
    t0 = page.evaluate("performance.now()")
    act()
    page.wait_for_function(SETTLED_JS, arg=[handle, before, error_before], timeout=120_000, polling=100)
    seconds = (page.evaluate("window.__cvLast") - t0) / 1000.0
    invalid = bool(root.evaluate(ERROR_JS))
    waits.append({"change": what, "wait_s": round(seconds, 3), **({"invalid": True} if invalid else {})})
    return seconds


def type_readout(page, slider, value) -> callable:
    """Type ``value`` into a slider's editable readout; returns the act that commits it (Enter)."""
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    return lambda: page.keyboard.press("Enter")


def set_text(page, box, value) -> None:
    type_text(box, value)()


def type_text(box, value) -> callable:
    """Type ``value`` into a text / number field; returns the act that commits it (Enter)."""
    field = box.locator("input").first
    field.fill(str(value))

    def commit():
        field.press("Enter")
        field.blur()
    return commit


def step_number(launcher) -> int:
    """The step the launcher's progress shows ("step 12", "12 / 40", ...): its first integer."""
    text = launcher.locator("label.widget-label", has_text=re.compile(r"^\s*step \d+")).first.inner_text()
    match = re.search(r"\d+", text)
    return int(match.group()) if match else 0


def status_text(launcher) -> str:
    return launcher.locator(".widget-html").all_inner_texts().__str__()


LOSS_X_JS = """(root) => { const gd = root.querySelectorAll('.js-plotly-plot')[0];
    const t = gd && gd.data && gd.data[0]; return t && t.x ? Array.from(t.x).map(Number) : []; }"""


# ------------------------------------------------------------------------------ explorers
def drive_sampler_explorer(page, root, waits, snap, full=True):
    """Move σ one keyboard step (a figure changes); with ``full``, also the most expensive settings
    and an invalid typed L (done once, in the notebook FULL_DRIVE names)."""
    sigma = control(root, "σ (sigma)")
    before = plots(root)
    sigma.locator(".noUi-handle").focus()
    timed_change(page, root, lambda: page.keyboard.press("ArrowRight"), "sigma +1 step (keyboard)", waits)
    assert plots(root) != before
    snap("moved")  # the explorer as a user first sees it, one control moved
    if not full:
        return
    readout = {label: control(root, label).locator(".widget-readout").inner_text().strip()
               for label in ("N (train_len)", "L (target_len)", "samples")}
    # the most expensive settings the controls allow (from N = 256, L = max is invalid until N grows:
    # the order keeps every step a visible change, a redraw or a new inline error)
    target = control(root, "L (target_len)")
    for what, box, value in (("L = max", target, "262144"), ("N = max", control(root, "N (train_len)"), "8192"),
                             ("samples = max", control(root, "samples"), "200000")):
        commit = type_readout(page, box, value)
        timed_change(page, root, commit, f"{what} ({value})", waits)
    method = control(root, "method").locator("select")
    timed_change(page, root, lambda: method.select_option("randpos"), "method = randpos at max L", waits)
    timed_change(page, root, lambda: method.select_option("cream"), "method = cream at max L", waits)
    # an invalid value, typed: L not a multiple of N in reference mode -> inline error, figures kept
    kept = plots(root)
    type_readout(page, target, "262128")()  # N = 8192 now: L = 32 N - 16
    error = root.locator(".creamviz-error")
    error.wait_for(timeout=60_000)
    assert "target_len" in error.inner_text()
    assert plots(root) == kept
    # back to where the notebook left it (a launcher below shares these parameters)
    for label in ("N (train_len)", "L (target_len)", "samples"):
        type_readout(page, control(root, label), readout[label].replace(",", ""))()
        page.wait_for_timeout(300)
    page.wait_for_function(f"(root) => ({ERROR_JS})(root) === '' && !root.innerText.includes('computing')",
                           arg=root.element_handle(), timeout=120_000, polling=200)


def drive_theorem_explorer(page, root, waits, snap):
    big_l = control(root, "L (target_len)")
    typed_l = root.locator(".widget-text").filter(has=root.page.locator("input[type=number]")).first  # L, typed
    before = plots(root)
    big_l.locator(".noUi-handle").focus()
    timed_change(page, root, lambda: page.keyboard.press("ArrowRight"), "L +1 step (keyboard)", waits)
    assert plots(root) != before
    for what, label, value in (("L = max", None, "1024"), ("N = max", "N (train_len)", "64"),
                               ("L_h = 20", "L_h (head_len)", "20"), ("L_t = 20", "L_t (tail_len)", "20"),
                               ("L = 1000", None, "1000")):
        commit = type_text(typed_l, value) if label is None else type_readout(page, control(root, label), value)
        timed_change(page, root, commit, f"{what} at N, L up to 64, 1024", waits)
    # invalid, typed into the L field beside the slider: L below N
    kept = plots(root)
    set_text(page, typed_l, "10")
    error = root.locator(".creamviz-error")
    error.wait_for(timeout=60_000)
    assert "target_len" in error.inner_text()
    assert plots(root) == kept


def drive_rope_explorer(page, root, waits, snap):
    """Every scaling and sampler switch at the notebook's settings (07: N = 4096, L = 32,768, 2000
    samples): the median wait under 1 s and none at 2 s; then L typed below N. (The largest settings
    are timed in test_explorers_fit_the_window.)"""
    import statistics

    scaling = control(root, "scaling").locator("select")
    sampler = control(root, "sampler").locator("select")
    before = plots(root)
    timed_change(page, root, lambda: scaling.select_option("llama3"), "scaling = llama3 (warm-up)", [])
    assert plots(root) != before
    changes = [(scaling, "linear"), (scaling, "dynamic"), (scaling, "llama3"), (scaling, "default"), (scaling, "yarn"),
               (scaling, "linear"), (sampler, "pose"), (sampler, "randpos"), (sampler, "cream"), (scaling, "yarn")]
    timings = []
    for select, value in changes:
        what = f"{'scaling' if select is scaling else 'sampler'} = {value}"
        timed_change(page, root, lambda select=select, value=value: select.select_option(value), what, timings)
    waits += timings
    seconds = [t["wait_s"] for t in timings]
    assert statistics.median(seconds) < WAIT_TARGET_S, timings
    assert max(seconds) < 2 * WAIT_TARGET_S, timings  # a loaded 2-core machine may stretch one, never to 2 s
    assert not root.evaluate(ERROR_JS)
    # L below N, typed: the slider admits valid L only (multiples of N from 2N), so the typed value
    # lands on its lowest valid setting and no error is shown
    target = control(root, "L (target_len)")
    big_n = int(control(root, "N (train_len)").locator(".widget-readout").inner_text().replace(",", ""))
    assert int(target.locator(".widget-readout").inner_text().replace(",", "")) != 2 * big_n
    timed_change(page, root, type_readout(page, target, "128"), "L typed below N", waits)
    assert int(target.locator(".widget-readout").inner_text().replace(",", "")) == 2 * big_n
    assert not root.locator(".creamviz-error").is_visible()


# an explorer shown in several notebooks is driven through its most expensive settings in one of
# them; the others move one control (the same code, the same figures)
FULL_DRIVE = {"creamviz-samplerexplorer": "01_sampling.ipynb"}
EXPLORERS = {"creamviz-samplerexplorer": drive_sampler_explorer,
             "creamviz-theoremexplorer": drive_theorem_explorer,
             "creamviz-ropeexplorer": drive_rope_explorer}


def drive_launcher(page, launcher, *, steps: int, cancel_at: int, out: str | None = None):
    """Launch, cancel after ``cancel_at`` steps, resume: the step counter and the loss curve go on
    from the checkpoint and the run completes all ``steps``. ``out``: the output dir to type, None
    to leave the launcher's (blank = its automatic, timestamped one)."""
    settings = [("steps", steps), ("batch size", 2), ("warm-up steps", 0), ("eval examples", 1)]
    if out is not None:
        settings.append(("output dir", out))
    for label, value in settings:
        set_text(page, control(launcher, label), value)
    resume = launcher.locator(".widget-checkbox input[type=checkbox]").first
    if resume.is_checked():
        resume.click()
    launcher.get_by_role("button", name="launch").click()
    page.wait_for_function(f"(root) => /running/.test(root.innerText) || ({ERROR_JS})(root) !== ''",
                           arg=launcher.element_handle(), timeout=60_000)
    assert not launcher.evaluate(ERROR_JS), launcher.evaluate(ERROR_JS)
    deadline = time.time() + 300
    while step_number(launcher) < cancel_at and time.time() < deadline:
        page.wait_for_timeout(100)
    launcher.get_by_role("button", name="cancel").click()
    page.wait_for_function("(root) => /cancelled/.test(root.innerText)", arg=launcher.element_handle(), timeout=300_000)
    stopped = step_number(launcher)
    assert cancel_at <= stopped < steps, stopped
    loss_x = launcher.evaluate(LOSS_X_JS)
    assert loss_x and max(loss_x) == stopped, (loss_x, stopped)
    # resume: tick the box (output dir as it was), launch again
    resume.click()
    assert resume.is_checked()
    launcher.get_by_role("button", name="launch").click()
    seen = []
    deadline = time.time() + 600
    while time.time() < deadline:
        text = launcher.inner_text()
        seen.append(step_number(launcher))
        if re.search(r"\bdone\b|\bfailed\b", text) and "running" not in text and "evaluating" not in text:
            break
        page.wait_for_timeout(150)
    assert "failed" not in launcher.inner_text(), launcher.inner_text()
    assert step_number(launcher) == steps
    resumed_steps = [s for s in seen if s > 0]
    loss_x = launcher.evaluate(LOSS_X_JS)
    problems = []
    if not resumed_steps or min(resumed_steps) < stopped:  # never back below the checkpoint
        problems.append(f"the step counter restarted below the checkpoint {stopped}: {seen[:12]}")
    # the loss curve keeps the losses before the cancel and continues to the end, step by step
    if sorted(set(loss_x)) != list(range(1, steps + 1)):
        problems.append(f"the loss curve does not run 1 … {steps} across the resume: steps {loss_x}")
    if problems:
        raise ResumeNotContinued("; ".join(problems))
    return stopped


class ResumeNotContinued(AssertionError):
    """The resumed run did not continue the step counter / loss curve from the checkpoint."""


# steps: enough that the cancel lands mid-run even on an idle machine (the tiny model does ~8 steps/s)
LAUNCHER_SETTINGS = {"03_training.ipynb": dict(steps=60, cancel_at=3, out="runs/browser-launcher"),
                     "05_reproduction.ipynb": dict(steps=60, cancel_at=3)}


# ------------------------------------------------------------------------------ the test
EXECUTED = ARTIFACTS / "executed"  # each notebook as run here, outputs included (the docs build reads them)


def save_executed(page, work: Path, name: str) -> Path:
    """Save the notebook from JupyterLab (outputs and widget state included) and copy it to
    ``test-artifacts/executed/<name>``."""
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=60_000,
                           polling=200)
    EXECUTED.mkdir(parents=True, exist_ok=True)
    target = EXECUTED / name
    shutil.copyfile(work / name, target)
    return target


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(lab, name):
    browser, url, token, _work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    stem = Path(name).stem
    page = browser.new_page(viewport=VIEWPORT)
    page_errors = []
    page.on("pageerror", lambda err: page_errors.append(str(err)))
    timings = {"notebook": name}
    resume_problem = ""
    start = time.perf_counter()
    try:
        open_notebook(page, url, token, name)
        run_all(page)
        timings["run_all_s"] = round(time.perf_counter() - start, 1)
        outputs = page.evaluate(OUTPUTS_JS)
        errors = [o for o in outputs if o["type"] == "error"]
        assert not errors, errors
        noise = [o for o in outputs if o["type"] == "stream" and any(n in o["text"] for n in NOISE)]
        assert not noise, noise
        # every figure drawn (widget views render asynchronously: give them a moment)
        page.wait_for_function("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
            .every(g => g.querySelector('.main-svg'))""", timeout=60_000)
        timings["figures"] = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
        save_executed(page, _work, name)

        timings["waits"] = waits = {}
        for css, drive in EXPLORERS.items():
            views = page.locator(f".{css}")
            for i in range(views.count()):
                root = views.nth(i)
                root.scroll_into_view_if_needed()
                root.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
                record = []
                label = f"{stem}-{css.removeprefix('creamviz-')}{i}"

                def snap(tag, root=root, label=label):
                    root.evaluate("el => el.scrollIntoView({block: 'start'})")
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(ARTIFACTS / f"{label}-{tag}.png"))
                if FULL_DRIVE.get(css, name) == name:
                    drive(page, root, record, snap)
                else:
                    drive(page, root, record, snap, full=False)
                waits[f"{css.removeprefix('creamviz-')}#{i}"] = record
                root.evaluate("el => el.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(300)
                page.screenshot(path=str(ARTIFACTS / f"{stem}-{css.removeprefix('creamviz-')}{i}.png"))
        unknown = page.evaluate(f"""() => Array.from(document.querySelectorAll('.creamviz-explorer'))
            .flatMap(e => Array.from(e.classList)).filter(c => c.startsWith('creamviz-') &&
            c !== 'creamviz-explorer' && !{json.dumps([*EXPLORERS, "creamviz-traininglauncher"])}.includes(c))""")
        assert not unknown, f"explorers without a browser check: {unknown}"

        if name in LAUNCHER_SETTINGS:
            launcher = page.locator(".creamviz-traininglauncher").last
            launcher.scroll_into_view_if_needed()
            t0 = time.perf_counter()
            try:
                timings["cancelled_at_step"] = drive_launcher(page, launcher, **LAUNCHER_SETTINGS[name])
            except ResumeNotContinued as err:
                resume_problem = str(err)
            timings["launcher_s"] = round(time.perf_counter() - t0, 1)
            timings["resume"] = resume_problem or "continued from the checkpoint"
            launcher.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / f"{stem}-launcher.png"))

        # the notebook's last state
        page.evaluate("""() => { const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
            cells[cells.length - 1].scrollIntoView({block: 'end'}); }""")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
        assert not page_errors, page_errors
        for view, record in waits.items():
            worst = max((r for r in record if not r.get("invalid")), key=lambda r: r["wait_s"])
            worst["over_target"] = worst["wait_s"] > WAIT_TARGET_S
            assert worst["wait_s"] < WAIT_LIMIT_S, (view, worst)
        if name in LAUNCHER_SETTINGS:
            assert not resume_problem, resume_problem
    except BaseException:
        page.screenshot(path=str(ARTIFACTS / f"{stem}-failed.png"))  # what the page showed when it failed
        raise
    finally:
        timings["total_s"] = round(time.perf_counter() - start, 1)
        (ARTIFACTS / f"{stem}-browser.json").write_text(json.dumps(timings, indent=1))
        try:
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception:  # noqa: BLE001 - the page may be gone already
            pass
        page.close()


# --------------------------------------------------------------------------- scratch notebooks
def write_notebook(work: Path, name: str, cells: list[str]) -> str:
    """A notebook of ``cells`` (code) in the lab's folder; returns its name."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(work / name))
    return name


# a frame counter: a page whose main thread is busy (parsing and drawing figures) draws few frames
FRAMES_START_JS = """() => { window.__frames = []; window.__framesOn = true;
    const tick = t => { window.__frames.push(t); if (window.__framesOn) requestAnimationFrame(tick); };
    requestAnimationFrame(tick); }"""
FRAMES_STOP_JS = """() => { window.__framesOn = false; const f = window.__frames;
    const gaps = f.slice(1).map((t, i) => t - f[i]).sort((a, b) => a - b);
    const q = p => gaps.length ? gaps[Math.min(gaps.length - 1, Math.floor(p * gaps.length))] : null;
    return {frames: f.length, seconds: f.length > 1 ? (f[f.length - 1] - f[0]) / 1000 : 0,
            median_gap_ms: q(0.5), p95_gap_ms: q(0.95), max_gap_ms: gaps.length ? gaps[gaps.length - 1] : null}; }"""

LATE_CANCEL = dict(steps=300, cancel_at=150)  # the case: a cancel at step >= 150 of 300 never landed


def test_cancel_late_in_a_long_run_stops_within_two_steps(lab):
    """A 300-step launcher run cancelled at step 150: it stops within two steps of the step shown when
    the button was pressed, and the page keeps drawing frames all along (no redraw queue)."""
    browser, url, token, work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    name = write_notebook(work, "late_cancel.ipynb", [
        "from creamviz.widgets import SamplerExplorer, TrainingLauncher\n"
        "explorer = SamplerExplorer(train_len=256, target_len=2048, n_samples=2000)\n"
        f"launcher = TrainingLauncher(explorer, rope='yarn', steps={LATE_CANCEL['steps']}, batch_size=1, "
        "warmup_steps=0, eval_limit=1, out='runs/late-cancel')\n"
        "launcher.widget"])
    page = browser.new_page(viewport=VIEWPORT)
    record = {}
    try:
        open_notebook(page, url, token, name)
        run_all(page)
        launcher = page.locator(".creamviz-traininglauncher").last
        launcher.scroll_into_view_if_needed()
        page.evaluate(FRAMES_START_JS)
        t0 = time.perf_counter()
        launcher.get_by_role("button", name="launch").click()
        deadline = time.time() + 480
        while step_number(launcher) < LATE_CANCEL["cancel_at"] and time.time() < deadline:
            assert "failed" not in launcher.inner_text(), launcher.inner_text()
            page.wait_for_timeout(100)
        record["frames_while_training"] = page.evaluate(FRAMES_STOP_JS)
        page.evaluate(FRAMES_START_JS)
        cancel = launcher.get_by_role("button", name="cancel")
        shown = step_number(launcher)  # what the page shows the moment the button is pressed
        t_click = time.perf_counter()
        cancel.click()
        page.wait_for_function("(root) => /cancelled/.test(root.innerText)", arg=launcher.element_handle(),
                               timeout=120_000)
        record["frames_while_cancelling"] = page.evaluate(FRAMES_STOP_JS)
        stopped = step_number(launcher)
        pressed = re.search(r"cancel pressed at step (\d+)", launcher.inner_text())
        record.update(shown_at_click=shown, stopped_at=stopped, steps=LATE_CANCEL["steps"],
                      kernel_step_at_cancel=int(pressed.group(1)) if pressed else None,
                      cancel_to_cancelled_s=round(time.perf_counter() - t_click, 2),
                      training_s=round(t_click - t0, 1))
        loss_x = launcher.evaluate(LOSS_X_JS)
        record["loss_curve_last_step"] = max(loss_x) if loss_x else None
        page.screenshot(path=str(ARTIFACTS / "late-cancel.png"))
    finally:
        (ARTIFACTS / "late-cancel.json").write_text(json.dumps(record, indent=1))
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()
    # the cancel reaches the training loop and lands within two steps of the step the kernel had
    # reported; the page's counter may trail the kernel by a step or two under load
    assert record["kernel_step_at_cancel"] is not None, record
    assert shown <= record["kernel_step_at_cancel"] <= stopped <= record["kernel_step_at_cancel"] + 2, record
    assert stopped <= shown + 4, record
    assert max(loss_x) == stopped, record  # the curve shows every step up to the checkpoint
    frames = record["frames_while_training"]
    # a responsive page: frames keep coming (before, a redraw per step left them ~300 ms apart)
    assert frames["median_gap_ms"] < 100 and frames["p95_gap_ms"] < 500, record


def test_reopened_page_on_a_running_kernel_shows_every_widget(lab):
    """Notebook 03's widgets (a SamplerExplorer and a TrainingLauncher) after a run, then the page
    closed and opened again (twice) on the same running kernel — the second time while the kernel is busy
    (a cell running, as during a training run) — every view is drawn, none says "Error displaying
    widget: model not found"."""
    browser, url, token, work = lab
    name = write_notebook(work, "reopen.ipynb", [
        "from creamviz.widgets import SamplerExplorer, TrainingLauncher\n"
        "explorer = SamplerExplorer(train_len=256, target_len=2048, n_samples=2000)\n"
        "explorer.widget",
        "launcher = TrainingLauncher(explorer, rope='yarn', steps=3, batch_size=1, warmup_steps=0, eval_limit=1,"
        " out='runs/reopen')\nlauncher.widget"])
    page = browser.new_page(viewport=VIEWPORT)
    open_notebook(page, url, token, name)
    run_all(page)
    page.wait_for_function("() => document.querySelectorAll('.creamviz-explorer .js-plotly-plot .main-svg').length >= 6",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1500)
    page.close()  # the kernel keeps running
    seen = []
    try:
        for attempt in range(2):
            page = browser.new_page(viewport=VIEWPORT)
            console = []
            page.on("console", lambda msg, console=console: console.append(f"{msg.type}: {msg.text}"[:300])
                    if msg.type in ("error", "warning") else None)
            t_open = time.perf_counter()
            page.goto(f"{url}/lab/tree/{name}?token={token}")  # no ?reset: the running session is reused
            page.wait_for_function(f"""() => {{ const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                return w && w.context && w.context.path.endsWith({json.dumps(name)}) && ({KERNEL_IDLE_JS})(); }}""",
                                   timeout=120_000)
            try:
                page.wait_for_function("""() => document.querySelectorAll('.creamviz-explorer').length >= 2 &&
                    document.querySelectorAll('.creamviz-explorer .js-plotly-plot .main-svg').length >= 6""",
                                       timeout=60_000)
            except Exception:  # noqa: BLE001 - reported below with what the page shows
                pass
            text = page.evaluate("() => document.body.innerText")
            views = page.evaluate("() => document.querySelectorAll('.creamviz-explorer').length")
            seen.append({"attempt": attempt, "views": views, "model_not_found": "model not found" in text,
                         "seconds": round(time.perf_counter() - t_open, 1), "console": console[:12]})
            page.screenshot(path=str(ARTIFACTS / f"reopen-{attempt}.png"))
            if attempt == 0:  # the next reopen finds the kernel busy
                page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                              ".requestExecute({code: 'import time; time.sleep(3)'})")
                page.wait_for_timeout(500)
                page.close()
    finally:
        (ARTIFACTS.mkdir(exist_ok=True), (ARTIFACTS / "reopen.json").write_text(json.dumps(seen, indent=1)))
        try:
            page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        except Exception:  # noqa: BLE001
            pass
        page.close()
    assert all(s["views"] >= 2 and not s["model_not_found"] for s in seen), seen


# geometry of every figure in the explorers: inside its output area (3 px of slack for borders and
# sub-pixel sizes: plotly's SVG is 2 px wider than the outer output area), colour bars and titles
# too, and no two subplot titles (annotations at the top of a panel) overlapping
GEOMETRY_JS = r"""() => {
    const out = [];
    for (const view of document.querySelectorAll('.creamviz-explorer')) {
        const area = view.closest('.jp-OutputArea-output') || view;
        const a = area.getBoundingClientRect();
        for (const ctl of view.querySelectorAll('.widget-inline-hbox')) {
            const r = ctl.getBoundingClientRect();
            if (r.width && r.right > a.right + 3) out.push({what: 'control', text: ctl.innerText.slice(0, 40),
                                                            right: r.right, area_right: a.right});
        }
        for (const gd of view.querySelectorAll('.js-plotly-plot')) {
            const title = (gd.layout && gd.layout.title && gd.layout.title.text) || '';
            for (const el of gd.querySelectorAll('.main-svg, .colorbar, .gtitle, .annotation')) {
                const r = el.getBoundingClientRect();
                if (r.width && (r.right > a.right + 3 || r.left < a.left - 3))  // 3 px: borders, sub-pixel sizes
                    out.push({what: el.getAttribute('class'), figure: title.slice(0, 60), right: r.right,
                              left: r.left, area: [a.left, a.right]});
            }
            const legend = gd.querySelector('.legend');  // a legend must not cover an x-axis title
            const lr = legend && legend.getBoundingClientRect();
            for (const t of gd.querySelectorAll('text')) {
                if (!lr || !lr.width || !/^x\d*title$/.test(t.getAttribute('class') || '')) continue;
                const r = t.getBoundingClientRect();
                if (r.width && lr.left < r.right && r.left < lr.right && lr.top < r.bottom && r.top < lr.bottom)
                    out.push({what: 'legend over axis title', figure: title.slice(0, 60), text: t.textContent});
            }
            const notes = Array.from(gd.querySelectorAll('.annotation-text')).map(e => [e.textContent, e.getBoundingClientRect()]);
            for (let i = 0; i < notes.length; i++) for (let j = i + 1; j < notes.length; j++) {
                const [p, q] = [notes[i][1], notes[j][1]];
                if (p.width && q.width && p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom)
                    out.push({what: 'overlapping titles', figure: title.slice(0, 60), texts: [notes[i][0], notes[j][0]]});
            }
        }
    }
    return out;
}"""


@pytest.mark.parametrize("width", [1000, 1440])
def test_explorers_fit_the_window(lab, width):
    """Every explorer at a 1000 px and a 1440 px window: no control, figure, colour bar or title
    extends past its output area and no two subplot titles overlap; at 1440 px also the
    waits at the largest settings the controls allow (written to test-artifacts/largest-setting-waits.json)."""
    browser, url, token, work = lab
    ARTIFACTS.mkdir(exist_ok=True)
    name = write_notebook(work, f"fit_{width}.ipynb", [
        "from creamviz.widgets import RopeExplorer, SamplerExplorer, TheoremExplorer\n"
        "SamplerExplorer(train_len=256, target_len=2048, n_samples=2000)",
        "TheoremExplorer()",
        "RopeExplorer(model='tiny', train_len=256, target_len=2048)"])
    page = browser.new_page(viewport={"width": width, "height": 1000})
    problems, waits = [], {}
    try:
        open_notebook(page, url, token, name)
        run_all(page)
        page.wait_for_function("() => document.querySelectorAll('.creamviz-explorer').length >= 3 && "
                               "Array.from(document.querySelectorAll('.creamviz-explorer .js-plotly-plot'))"
                               ".every(g => g.querySelector('.main-svg'))", timeout=120_000)
        page.wait_for_timeout(1500)
        problems = page.evaluate(GEOMETRY_JS)
        for k, view in enumerate(("sampler", "theorem", "rope")):
            root = page.locator(".creamviz-explorer").nth(k)
            root.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / f"fit-{width}-{view}.png"))
        if width == 1440:
            largest_setting_waits(page, waits)
    finally:
        (ARTIFACTS / f"fit-{width}.json").write_text(json.dumps({"problems": problems, "waits": waits}, indent=1))
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        page.close()
    assert not problems, problems[:8]
    if waits:
        import statistics

        (ARTIFACTS / "largest-setting-waits.json").write_text(json.dumps(waits, indent=1))
        seconds = [w["wait_s"] for ws in waits.values() for w in ws if not w.get("invalid")]
        # the target is 1 s for every change; on a loaded 2-core machine one may stretch past it, never to 2 s
        assert statistics.median(seconds) < WAIT_TARGET_S and max(seconds) < 2 * WAIT_TARGET_S, waits


def choose(select, value: str) -> None:
    """Pick ``value`` in a <select> as a user does (a change event), without playwright's
    actionability waits (a busy page can hold those for the whole timeout)."""
    select.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('change', {bubbles: true})); }", value)


def largest_setting_waits(page, out: dict) -> dict:
    """Seconds from a change to the redrawn view at the largest settings the controls allow: the
    SamplerExplorer at N = 8192, L = 262,144, 200,000 samples switched to RandPos and back; the
    RopeExplorer with llama2-7b's head_dim 128 at N = 16,384, L = 262,144, 20,000 samples, 256
    phase bins, dynamic scaling, switched to RandPos and back, then every scaling at RandPos."""
    out.update(sampler=[], rope=[])
    root = page.locator(".creamviz-explorer").nth(0)
    root.scroll_into_view_if_needed()
    for what, label, value in (("L = max", "L (target_len)", "262144"), ("N = max", "N (train_len)", "8192"),
                               ("samples = max", "samples", "200000")):
        timed_change(page, root, type_readout(page, control(root, label), value), what, out["sampler"])
    method = control(root, "method").locator("select")
    for _ in range(2):  # there and back twice: the second RandPos wait has no first-use costs
        timed_change(page, root, lambda: choose(method, "randpos"), "method = randpos (N 8192, L 262144)",
                     out["sampler"])
        timed_change(page, root, lambda: choose(method, "cream"), "method = cream (N 8192, L 262144)",
                     out["sampler"])
    root = page.locator(".creamviz-explorer").nth(2)
    root.scroll_into_view_if_needed()
    model = control(root, "model").locator("select")
    timed_change(page, root, lambda: choose(model, "llama2-7b"), "model = llama2-7b (head_dim 128, the largest)",
                 out["rope"])
    for what, label, value in (("L = max", "L (target_len)", "262144"), ("N = max", "N (train_len)", "16384"),
                               ("samples = max", "samples", "20000"), ("phase bins = max", "phase bins", "256")):
        timed_change(page, root, type_readout(page, control(root, label), value), what, out["rope"])
    scaling = control(root, "scaling").locator("select")
    timed_change(page, root, lambda: choose(scaling, "dynamic"), "scaling = dynamic", out["rope"])
    sampler = control(root, "sampler").locator("select")
    for value in ("randpos", "cream", "randpos"):  # there and back, then RandPos again (no first-use costs)
        timed_change(page, root, lambda value=value: choose(sampler, value),
                     f"sampler = {value} (dynamic, N 16384, L 262144)", out["rope"])
    for value in ("linear", "llama3", "default", "yarn"):  # every other scaling at RandPos, the max sizes
        timed_change(page, root, lambda value=value: choose(scaling, value),
                     f"scaling = {value} (randpos, N 16384, L 262144)", out["rope"])
    return out
