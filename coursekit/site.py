"""The static HTML course site: ``coursekit site`` / ``make site`` -> ``build/site/index.html``.

Each solution notebook is executed headless (the fast path unless ``fast=False``) and rendered
with nbconvert into one page. What a page shows:

- the whole lecture with every output and figure (figures are written as PNG files beside the
  page, ``<lecture>_files/``, so pages stay small and the test can check each image exists);
- the **student's view of the exercises**: solution regions are replaced by nbgrader's stub
  (``# YOUR CODE HERE``) and hidden tests are removed, exactly as in the released notebooks, so the
  site can be public. The outputs are those of the instructor's solution run (so every figure and
  "public checks passed" line appears). ``show_solutions=True`` (``--solutions``) keeps the solutions,
  for an instructor-only copy;
- widgets as their static fallback figures (a page has no kernel); live progress bars are left out;
- a navigation bar (previous / course map / next) and a link to the student notebook
  (``notebooks/<lecture>.ipynb``, a copy of the released version, to download and run);
- maths typeset by a copy of MathJax 2.7 inside the site (``mathjax/``, from the
  ``jupyter-server-mathjax`` package), so the pages read well offline; without that package the
  pages fall back to MathJax from its CDN.

``index.html`` is the course map: every lecture with its title, summary, number of figures and
exercise points, linking the page and the student notebook.
"""
from __future__ import annotations

import copy
import html
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

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
_MATHJAX_FONTS = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, imageFont: null, webFont: "STIX-Web"},
                    menuSettings: {zoom: "None"}});
</script>
"""

_STYLE = """
.coursekit-nav { display: flex; gap: 1.5em; align-items: center; padding: 0.6em 1.2em;
  background: #f3f4f6; border-bottom: 1px solid #d0d7de; font-family: sans-serif; font-size: 15px; }
.coursekit-nav a { text-decoration: none; }
.coursekit-nav .spacer { flex: 1; }
.coursekit-footer { border-top: 1px solid #d0d7de; border-bottom: none; margin-top: 2em; }
"""


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


# ---------------------------------------------------------------- execution and rendering

def execute(path: Path, *, fast: bool = True, timeout: int = 600):
    """Execute a notebook with static explorers; return (notebook with outputs, error text or None)."""
    # A page has no live kernel: every explorer shows its static figure (coursekit.runtime).
    result = run_notebook(path, fast=fast, timeout=timeout, static_widgets=True)
    return result.notebook, result.error


def _nav(lectures: list[Lecture], i: int) -> str:
    prev_link = (f"<a href='{lectures[i - 1].page}'>&larr; {html.escape(lectures[i - 1].title)}</a>"
                 if i > 0 else "<span></span>")
    next_link = (f"<a href='{lectures[i + 1].page}'>{html.escape(lectures[i + 1].title)} &rarr;</a>"
                 if i + 1 < len(lectures) else "<span></span>")
    student = lectures[i].student_notebook
    download = (f"<a href='{student}' download>download the notebook (.ipynb)</a>" if student else "")
    return (f"{prev_link}<a href='index.html'>course map</a>{download}<span class='spacer'></span>"
            f"{next_link}")


def _add_navigation(page_html: str, nav: str) -> str:
    top = f"<nav class='coursekit-nav' id='coursekit-nav-top'>{nav}</nav>"
    bottom = f"<nav class='coursekit-nav coursekit-footer' id='coursekit-nav-bottom'>{nav}</nav>"
    page_html = page_html.replace("</head>", f"<style>{_STYLE}</style>\n</head>", 1)
    page_html, n = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + "\n" + top, page_html, count=1)
    if n != 1:
        raise CourseKitError("nbconvert produced a page without <body>: cannot add the navigation.")
    head, sep, tail = page_html.rpartition("</body>")
    return head + bottom + "\n" + sep + tail


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


def render(nb, lecture: Lecture, out: Path, mathjax_url: str | None = None) -> str:
    """Render an executed notebook to ``out/<page>`` with figures in ``out/<name>_files/``."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import ExtractOutputPreprocessor

    settings = {"mathjax_url": mathjax_url} if mathjax_url else {}
    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True, **settings)
    exporter.register_preprocessor(ExtractOutputPreprocessor(extract_output_types={"image/png", "image/jpeg",
                                                                                   "image/svg+xml"}),
                                   enabled=True)
    files_dir = f"{lecture.name}_files"
    body, resources = exporter.from_notebook_node(
        nb, resources={"output_files_dir": files_dir, "unique_key": lecture.name,
                       "metadata": {"name": lecture.title or lecture.name}})
    lecture.figures = []
    for filename, data in sorted(resources.get("outputs", {}).items()):
        target = out / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lecture.figures.append(filename)
    if mathjax_url:     # the local copy has STIX web fonts only: say so before MathJax starts
        tag = f'<script src="{mathjax_url}">'
        body = body.replace(tag, _MATHJAX_FONTS + tag, 1)
    return body


def _index(lectures: list[Lecture], fast: bool, show_solutions: bool) -> str:
    rows = []
    for lec in lectures:
        number = lec.name.split("_", 1)[0]
        student = (f"<a href='{lec.student_notebook}' download>.ipynb</a>" if lec.student_notebook else "-")
        status = f" <strong style='color:#cf222e'>(failed: {html.escape(lec.error.splitlines()[0])})</strong>" \
            if lec.error else ""
        rows.append(
            f"<tr><td>{number}</td><td><a href='{lec.page}'>{html.escape(lec.title)}</a>{status}"
            f"<br><small>{html.escape(lec.summary)}</small></td>"
            f"<td>{lec.points or '-'}</td><td>{len(lec.figures)}</td><td>{student}</td></tr>")
    mode = "fast (grading-size) budgets" if fast else "full budgets"
    solutions = ("Exercise solutions are shown (instructor copy)." if show_solutions else
                 "Exercises appear as students get them (solutions and hidden checks removed); "
                 "the outputs are those of a correct solution.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>coursekit: adversarial examples and GANs</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.45; padding: 0 1em; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: 0.5em; text-align: left; vertical-align: top; }}
code {{ background: #f3f4f6; padding: 0 0.2em; }}
</style></head>
<body>
<h1>Adversarial examples and GANs, hands-on</h1>
<p>A Jupyter course that runs on a laptop CPU, offline. Each lecture below is a notebook, shown here
with its outputs; download the student notebook to run it and do the exercises. Start with
lecture 00.</p>
<h2 id="course-map">Course map</h2>
<table id="lectures">
<tr><th>#</th><th>lecture</th><th>points</th><th>figures</th><th>notebook</th></tr>
{''.join(rows)}
</table>
<h2>Run it yourself</h2>
<pre><code>make lab            # JupyterLab on the student notebooks (sets up .venv the first time)
coursekit doctor    # checks Python, packages, widgets, weights, data and the device</code></pre>
<p><small>Built {time.strftime('%Y-%m-%d %H:%M')} with {mode}. {solutions}
Sliders need a live kernel: on these pages each explorer shows its static figure.</small></p>
</body></html>
"""


def build(root: Path, out: Path | None = None, *, fast: bool = True, notebooks: list[str] | None = None,
          show_solutions: bool = False, timeout: int = 600, progress: bool = True) -> Path:
    """Execute and render the lectures into ``out`` (default ``root/build/site``); return index.html.

    ``notebooks``: solution notebook paths or assignment names (default: every lecture).
    Raises CourseKitError after writing the site when a notebook failed to execute.
    """
    import nbformat

    root = Path(root)
    out = Path(out) if out is not None else root / "build" / "site"
    sources = _select(root, notebooks)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lectures = [Lecture(name=p.parent.name, source=p, page=f"{p.parent.name}.html") for p in sources]
    pages = {lec.name: lec.page for lec in lectures}
    for lec in lectures:
        released = root / "notebooks" / lec.name / lec.source.name
        if released.is_file():
            dest = out / "notebooks" / f"{lec.name}.ipynb"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(released, dest)
            lec.student_notebook = f"notebooks/{lec.name}.ipynb"
        lec.title, lec.summary, lec.points = describe(nbformat.read(lec.source, as_version=4))
        lec.title = lec.title or lec.name
    mathjax_url = copy_mathjax(out)
    executed = []
    for lec in lectures:
        t0 = time.time()
        if progress:
            print(f"executing {lec.name} ...", flush=True)
        nb, lec.error = execute(lec.source, fast=fast, timeout=timeout)
        lec.seconds = time.time() - t0
        executed.append(nb)
    for i, (lec, nb) in enumerate(zip(lectures, executed)):
        nb = copy.deepcopy(nb)
        strip_hidden_tests(nb)
        if not show_solutions:
            clear_solutions(nb)
        static_outputs(nb)
        rewrite_links(nb, pages)
        body = render(nb, lec, out, mathjax_url)
        (out / lec.page).write_text(_add_navigation(body, _nav(lectures, i)), encoding="utf-8")
        if progress:
            state = "FAILED" if lec.error else "ok"
            print(f"  {lec.page}: {len(lec.figures)} figures, executed in {lec.seconds:.1f} s ({state})",
                  flush=True)
    index = out / "index.html"
    index.write_text(_index(lectures, fast, show_solutions), encoding="utf-8")
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
