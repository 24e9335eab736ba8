"""Every widget of the student notebooks works on a 1366x768 laptop screen, in a real JupyterLab 4
driven by a real browser.

The test starts JupyterLab as ``make lab`` does (coursekit.lab: nbgrader's instructor tools off for
the session, kernels encrypted) on 127.0.0.1, token-less, with temporary config, runtime, settings and
workspace folders, serving a copy of ``notebooks/`` (the STUDENT notebooks). Debian's Chromium
(headless, background networking off) opens each lecture that shows a widget through Playwright at
1366x768 and runs it with Run All in the fast budgets with live widgets (``COURSEKIT_FAST=1``,
``COURSEKIT_LIVE_WIDGETS=1``): the widgets, their layout and their controls are the same in every
budget, only the work behind them is smaller. Every lecture in the learner's default budgets, with the
embedded digits and with the mirror, is executed by ``.ci/run`` (benchmarks/bench_notebooks.py).

How the copies are made runnable: each solution cell of the copy gets the reference solution's source
from ``solutions/`` (matched by nbgrader grade id), and the copy ends with the last widget cell (what
follows is not needed to test the widgets).

For each widget, with its top scrolled to the top of the notebook: every control (slider handle,
button, key box, Play) lies inside the visible notebook area, and each interaction (a slider moved
with the keyboard, a button clicked with the mouse at its place on screen) changes the widget's
output without any scrolling. The real-vs-fake game is played to the end, every answer, without a
scroll. Screenshots before and after go to build/browser/.

Needs: ``apt-get install chromium`` and ``pip install playwright`` (``make browser-deps``); skipped
with the reason otherwise. ``COURSEKIT_BROWSER_LECTURES=00,07`` limits the lectures (a quick check).
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

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "build" / "browser"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The flags this machine needs: no sandbox as root, no GPU, and no background connections
# (the closed network refuses them).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}

pytestmark = pytest.mark.slow
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                               "(make browser-deps, or pip install playwright)")
if not Path(CHROMIUM).is_file():
    pytest.skip("Debian's chromium is not installed (make browser-deps, or apt-get install chromium)",
                allow_module_level=True)

_SHOWS_WIDGET = re.compile(r"\bwidgets\.show\(|\bgame\.show\(")
_CHOSEN = [n.strip() for n in os.environ.get("COURSEKIT_BROWSER_LECTURES", "").split(",") if n.strip()]
LECTURES = [p for p in sorted(ROOT.glob("notebooks/*/*.ipynb")) if _SHOWS_WIDGET.search(p.read_text())
            and (not _CHOSEN or p.parent.name[:2] in _CHOSEN)]

# What a widget displays: images and text of its output, image, HTML and label parts (not the controls).
SIGNATURE = """(el) => [...el.querySelectorAll('.widget-output, .widget-image, .widget-html, .widget-label')]
    .map(e => e.tagName === 'IMG' ? e.src : e.innerHTML).join('|')"""
PROMPTS = "els => els.map(e => e.textContent.trim())"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen (not a restored tab)
CONTROLS = ".noUi-handle, .widget-button, .widget-text input, .widget-play button"
RUN_ALL_SECONDS = int(os.environ.get("COURSEKIT_BROWSER_TIMEOUT", "300"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def runnable_copy(student: Path, dest: Path) -> Path:
    """The student notebook with the reference solutions in its solution cells, up to its last widget."""
    reference = nbformat.read(ROOT / "solutions" / student.parent.name / student.name, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in reference.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(student, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers[grade_id]
    last = max(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _SHOWS_WIDGET.search(c.source))
    nb.cells = nb.cells[:last + 1]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it (learner configuration), on loopback, token-less."""
    from coursekit import lab as learner_lab

    tmp = tmp_path_factory.mktemp("lab")
    for student in LECTURES:
        runnable_copy(student, tmp / "course" / student.parent.name / student.name)
    settings = tmp / "settings"
    overrides = {  # every cell in the DOM (no virtual scrolling); no news or update checks
        ("@jupyterlab/notebook-extension", "tracker"): {"windowingMode": "none"},
        ("@jupyterlab/apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
    }
    for (extension, name), value in overrides.items():
        (settings / extension).mkdir(parents=True, exist_ok=True)
        (settings / extension / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    config = learner_lab.write_config(tmp / "learner-config", learner=True)
    env = {k: v for k, v in learner_lab.session_env(config).items()
           if k not in ("NBGRADER_EXECUTION", "COURSEKIT_STATIC_WIDGETS", "JUPYTER_TOKEN")}
    # The fast budgets with live widgets (.ci/run runs every lecture in the default budgets).
    env.update(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               COURSEKIT_FAST="1", COURSEKIT_LIVE_WIDGETS="1", COURSEKIT_OFFLINE="1")
    port = _free_port()
    command = learner_lab.command(tmp / "course", [
        "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--IdentityProvider.token=",
        "--ServerApp.password=", "--LabApp.news_url=None",
        "--ServerApp.disable_check_xsrf=True"])  # loopback only: lets the test stop kernels
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
        yield base, log_path
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


def _scroller(page):
    """The notebook's scrolling element and its visible rectangle."""
    return page.locator(f"{PANEL} .jp-WindowedPanel-outer").first


def _visible_area(page) -> dict:
    box = _scroller(page).bounding_box()
    return {"top": box["y"], "bottom": min(box["y"] + box["height"], VIEWPORT["height"]),
            "left": box["x"], "right": min(box["x"] + box["width"], VIEWPORT["width"])}


def _scroll_top(page) -> float:
    return _scroller(page).evaluate("el => el.scrollTop")


def _bring_to_top(page, area) -> None:
    area.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)


def _controls_on_screen(page, area, name: str, i: int) -> list[str]:
    """Every control of the widget lies inside the visible notebook area (no scrolling needed)."""
    view = _visible_area(page)
    outside = []
    controls = area.locator(CONTROLS)
    for k in range(controls.count()):
        box = controls.nth(k).bounding_box()
        if box is None:      # display: none (e.g. the game's controls after the end)
            continue
        if not (box["y"] >= view["top"] - 1 and box["y"] + box["height"] <= view["bottom"] + 1
                and box["x"] >= view["left"] - 1 and box["x"] + box["width"] <= view["right"] + 1):
            label = controls.nth(k).text_content() or controls.nth(k).get_attribute("class")
            outside.append(f"{label!r} at y={box['y']:.0f}..{box['y'] + box['height']:.0f} "
                           f"(visible {view['top']:.0f}..{view['bottom']:.0f})")
    assert not outside, f"{name} widget {i}: controls outside the screen: {outside}"
    return outside


def _click(page, locator) -> None:
    """Click at the element's place on screen (Playwright's click() would scroll it into view first)."""
    box = locator.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _wait_changed(page, area, before: str, timeout: int = 180_000) -> None:
    page.wait_for_function("([el, before, sig]) => eval(sig)(el) !== before",
                           arg=[area.element_handle(), before, SIGNATURE], timeout=timeout, polling=250)


KEYED_ANSWERS = 5   # the game's first answers are typed (R / F in its key box), the rest clicked


def _play_game(page, area, name: str, i: int) -> str:
    """Answer all images, first with the R / F keys, then with the Real / Fake buttons where they are
    on screen; no scrolling."""
    real = area.locator(".widget-button", has_text="Real").first
    fake = area.locator(".widget-button", has_text="Fake").first
    label = area.locator(".widget-label", has_text=re.compile(r"Image \d+ of \d+")).first
    total = int(re.search(r"of (\d+)", label.text_content()).group(1))
    top = _scroll_top(page)
    _click(page, area.locator(".widget-text input").first)
    for answer in range(total):
        _controls_on_screen(page, area, name, i)
        before = area.evaluate(SIGNATURE)
        if answer < KEYED_ANSWERS:
            page.keyboard.press("r" if answer % 2 else "f")
        else:
            _click(page, real if answer % 3 else fake)
        _wait_changed(page, area, before, timeout=30_000)
        assert _scroll_top(page) == top, f"{name}: answer {answer + 1} needed a scroll"
    page.wait_for_timeout(500)
    result = area.locator(".widget-html p").last
    view, box = _visible_area(page), result.bounding_box()
    assert "correct" in result.text_content() and view["top"] <= box["y"] <= view["bottom"], \
        "the result shows where the game was (no blank gap to scroll past)"
    return f"game: {total} answers ({KEYED_ANSWERS} typed), no scroll"


def _interact(page, area, name: str, i: int) -> str:
    """Move the slider to its other end, or press Start (dashboard) / the first button; return what was done."""
    handles = area.locator(".noUi-handle")
    before = area.evaluate(SIGNATURE)
    top = _scroll_top(page)
    if handles.count():
        handle = handles.last
        readout = area.locator(".widget-readout").last
        start = readout.text_content() if readout.count() else ""
        low, high = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        handle.focus()
        handle.press("Home" if low == high else "End")
        action = f"slider {start!r} -> {readout.text_content() if readout.count() else '?'}"
    else:
        button = area.locator(".widget-button:not([disabled])").first
        action = f"button {button.text_content().strip()!r}"
        _click(page, button)
    _wait_changed(page, area, before)
    assert _scroll_top(page) == top, f"{name} widget {i}: the interaction scrolled the notebook"
    if "Start" in action:   # the dashboard: progress shows, then Stop stops it
        page.wait_for_function("el => /elapsed/.test(el.textContent)", arg=area.element_handle(), timeout=300_000)
        _click(page, area.locator(".widget-button", has_text="Stop").first)
        page.wait_for_function("el => /stopped|done/.test(el.textContent)", arg=area.element_handle(),
                               timeout=300_000)
        action += " then 'Stop'"
    page.wait_for_timeout(1500)  # let the figure finish drawing before the screenshot
    return action


@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.parent.name)
def test_widgets_fit_a_laptop_screen_and_react_in_jupyterlab(lab, browser, lecture):
    base, _ = lab
    name = lecture.parent.name
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport=VIEWPORT)
    try:
        # A workspace of its own, reset: only this notebook opens.
        page.goto(f"{base}/lab/workspaces/{name}/tree/{name}/{lecture.name}?reset", timeout=120_000)
        _run_all(page, name)
        assert page.get_by_role("menuitem", name="Nbgrader").count() == 0, "a learner's lab has no nbgrader menu"
        areas = page.locator(f"{PANEL} .jp-OutputArea-output", has=page.locator(".widget-slider, .widget-button"))
        assert areas.count() >= 1, (f"{name}: no live widget rendered (the JupyterLab widget extension "
                                    "is missing? run `coursekit doctor`)")
        actions = []
        for i in range(areas.count()):
            area = areas.nth(i)
            _bring_to_top(page, area)
            _controls_on_screen(page, area, name, i)
            page.screenshot(path=str(ARTEFACTS / f"{name}_widget{i}_before.png"))
            if area.locator(".widget-button", has_text="Real").count():
                actions.append(_play_game(page, area, name, i))
            else:
                actions.append(_interact(page, area, name, i))
            page.screenshot(path=str(ARTEFACTS / f"{name}_widget{i}_after.png"))
            area.screenshot(path=str(ARTEFACTS / f"{name}_widget{i}_area.png"))   # the widget alone (README)
        print(f"{name}: " + "; ".join(actions))
    finally:
        page.close()
        _shutdown_kernels(base)
