"""Every ipywidgets explorer renders and reacts in a real JupyterLab 4, driven by a real browser.

The test starts JupyterLab on 127.0.0.1 with a temporary, token-less configuration (its own config,
runtime, settings and workspace folders) on a copy of solutions/, opens each lecture that shows a
widget in Debian's Chromium (headless, background networking off) through Playwright, runs all
cells (fast budgets, live widgets: ``COURSEKIT_FAST=1 COURSEKIT_LIVE_WIDGETS=1``), then moves each
slider (or presses the first button) and waits until the widget's figure or text changes.
Screenshots, before and after, go to build/browser/ (the test artefacts).

Needs: ``apt-get install chromium`` and ``pip install playwright`` (``make browser-deps``);
skipped with the reason otherwise.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "build" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine needs: no sandbox as root, no GPU, and no background connections
# (the closed network refuses them).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(make browser-deps, or pip install playwright)")
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (make browser-deps, or apt-get install chromium)",
                allow_module_level=True)

_SHOWS_WIDGET = re.compile(r"\bwidgets\.show\(|\bgame\.show\(")
LECTURES = [p for p in sorted(ROOT.glob("solutions/*/*.ipynb")) if _SHOWS_WIDGET.search(p.read_text())]

# What a widget displays: images and text of its output, image, HTML and label parts (not the controls).
SIGNATURE = """(el) => [...el.querySelectorAll('.widget-output, .widget-image, .widget-html, .widget-label')]
    .map(e => e.tagName === 'IMG' ? e.src : e.innerHTML).join('|')"""
PROMPTS = "els => els.map(e => e.textContent.trim())"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen (not a restored tab)
RUN_ALL_SECONDS = int(os.environ.get("COURSEKIT_BROWSER_TIMEOUT", "600"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback, token-less, with a temporary configuration, serving a copy of solutions/."""
    tmp = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "solutions", tmp / "course")
    settings = tmp / "settings"
    overrides = {  # every cell in the DOM (no virtual scrolling); no news or update checks
        ("@jupyterlab/notebook-extension", "tracker"): {"windowingMode": "none"},
        ("@jupyterlab/apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
    }
    for (extension, name), value in overrides.items():
        (settings / extension).mkdir(parents=True, exist_ok=True)
        (settings / extension / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    env = {k: v for k, v in os.environ.items()
           if k not in ("NBGRADER_EXECUTION", "COURSEKIT_STATIC_WIDGETS", "JUPYTER_TOKEN")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               COURSEKIT_FAST="1", COURSEKIT_LIVE_WIDGETS="1", COURSEKIT_OFFLINE="1")
    port = _free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
               f"--ServerApp.root_dir={tmp / 'course'}", "--LabApp.news_url=None",
               "--ServerApp.disable_check_xsrf=True"]  # loopback only: lets the test stop kernels
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp / "jupyterlab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited:\n{log_path.read_text()[-3000:]}")
            try:
                _get(f"{base}/api/status")
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 120 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


def _shutdown_kernels(base: str) -> None:
    for kernel in _get(f"{base}/api/kernels") or []:
        request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=10).close()


def _run_all(page, name: str) -> None:
    # The kernel is connected when the status bar says "| Idle".
    page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')",
                           timeout=120_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li[data-command='runmenu:run-all']").click()
    busy = "els => els.some(e => e.textContent.includes('*'))"
    cells = f"[...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]"
    page.wait_for_function(f"() => ({busy})({cells})", timeout=60_000)
    try:
        page.wait_for_function(f"() => !({busy})({cells})", timeout=RUN_ALL_SECONDS * 1000, polling=1000)
    except sync_api.TimeoutError:
        page.screenshot(path=str(ARTEFACTS / f"{name}_timeout.png"))
        running = page.evaluate(f"() => {cells}.map(e => e.textContent.trim()).indexOf('[*]:')")
        pytest.fail(f"{name}: Run All still busy after {RUN_ALL_SECONDS} s (code cell {running} running; "
                    "a loaded machine? raise COURSEKIT_BROWSER_TIMEOUT)")
    prompts = page.eval_on_selector_all(f"{PANEL} .jp-CodeCell .jp-InputPrompt", PROMPTS)
    unrun = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    if unrun:
        page.screenshot(path=str(ARTEFACTS / f"{name}_error.png"), full_page=False)
        errors = page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        detail = errors.last.text_content()[-1500:] if errors.count() else "(no error output)"
        pytest.fail(f"{name}: Run All stopped; code cells {unrun} did not run:\n{detail}")


def _interact(page, area, name: str, i: int) -> str:
    """Move the slider to its other end, or press the first enabled button; return what was done."""
    area.scroll_into_view_if_needed()
    area.screenshot(path=str(ARTEFACTS / f"{name}_widget{i}_before.png"))
    before = area.evaluate(SIGNATURE)
    handles = area.locator(".noUi-handle")
    if handles.count():
        readout = area.locator(".widget-readout").first
        start = readout.text_content() if readout.count() else ""
        low = area.locator(".noUi-handle").first.get_attribute("aria-valuenow")
        high = area.locator(".noUi-handle").first.get_attribute("aria-valuemax")
        handles.first.focus()
        handles.first.press("Home" if low == high else "End")
        action = f"slider {start!r} -> {readout.text_content() if readout.count() else '?'}"
    else:
        button = area.locator(".widget-button:not([disabled])").first
        action = f"button {button.text_content().strip()!r}"
        button.click()
    page.wait_for_function("([el, before, sig]) => eval(sig)(el) !== before",
                           arg=[area.element_handle(), before, SIGNATURE], timeout=120_000, polling=250)
    page.wait_for_timeout(1500)  # let the figure finish drawing before the screenshot
    area.screenshot(path=str(ARTEFACTS / f"{name}_widget{i}_after.png"))
    return action


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.parent.name)
def test_widgets_render_and_react_in_jupyterlab(lab, browser, lecture):
    name = lecture.parent.name
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1300, "height": 1400})
    try:
        # A workspace of its own, reset: only this notebook opens.
        page.goto(f"{lab}/lab/workspaces/{name}/tree/{name}/{lecture.name}?reset", timeout=120_000)
        _run_all(page, name)
        areas = page.locator(f"{PANEL} .jp-OutputArea-output", has=page.locator(".widget-slider, .widget-button"))
        assert areas.count() >= 1, (f"{name}: no live widget rendered (the JupyterLab widget extension "
                                    "is missing? run `coursekit doctor`)")
        actions = [_interact(page, areas.nth(i), name, i) for i in range(areas.count())]
        assert len(actions) == areas.count()
        print(f"{name}: " + "; ".join(actions))
    finally:
        page.close()
        _shutdown_kernels(lab)
