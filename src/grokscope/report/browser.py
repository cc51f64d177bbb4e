"""Headless Chromium (Debian's ``chromium`` driven by Playwright) for PNG export and page checks.

No browser is ever downloaded: ``GROKSCOPE_CHROMIUM`` or ``/usr/bin/chromium`` is used.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from grokscope.errors import GrokscopeError

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """Path of the system Chromium, or GrokscopeError saying how to get one."""
    path = os.environ.get("GROKSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise GrokscopeError("no Chromium found: install Debian's package (apt-get install chromium) "
                             "or set GROKSCOPE_CHROMIUM to a Chromium binary")
    return path


@contextmanager
def open_page(html_path: Path, width: int = 1280) -> Iterator[tuple[object, list[str], list[str]]]:
    """Open a local HTML file headless, with every non-file request refused; yields
    (page, console errors so far, refused request URLs so far)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise GrokscopeError("Playwright is not installed: pip install 'grokscope[browser]'") from None
    errors: list[str] = []
    blocked: list[str] = []

    def offline(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", offline)
            page.goto(Path(html_path).resolve().as_uri())
            page.wait_for_load_state("load")
            yield page, errors, blocked
        finally:
            browser.close()


def wait_for_figures(page) -> None:
    """Wait until every Plotly container on the page holds its SVG."""
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')].every(d => d.querySelector('svg.main-svg'))",
        timeout=60_000)


@dataclass
class PageCheck:
    """What a headless browser saw on a report page."""

    figures: int = 0
    rendered: int = 0  # figures whose container holds an SVG
    errors: list[str] = field(default_factory=list)
    blocked_requests: list[str] = field(default_factory=list)  # network requests the page tried


def check_page(html_path: Path, screenshot: Path | None = None) -> PageCheck:
    """Count the page's Plotly figures and those rendered as SVG; collect console errors."""
    with open_page(html_path) as (page, errors, blocked):
        wait_for_figures(page)
        figures = page.locator(".plotly-graph-div").count()
        rendered = page.evaluate(
            "() => [...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('svg.main-svg')).length")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        return PageCheck(figures=figures, rendered=rendered, errors=list(errors), blocked_requests=list(blocked))


def export_pngs(html_path: Path, out_dir: Path) -> list[Path]:
    """Save every figure of a report page as a PNG (``figure-0.png`` ...) via the browser."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with open_page(html_path) as (page, _, _blocked):
        wait_for_figures(page)
        for div in page.locator(".plotly-graph-div").all():
            path = out_dir / f"{div.get_attribute('id')}.png"
            div.screenshot(path=str(path))
            paths.append(path)
    return paths
