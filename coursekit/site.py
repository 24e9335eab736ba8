"""The static HTML course site: ``coursekit site`` / ``make site`` -> ``build/site/index.html``.

Each solution notebook is executed headless and rendered with nbconvert into one page. The site
shows the **learner's run**: the default budgets unless ``fast=True`` (``coursekit site --fast``, a
quick preview with the grading budgets), and every page says which budgets and data made its figures.

What a page has:

- the whole lecture with every output and figure (PNG files beside the page, ``<lecture>_files/``);
- the **student's view of the exercises**: solution regions replaced by nbgrader's stub and hidden
  tests removed, as in the released notebooks (``show_solutions=True``, ``--solutions``: an
  instructor copy with the solutions). The outputs are those of the solution run;
- the **explorers interactive without a kernel**: while the site executes a lecture, each explorer
  that :func:`coursekit.widgets.show` displays also pre-renders its frames
  (``COURSEKIT_SITE_FRAMES=1``); the page shows them with an HTML range input (``assets/site.js``)
  in place of the static figure. Live progress bars and widget views are left out;
- a header (previous / course map / references / next, and a search box over every lecture: the
  index, ``search-index.js``, is built here, so search runs in the browser without a server), a
  **table of contents** beside the lecture (folded above it on a phone), a line with the estimated
  time, the budgets and data of the figures, the student notebook to download and, when the course
  names its repository (:mod:`coursekit.distribution`), "Open in Colab";
- the papers the lecture cites, linked (:mod:`coursekit.references`); ``references.html`` lists all;
- maths typeset by the site's own copy of MathJax 2.7 (``mathjax/``, from ``jupyter-server-mathjax``).

Nothing on a page asks another server for anything (nbconvert's require.js tag is removed; widgets
need it, a static page has none). The stylesheet follows the reader's light or dark setting.
``index.html`` is the course map: every lecture with its time estimate, summary, points and figures.
"""
from __future__ import annotations

import copy
import math
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from coursekit import site_html
from coursekit.checks import CourseKitError
from coursekit.execute import run_notebook
from coursekit.hidden_tests import SITE_PLACEHOLDER, strip_hidden_cells

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_NOTEBOOK_LINK = re.compile(r"\[(?P<label>[^\]]*)\]\(\.\./(?P<name>[0-9]{2}_[A-Za-z0-9_]+)/(?P=name)\.ipynb(?P<anchor>#[^)]*)?\)")
_TITLE = re.compile(r"^#\s+(.+)$", re.MULTILINE)


# MathJax 2.7 from the jupyter-server-mathjax package: only what the TeX input, the HTML-CSS output and
# its STIX web fonts need (the accessibility extensions, the SVG output and translations are left out).
_MATHJAX_SKIP = ("extensions/a11y", "jax/output/SVG", "localization")
_MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
# MathJax_Blank (HTML-CSS's font-loading probe) names url('about:blank') by default: a failed request
# on every page; a local() name gives the same "not loaded" answer without asking for anything.
_MATHJAX_FONTS = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, imageFont: null, webFont: "STIX-Web",
                                 styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
                    menuSettings: {zoom: "None"}});
</script>
"""

# The time estimate of a lecture (shown on each page and the course map).
WORDS_PER_MINUTE = 200
MINUTES_PER_CODE_CELL = 0.5
MINUTES_PER_EXERCISE = 10


@dataclass
class Lecture:
    """One page of the site."""

    name: str                 # e.g. "01_adversarial_examples"
    source: Path              # the solution notebook
    title: str = ""
    summary: str = ""
    page: str = ""            # e.g. "01_adversarial_examples.html"
    student_notebook: str | None = None   # relative link, when a released version exists
    figures: list[str] = field(default_factory=list)
    points: int = 0
    seconds: float = 0.0
    error: str | None = None
    minutes: int = 0
    sliders: int = 0          # explorers shown as pre-rendered sliders


# ---------------------------------------------------------------- notebook transformations

def strip_hidden_tests(nb) -> None:
    """Remove hidden-test regions (and those cells' outputs) in place (:mod:`coursekit.hidden_tests`)."""
    strip_hidden_cells(nb, SITE_PLACEHOLDER)


def clear_solutions(nb) -> None:
    """Replace solution regions by the student stub, as nbgrader's release does (in place)."""
    from nbgrader.preprocessors import ClearSolutions

    stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    ClearSolutions(code_stub=stub, text_stub="YOUR ANSWER HERE").preprocess(nb, {"language": "python"})


def static_outputs(nb) -> None:
    """Drop live-widget outputs (progress bars, sliders) and saved widget state, in place.

    Without a kernel a widget's only other form is its text repr (``VBox(...)``, a progress bar
    at 0 %), which says nothing; the explorers' static figures are separate outputs and stay.
    """
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if _WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)


def sliders(nb, out: Path, folder: str, key: str) -> int:
    """Put each explorer's pre-rendered frames in place of its static figure and caption (in place).

    ``coursekit.widgets.show`` emitted, in a site run, the static figure and its caption (both marked
    ``STATIC_MARK``) and then a frames bundle; the bundle becomes an HTML slider (frames written as
    PNG files in ``out/folder``). The caption describes the static figure, so it goes with it.
    Returns the number of sliders.
    """
    import nbformat

    from coursekit import widgets

    count = 0
    for c, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not any(widgets.FRAMES_MIME in o.get("data", {}) for o in cell.outputs):
            continue
        kept = []
        for output in cell.outputs:
            data = output.get("data", {})
            if output.get("metadata", {}).get("coursekit", {}).get("static_explorer"):
                continue
            if widgets.FRAMES_MIME in data:
                bundle = data[widgets.FRAMES_MIME]
                frames = widgets.Frames.from_json(bundle)
                markup = site_html.frames_html(frames, folder, out, f"{key}_c{c}_{count}")
                output = nbformat.v4.new_output("display_data", data={"text/html": markup})
                count += 1
            kept.append(output)
        cell.outputs = kept
    return count


def rewrite_links(nb, pages: dict[str, str]) -> None:
    """``../NN_x/NN_x.ipynb`` -> ``NN_x.html`` for lectures on the site; plain text otherwise."""
    def replace(match: re.Match) -> str:
        page = pages.get(match["name"])
        if page is None:
            return match["label"]  # the lecture is not on this site: plain text
        return f"[{match['label']}]({page}{match['anchor'] or ''})"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _NOTEBOOK_LINK.sub(replace, cell.source)


def describe(nb) -> tuple[str, str, int]:
    """(title, first paragraph after the title, exercise points) of a lecture notebook."""
    title, summary = "", ""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        match = _TITLE.search(cell.source)
        if match:
            title = match.group(1).strip()
            rest = cell.source[match.end():].strip().split("\n\n")
            summary = " ".join(rest[0].split()) if rest and rest[0] else ""
            summary = re.sub(r"[*`]|\$", "", summary)  # plain text for the course map
            break
    points = sum(int(c.metadata.get("nbgrader", {}).get("points", 0) or 0) for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade"))
    return title, summary, points


def estimate_minutes(nb, run_seconds: float = 0.0) -> int:
    r"""Estimated study time of a lecture, in minutes, rounded up to 5:

    .. math:: \text{words} / 200 + 0.5 \cdot \text{code cells} + \text{run seconds} / 60
              + 10 \cdot \text{exercises}

    (words of its markdown; exercises: its solution cells; run seconds: its execution here).
    """
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    code = sum(1 for c in nb.cells if c.cell_type == "code")
    exercises = sum(1 for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    minutes = (words / WORDS_PER_MINUTE + MINUTES_PER_CODE_CELL * code + run_seconds / 60
               + MINUTES_PER_EXERCISE * exercises)
    return max(5, 5 * math.ceil(minutes / 5))


@contextmanager
def _environment(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def made_with(fast: bool) -> str:
    """How the site's figures are made: the budgets and the data, e.g. ``default budgets, embedded digits``."""
    from coursekit import claims

    with _environment(COURSEKIT_FAST="1" if fast else "0"):
        label = claims.mode_label()
    return label.replace("fast budgets", "fast (grading/CI) budgets")


# ---------------------------------------------------------------- execution and rendering

def execute(path: Path, *, fast: bool = True, timeout: int = 600):
    """Execute a notebook with static explorers; return (notebook with outputs, error text or None)."""
    # A page has no live kernel: every explorer shows its static figure (coursekit.runtime).
    result = run_notebook(path, fast=fast, timeout=timeout, static_widgets=True)
    return result.notebook, result.error


def copy_mathjax(out: Path) -> str | None:
    """Copy MathJax into ``out/mathjax``; return the URL for the pages (None: not installed, use the CDN)."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        return None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        return None

    def skip(folder: str, names: list[str]) -> list[str]:
        rel = Path(folder).relative_to(static).as_posix()
        return [n for n in names if f"{rel}/{n}".lstrip("./") in _MATHJAX_SKIP]

    shutil.copytree(static, out / "mathjax", ignore=skip)
    return f"mathjax/MathJax.js?config={_MATHJAX_CONFIG}"


def copy_assets(out: Path) -> None:
    """The site's stylesheet and script, and JupyterLab's dark theme variables (linked for dark mode)."""
    for name in site_html.ASSETS:
        shutil.copy(Path(str(resources.files("coursekit") / "assets" / name)), out / name)
    import nbconvert

    from jupyter_core.paths import jupyter_path

    candidates = [Path(p) / "nbconvert" / "templates" / "lab" / "static" / "theme-dark.css"
                  for p in jupyter_path()] + [Path(nbconvert.__file__).parent / "templates" / "lab" / "static" /
                                              "theme-dark.css"]
    found = next((c for c in candidates if c.is_file()), None)
    (out / "theme-dark.css").write_text(found.read_text(encoding="utf-8") if found else "", encoding="utf-8")


def render(nb, lecture: Lecture, out: Path, mathjax_url: str | None = None) -> str:
    """Render an executed notebook to HTML with figures in ``out/<name>_files/``; return the page."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    settings = {"mathjax_url": mathjax_url} if mathjax_url else {}
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True, **settings)
    exporter.register_preprocessor(ExtractOutputPreprocessor(extract_output_types={"image/png", "image/jpeg",
                                                                                   "image/svg+xml"}),
                                   enabled=True)
    files_dir = f"{lecture.name}_files"
    body, resources_out = exporter.from_notebook_node(
        nb, resources={"output_files_dir": files_dir, "unique_key": lecture.name,
                       "metadata": {"name": lecture.title or lecture.name}})
    lecture.figures = []
    for filename, data in sorted(resources_out.get("outputs", {}).items()):
        target = out / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lecture.figures.append(filename)
    if mathjax_url:     # the local copy has STIX web fonts only: say so before MathJax starts
        tag = f'<script src="{mathjax_url}">'
        body = body.replace(tag, _MATHJAX_FONTS + tag, 1)
    return site_html.without_external_scripts(body)


def build(root: Path, out: Path | None = None, *, fast: bool = False, notebooks: list[str] | None = None,
          show_solutions: bool = False, timeout: int = 600, progress: bool = True) -> Path:
    """Execute and render the lectures into ``out`` (default ``root/build/site``); return index.html.

    ``fast``: the grading budgets (a quick preview) instead of the learner's default budgets.
    ``notebooks``: solution notebook paths or assignment names (default: every lecture).
    Raises CourseKitError after writing the site when a notebook failed to execute.
    """
    import nbformat

    from coursekit import distribution, references, widgets

    root = Path(root)
    out = Path(out) if out is not None else root / "build" / "site"
    sources = _select(root, notebooks)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    config = distribution.settings(root)
    lectures = [Lecture(name=p.parent.name, source=p, page=f"{p.parent.name}.html") for p in sources]
    pages = {lec.name: lec.page for lec in lectures}
    for lec in lectures:
        released = root / "notebooks" / lec.name / lec.source.name
        if released.is_file():
            dest = out / "notebooks" / f"{lec.name}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            student = nbformat.read(released, as_version=4)
            distribution.ensure_install_cell(student, config)   # installs coursekit wherever it is opened
            nbformat.write(student, dest)
            lec.student_notebook = f"notebooks/{lec.name}.ipynb"
        lec.title, lec.summary, lec.points = describe(nbformat.read(lec.source, as_version=4))
        lec.title = lec.title or lec.name
    mathjax_url = copy_mathjax(out)
    copy_assets(out)
    executed = []
    for lec in lectures:
        t0 = time.time()
        if progress:
            print(f"executing {lec.name} ({'fast' if fast else 'default'} budgets) ...", flush=True)
        # static explorers that also pre-render their frames (coursekit.widgets.show)
        result = run_notebook(lec.source, fast=fast, timeout=timeout, static_widgets=True,
                              env={widgets.SITE_FRAMES_ENV: "1"})
        nb, lec.error = result.notebook, result.error
        lec.seconds = time.time() - t0
        lec.minutes = estimate_minutes(nb, lec.seconds)
        executed.append(nb)
    mode_line = made_with(fast)
    infos, index_entries, refs_by_lecture = [], [], []
    for lec, nb in zip(lectures, executed):
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        colab = (distribution.colab_url(config, f"notebooks/{lec.name}/{lec.source.name}")
                 if lec.student_notebook else None)
        infos.append(site_html.PageInfo(name=lec.name, title=lec.title, page=lec.page, minutes=lec.minutes,
                                        made_with=mode_line, notebook=lec.student_notebook, colab=colab,
                                        references=references.cited(text)))
    for i, (lec, nb) in enumerate(zip(lectures, executed)):
        nb = copy.deepcopy(nb)
        strip_hidden_tests(nb)
        if not show_solutions:
            clear_solutions(nb)
        distribution.stamp(nb, config)
        static_outputs(nb)
        lec.sliders = sliders(nb, out, f"{lec.name}_files", lec.name)
        rewrite_links(nb, pages)
        body = render(nb, lec, out, mathjax_url)
        (out / lec.page).write_text(site_html.lecture_page(body, infos[i], infos, i), encoding="utf-8")
        index_entries += [{"page": lec.page, "title": lec.title, **s} for s in site_html.sections(body)]
        refs_by_lecture.append((infos[i], infos[i].references))
        if progress:
            state = "FAILED" if lec.error else "ok"
            print(f"  {lec.page}: {len(lec.figures)} figures, {lec.sliders} sliders, executed in "
                  f"{lec.seconds:.1f} s ({state})", flush=True)
    (out / "search-index.js").write_text(site_html.search_index_js(index_entries), encoding="utf-8")
    (out / "references.html").write_text(site_html.references_page(refs_by_lecture), encoding="utf-8")
    rows = [site_html.IndexRow(number=lec.name.split("_", 1)[0], info=info, summary=lec.summary,
                               points=lec.points, figures=len(lec.figures), error=lec.error)
            for lec, info in zip(lectures, infos)]
    solutions = ("Exercise solutions are shown (instructor copy)." if show_solutions else
                 "Exercises appear as students get them (solutions and hidden checks removed); "
                 "the outputs are those of a correct solution.")
    index = out / "index.html"
    index.write_text(site_html.index_html(rows, built=time.strftime("%Y-%m-%d %H:%M"), made_with=mode_line,
                                          solutions_note=solutions), encoding="utf-8")
    failed = [lec for lec in lectures if lec.error]
    if failed:
        raise CourseKitError(
            f"The site is in {out}, but {len(failed)} notebook(s) failed to execute: "
            + "; ".join(f"{lec.name}: {lec.error.strip().splitlines()[-1]}" for lec in failed))
    return index


def _select(root: Path, notebooks: list[str] | None) -> list[Path]:
    every = sorted((root / "solutions").glob("*/*.ipynb"))
    if not notebooks:
        if not every:
            raise CourseKitError(f"No lecture notebooks in {root / 'solutions'}.")
        return every
    by_name = {p.parent.name: p for p in every}
    chosen = []
    for item in notebooks:
        path = Path(item)
        if item in by_name:
            chosen.append(by_name[item])
        elif path.suffix == ".ipynb" and path.is_file():
            chosen.append(path.resolve())
        else:
            raise CourseKitError(f"Unknown lecture {item!r}. Available: {', '.join(by_name)}.")
    return sorted(chosen, key=lambda p: p.parent.name)
