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
        v4.new_markdown_cell("Robust doubling is another story (Madry et al., 2018)."),
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
    from coursekit import distribution

    for download in ("00_start_here", "01_tiny"):   # each download installs coursekit where it is opened
        nb = nbformat.read(out / "notebooks" / f"{download}.ipynb", as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert distribution.INSTALL_TAG in first_code.metadata.get("tags", []), download
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
    assert counts["00_start_here.html"] >= 4, "lecture 00: digits, attack, curve and the explorer's slider"
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
    assert "00_start_here.html" in nav_second and "index.html" in nav_second and "references.html" in nav_second
    meta = re.search(r"<div class='ck-meta'>(.*?)</div>", second, re.S).group(1)
    assert "notebooks/01_tiny.ipynb" in meta, "the notebook's download link sits in the page's meta line"
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


# ---------------------------------------------------------------- contents, search, references, sliders

SAMPLE = ("<main><h1 id='T'>Title</h1><p>intro</p><h2 id=\"A-b\">A <code>b</code><a class='anchor-link'>¶</a></h2>"
          "<p>alpha &amp; beta</p><script>var x = 'hidden';</script><h3 id=\"C\">C</h3><p>gamma</p></main>")


def test_headings_contents_and_search_sections():
    from coursekit import site_html

    sample = SAMPLE.replace("id='T'", 'id="T"')
    assert site_html.headings(sample) == [(1, "T", "Title"), (2, "A-b", "A b"), (3, "C", "C")]
    toc = site_html.toc_html(site_html.headings(sample))
    assert "href='#A-b'" in toc and "href='#C'" in toc and "href='#T'" not in toc and "ck-h3" in toc
    assert "href='#T'" in site_html.toc_html([(1, "T", "Title")]), "a page without sections lists its title"
    assert "href='#references'" in site_html.toc_html([(1, "T", "Title")], references=True)
    code = '<div class="highlight hl-ipython3"><pre><span>import</span> secret_code</pre></div>'
    assert "secret_code" not in site_html.sections(sample.replace("<p>gamma</p>", code + "<p>gamma</p>"))[2]["text"]
    sections = site_html.sections(sample)
    assert sections[1] == {"anchor": "A-b", "section": "A b", "text": "alpha & beta"}, "no script text"
    js = site_html.search_index_js([{"page": "p.html", **sections[2]}])
    assert js.startswith("window.COURSEKIT_SEARCH = [") and '"gamma"' in js


def test_external_scripts_are_removed_and_local_ones_kept():
    from coursekit import site_html

    page = ('<head><script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js"></script>'
            '<script src="mathjax/MathJax.js?config=x"> </script></head>')
    cleaned = site_html.without_external_scripts(page)
    assert "cdnjs" not in cleaned and 'src="mathjax/MathJax.js?config=x"' in cleaned


def test_estimated_minutes_follow_the_formula():
    nb = tiny_lecture()   # 4 code cells, 1 exercise
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    expected = words / site.WORDS_PER_MINUTE + 4 * site.MINUTES_PER_CODE_CELL + 60 / 60 + site.MINUTES_PER_EXERCISE
    assert site.estimate_minutes(nb, run_seconds=60) == 5 * -(-expected // 5) == 15
    nb.cells = nb.cells[:2]
    assert site.estimate_minutes(nb) == 5, "never less than 5 minutes"


def test_every_citation_in_the_lectures_has_a_linked_reference():
    from coursekit import references

    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert references.uncited_mentions(text) == [], f"{path.parent.name}: add these to coursekit/references.py"
    assert all(r.url.startswith("https://") for r in references.REFERENCES)
    assert len({r.key for r in references.REFERENCES}) == len(references.REFERENCES)
    cited = references.cited("as in (Madry et al., 2018) and Goodfellow, Shlens and Szegedy (2015)")
    assert [r.key for r in cited] == ["goodfellow2015", "madry2018"]
    assert references.uncited_mentions("see Smith et al. (2021)") == ["Smith et al. (2021"]


def test_sliders_replace_the_static_figure_and_caption(tmp_path):
    from coursekit import widgets

    frames = widgets.Frames("ε", ["0.0", "0.1"], [b"\x89PNG one", b"\x89PNG two"], start=0)
    nb = tiny_lecture()
    mark = {"metadata": widgets.STATIC_MARK}
    nb.cells[1].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": "AAAA"}, **mark),
        nbformat.v4.new_output("display_data", data={"text/markdown": "*Figure 4.* cap"}, **mark),
        nbformat.v4.new_output("display_data", data=widgets.frames_bundle(frames)),
        nbformat.v4.new_output("stream", text="kept"),
    ]
    assert site.sliders(nb, tmp_path, "x_files", "x") == 1
    outputs = nb.cells[1].outputs
    assert len(outputs) == 2 and outputs[1]["text"] == "kept"
    markup = outputs[0]["data"]["text/html"]
    assert "type='range'" in markup and "max='1'" in markup and "pre-rendered at 2 values of ε" in markup
    assert "Figure 4" not in markup, "the static figure's caption goes with the static figure"
    assert (tmp_path / "x_files" / "x_c1_0_frame1.png").read_bytes() == b"\x89PNG two"


def test_meta_line_and_colab_link():
    from coursekit import site_html

    info = site_html.PageInfo(name="01_x", title="X", page="01_x.html", minutes=35,
                              made_with="default budgets, embedded digits", notebook="notebooks/01_x.ipynb")
    meta = site_html.meta_html(info)
    assert "About 35 minutes" in meta and "default budgets, embedded digits" in meta and "Colab" not in meta
    info.colab = "https://colab.research.google.com/github/a/b/blob/main/notebooks/01_x/01_x.ipynb"
    assert "Open in Colab" in site_html.meta_html(info)


@pytest.mark.slow
def test_the_built_site_has_contents_search_index_references_and_its_budgets(built):
    _, index = built
    out = index.parent
    for name in ("site.css", "site.js", "search-index.js", "references.html", "theme-dark.css"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    index_js = (out / "search-index.js").read_text(encoding="utf-8")
    assert '"page": "00_start_here.html"' in index_js and '"page": "01_tiny.html"' in index_js
    for page in ("00_start_here.html", "01_tiny.html"):
        text = (out / page).read_text(encoding="utf-8")
        assert "id='ck-toc'" in text and "default budgets" in text and "About " in text
        assert not re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=['"]https?://""", text), page
    start = (out / "00_start_here.html").read_text(encoding="utf-8")
    assert len(re.findall(r"class=[\"']ck-frames[\"']", start)) == 1, "lecture 00's explorer is a pre-rendered slider"
    assert "(static fallback)" not in start
    assert "ck-colab" not in start, "no repository configured: no Colab link"
    assert "id='references'" not in start, "a lecture that cites nothing lists nothing"
    tiny = (out / "01_tiny.html").read_text(encoding="utf-8")
    refs = re.search(r"<section class='ck-references' id='references'>(.*?)</section>", tiny, re.S).group(1)
    assert "Madry" in refs and "href='https://arxiv.org/abs/1706.06083'" in refs
    assert "01_tiny.html#references" in (out / "references.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_site_in_a_browser_with_every_non_file_request_blocked(built):
    """Zero failed requests; each lecture page has contents whose links land on headings; the search
    finds a term of each lecture; the explorer's pre-rendered slider changes the image; the layout
    holds at phone width and follows a dark system setting. Screenshots in build/browser/."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).is_file():
        pytest.skip("Debian's chromium is not installed (make browser-deps)")
    out = built[1].parent
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    outside, failed = [], []

    def only_files(route):
        if route.request.url.startswith("file://"):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    def open_page(page, name):
        page.goto((out / name).as_uri())
        page.wait_for_load_state("load")
        if name[:2].isdigit():     # maths typeset before anything is measured
            page.wait_for_function("window.MathJax && MathJax.isReady && MathJax.Hub.queue.pending === 0",
                                   timeout=60000)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        context.route("**/*", only_files)
        context.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
        page = context.new_page()
        for name in ("index.html", "references.html", "00_start_here.html", "01_tiny.html"):
            open_page(page, name)
            page.screenshot(path=str(shots / f"site_{name[:-5]}.png"))
            if name[:2].isdigit():
                links = page.eval_on_selector_all("#ck-toc a", "els => els.map(a => a.getAttribute('href'))")
                assert len(links) >= 1, f"{name}: no table of contents"
                missing = page.evaluate("hrefs => hrefs.filter(h => !document.getElementById(h.slice(1)) "
                                        "&& !document.getElementById(decodeURIComponent(h.slice(1))))", links)
                assert missing == [], f"{name}: contents entries without a heading: {missing}"
        open_page(page, "index.html")
        for term, lecture in (("doctor", "00_start_here.html"), ("doubling", "01_tiny.html")):
            page.fill("#ck-search", term)
            hits = page.eval_on_selector_all("#ck-search-results a", "els => els.map(a => a.getAttribute('href'))")
            assert any(h.startswith(lecture) for h in hits), f"search for {term!r} gave {hits}"
        page.screenshot(path=str(shots / "site_search.png"))
        open_page(page, "00_start_here.html")
        boxes = page.locator(".ck-frames")
        assert boxes.count() == 1
        for k in range(boxes.count()):
            box = boxes.nth(k)
            box.scroll_into_view_if_needed()
            before = box.locator("img").get_attribute("src")
            page.evaluate("""box => { const r = box.querySelector('input[type=range]');
                r.value = r.max; r.dispatchEvent(new Event('input')); }""", box.element_handle())
            after = box.locator("img").get_attribute("src")
            assert after != before, "the slider changes the image"
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=box.locator("img").element_handle())
            assert box.locator("output").text_content() == "0.300"
            box.screenshot(path=str(shots / f"site_slider{k}.png"))
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.route("**/*", only_files)
        phone.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
        small = phone.new_page()
        open_page(small, "00_start_here.html")
        header = small.locator(".ck-header").first.bounding_box()
        assert header["height"] < 130, f"the navigation takes {header['height']:.0f} px at phone width"
        assert small.evaluate("document.querySelector('.ck-toc details').open") is False, "contents folded"
        small.screenshot(path=str(shots / "site_phone.png"))
        dark = browser.new_context(viewport={"width": 1366, "height": 768}, color_scheme="dark")
        dark.route("**/*", only_files)
        night = dark.new_page()
        open_page(night, "00_start_here.html")
        background = night.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(v) for v in re.findall(r"\d+", background)[:3]]
        assert sum(channels) < 3 * 80, f"dark mode keeps a light background: {background}"
        night.screenshot(path=str(shots / "site_dark.png"))
        browser.close()
    assert outside == [], f"requests outside the site: {outside}"
    assert failed == [], f"failed requests: {failed}"
