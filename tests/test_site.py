"""The static course site (coursekit.site): pages, figures, links, navigation, no leaked answers."""
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit import site
from coursekit.checks import CourseKitError

ROOT = Path(__file__).resolve().parents[1]

SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x  # the-secret-answer\n    ### END SOLUTION"
HIDDEN = "### BEGIN HIDDEN TESTS\nassert double(21) == 42, 'check 21'  # hidden-reference\n### END HIDDEN TESTS"


def graded(cell, grade_id, *, solution=False, points=0):
    cell.metadata["nbgrader"] = {"grade": not solution, "grade_id": grade_id, "locked": not solution,
                                 "schema_version": 3, "solution": solution, "task": False,
                                 **({"points": points} if not solution else {})}
    cell["id"] = grade_id
    return cell


def tiny_lecture() -> nbformat.NotebookNode:
    """A lecture with one figure, one exercise (solution, public and hidden tests) and a link."""
    v4 = nbformat.v4
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        v4.new_markdown_cell("# Lecture 1 — A tiny lecture\n\nDoubling numbers, with a figure.\n\n"
                             "Back to [the start](../00_start_here/00_start_here.ipynb), "
                             "on to [lecture 9](../09_not_on_the_site/09_not_on_the_site.ipynb)."),
        v4.new_code_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2))\n"
                         "ax.plot([0, 1], [0, 2]); ax.set_title('y = 2x'); ax.set_xlabel('x'); ax.set_ylabel('y')"),
        graded(v4.new_code_cell(SOLUTION), "ex1-double", solution=True),
        graded(v4.new_code_cell("assert double(1) == 2\nprint('public checks passed (1 point)')"),
               "ex1-double-tests", points=1),
        graded(v4.new_code_cell(HIDDEN), "ex1-double-hidden", points=2),
    ]
    for i, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{i}")
        if "id" not in cell or not cell["id"]:
            cell["id"] = f"cell-{i}"
    return nb


# ---------------------------------------------------------------- transformations (no kernel)

def test_hidden_tests_and_solutions_are_removed():
    nb = tiny_lecture()
    nb.cells[4].outputs = [nbformat.v4.new_output("stream", text="hidden-output")]
    site.strip_hidden_tests(nb)
    site.clear_solutions(nb)
    text = nbformat.writes(nb)
    assert "hidden-reference" not in text and "hidden-output" not in text and "BEGIN HIDDEN" not in text
    assert "the-secret-answer" not in text and "BEGIN SOLUTION" not in text
    assert "# YOUR CODE HERE\n    raise NotImplementedError()" in nb.cells[2].source
    assert nb.cells[4].source.startswith("# hidden checks")
    assert "assert double(1) == 2" in nb.cells[3].source, "public checks stay"


def test_widget_outputs_are_dropped_and_static_figures_kept():
    nb = tiny_lecture()
    view = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "VBox(...)"}
    figure = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data=view),
                           nbformat.v4.new_output("display_data", data=figure)]
    nb.metadata["widgets"] = {"state": {}}
    site.static_outputs(nb)
    assert [list(o.data) for o in nb.cells[1].outputs] == [["image/png", "text/plain"]]
    assert "widgets" not in nb.metadata


def test_links_point_at_pages_on_the_site_or_become_text():
    nb = tiny_lecture()
    site.rewrite_links(nb, {"00_start_here": "00_start_here.html"})
    source = nb.cells[0].source
    assert "[the start](00_start_here.html)" in source
    assert source.endswith("on to lecture 9.") and "09_not_on_the_site" not in source


def test_describe_reads_title_summary_and_points():
    title, summary, points = site.describe(tiny_lecture())
    assert title == "Lecture 1 — A tiny lecture"
    assert summary == "Doubling numbers, with a figure."
    assert points == 3


def test_unknown_lecture_is_refused(tmp_path):
    with pytest.raises(CourseKitError, match="Unknown lecture 'nope'"):
        site.build(ROOT, tmp_path / "site", notebooks=["nope"], progress=False)


# ---------------------------------------------------------------- a real build

def hrefs_and_images(page: Path):
    text = page.read_text(encoding="utf-8")
    hrefs = re.findall(r"""href=['"]([^'"]+)['"]""", text)
    images = re.findall(r"""<img[^>]*src=['"]([^'"]+)['"]""", text)
    return text, hrefs, images


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A course with the real lecture 00 and a tiny lecture, built into a site."""
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "solutions" / "00_start_here", course / "solutions" / "00_start_here")
    shutil.copytree(ROOT / "notebooks" / "00_start_here", course / "notebooks" / "00_start_here")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    tiny = course / "solutions" / "01_tiny" / "01_tiny.ipynb"
    tiny.parent.mkdir(parents=True)
    nbformat.write(tiny_lecture(), tiny)
    released = tiny_lecture()
    site.strip_hidden_tests(released)
    site.clear_solutions(released)
    (course / "notebooks" / "01_tiny").mkdir(parents=True)
    nbformat.write(released, course / "notebooks" / "01_tiny" / "01_tiny.ipynb")
    index = site.build(course, course / "build" / "site", progress=False)
    return course, index


@pytest.mark.slow
def test_every_page_image_and_link_exists(built):
    course, index = built
    out = index.parent
    assert index == course / "build" / "site" / "index.html"
    pages = {"00_start_here.html", "01_tiny.html"}
    assert pages <= {p.name for p in out.glob("*.html")}
    _, index_links, _ = hrefs_and_images(index)
    assert pages <= set(index_links)
    assert {"notebooks/00_start_here.ipynb", "notebooks/01_tiny.ipynb"} <= set(index_links)
    counts = {}
    for page in [index, *(out / p for p in pages)]:
        text, hrefs, images = hrefs_and_images(page)
        for src in images:
            assert not src.startswith(("http", "data:")), f"{page.name}: figures are files, got {src[:40]}"
            path = out / src
            assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{page.name}: {src}"
        for href in hrefs:
            if href.startswith(("#", "http://", "https://", "mailto:")):
                continue
            assert (out / href.split("#")[0]).is_file(), f"{page.name} links to missing {href}"
        counts[page.name] = len(images)
        if page != index:       # maths: MathJax from the site's own copy, not a CDN
            mathjax = re.findall(r"""<script src=['"]([^'"]*MathJax[^'"]*)['"]""", text)
            assert mathjax and all(not m.startswith("http") and (out / m.split("?")[0]).is_file() for m in mathjax), mathjax
    assert counts["00_start_here.html"] >= 4, "lecture 00: digits, attack, curve and the explorer's static figure"
    assert counts["01_tiny.html"] == 1


@pytest.mark.slow
def test_navigation_between_lectures(built):
    _, index = built
    out = index.parent
    first, _, _ = hrefs_and_images(out / "00_start_here.html")
    second, _, _ = hrefs_and_images(out / "01_tiny.html")
    nav_first = re.search(r"<nav[^>]*coursekit-nav-top[^>]*>(.*?)</nav>", first, re.S).group(1)
    nav_second = re.search(r"<nav[^>]*coursekit-nav-top[^>]*>(.*?)</nav>", second, re.S).group(1)
    assert "01_tiny.html" in nav_first and "index.html" in nav_first
    assert "00_start_here.html" in nav_second and "index.html" in nav_second
    assert "notebooks/01_tiny.ipynb" in nav_second
    assert first.count("coursekit-nav") >= 2, "navigation at the top and the bottom"
    assert "[the start]" not in second and "href=\"00_start_here.html\"" in second, "lecture links point at pages"


@pytest.mark.slow
def test_pages_show_outputs_but_no_answers(built):
    _, index = built
    text = (index.parent / "01_tiny.html").read_text(encoding="utf-8")
    assert "public checks passed (1 point)" in text, "outputs of the solution run are shown"
    assert "YOUR CODE HERE" in text
    for secret in ("the-secret-answer", "hidden-reference", "BEGIN HIDDEN TESTS", "BEGIN SOLUTION"):
        assert secret not in text
    start = (index.parent / "00_start_here.html").read_text(encoding="utf-8")
    assert "widget-view+json" not in start
    assert "coursekit doctor" in start and "ready for the course" in start


@pytest.mark.slow
def test_a_failing_lecture_is_reported_and_still_rendered(tmp_path):
    course = tmp_path / "course"
    broken = course / "solutions" / "01_broken" / "01_broken.ipynb"
    broken.parent.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken"), nbformat.v4.new_code_cell("print('before')"),
                nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, broken)
    with pytest.raises(CourseKitError, match="01_broken: ZeroDivisionError"):
        site.build(course, course / "site", progress=False)
    page = (course / "site" / "01_broken.html").read_text(encoding="utf-8")
    assert "before" in page and "ZeroDivisionError" in page
    assert "failed" in (course / "site" / "index.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------- maths offline

def test_pages_typeset_maths_with_the_local_mathjax_and_no_network(tmp_path):
    """The site carries MathJax (jupyter-server-mathjax): in a browser with every non-file request
    blocked, the formulas of a page are typeset (no raw TeX left) from the local copy."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("Debian's chromium is not installed (make browser-deps)")
    out = tmp_path / "site"
    out.mkdir()
    url = site.copy_mathjax(out)
    assert url and (out / "mathjax" / "MathJax.js").is_file() and not (out / "mathjax" / "extensions" / "a11y").exists()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(
        "# Maths\n\nFGSM: $$x_{\\text{adv}} = \\operatorname{clip}_{[0,1]}\\big(x + \\varepsilon\\,"
        "\\operatorname{sign}(\\nabla_x L)\\big)$$ and inline $\\|w\\|_1$.")]
    lecture = site.Lecture(name="99_maths", source=tmp_path / "x.ipynb", page="99_maths.html")
    (out / lecture.page).write_text(site.render(nb, lecture, out, url), encoding="utf-8")
    outside = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page()

        def only_files(route):
            if route.request.url.startswith("file://"):
                return route.continue_()
            outside.append(route.request.url)
            return route.abort()

        page.route("**/*", only_files)
        page.goto((out / lecture.page).as_uri())
        page.wait_for_function("window.MathJax && MathJax.isReady && MathJax.Hub.queue.pending === 0 "
                               "&& document.querySelectorAll('.MathJax_Display, .MathJax').length >= 2",
                               timeout=60000)
        text = page.inner_text("body")
        browser.close()
    assert "\\varepsilon" not in text and "\\|w\\|_1" not in text       # typeset, not raw TeX
    assert not [u for u in outside if "mathjax" in u.lower()], outside    # MathJax came from the site
