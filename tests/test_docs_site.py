"""The documentation site: `make docs` builds it offline, and three of its pages work in a real browser.

The build reuses the notebooks the browser suite executed in JupyterLab (test-artifacts/executed/)
and executes only the others with nbclient. Served from a local HTTP server, opened in headless
Chromium with every request outside that server refused: a notebook page (no console error, every
plotly figure drawn as SVG), the samplers' API page (lists ``CreamSampler.sample``) and the search
(finds "Theorem B.1").
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.docs, pytest.mark.browser]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    subprocess.run([sys.executable, "scripts/build_docs.py", "--executed", "test-artifacts/executed"],
                   cwd=ROOT, check=True, timeout=1800)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def open_page(browser, base, path):
    """A page with its console errors and every request that left the local server."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(f"{base}/{path}", wait_until="load")
    return page, errors, outside


def test_no_remote_resources_in_the_built_html(site):
    """Scripts, styles and fonts are all bundled: no tag or CSS rule loads them from another host."""
    remote = re.compile(r"""<script[^>]+src=["']https?:|<link[^>]+href=["']https?:[^>]*stylesheet|"""
                        r"""<link[^>]+stylesheet[^>]*href=["']https?:|url\(["']?https?:|import\(["']https?:""")
    offenders = {str(p.relative_to(SITE)): remote.findall(p.read_text(encoding="utf-8", errors="replace"))
                 for p in SITE.rglob("*") if p.suffix in (".html", ".css")}
    assert not {k: v for k, v in offenders.items() if v}
    assert (SITE / "assets" / "plotly.min.js").exists()
    assert len(list((SITE / "learn").glob("*/index.html"))) == len(list((ROOT / "notebooks").glob("*.ipynb")))


def test_notebook_page_draws_its_figures(site, browser):
    page, errors, outside = open_page(browser, site, "learn/01_sampling/")
    divs = page.locator(".plotly-graph-div")
    assert divs.count() >= 5  # the notebook's figures + the explorer's static figures
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('svg.main-svg'))",
        timeout=30_000)
    # the explorer (no widget state on a static page) is shown as its figures at default settings
    assert "Static view: SamplerExplorer" in page.inner_text("article")
    # MathJax (bundled) typeset the notebook's $L_h$ etc.
    page.wait_for_selector(".MathJax, .MathJax_CHTML, mjx-container", timeout=30_000)
    assert not errors, errors
    assert not outside, outside
    page.close()


def test_api_page_lists_the_sampler_methods(site, browser):
    page, errors, outside = open_page(browser, site, "api/samplers/")
    heading = page.locator('[id="creamviz.samplers.CreamSampler.sample"]')  # mkdocstrings' anchor of the method
    assert heading.count() == 1 and heading.is_visible()
    assert heading.inner_text().split()[0] == "sample"
    assert "L_h" in page.inner_text("article")  # the paper's symbols from the docstrings
    assert not errors, errors
    assert not outside, outside
    page.close()


def test_search_finds_theorem_b1(site, browser):
    page, errors, outside = open_page(browser, site, "")
    page.click("input.md-search__input")
    page.keyboard.type("Theorem B.1", delay=20)  # typed, as the theme searches on key events
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=30_000)
    assert "Theorem B.1" in page.inner_text(".md-search-result")
    assert not errors, errors
    assert not outside, outside
    page.close()
