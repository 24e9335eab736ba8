"""The HTML around the lectures of the static site (:mod:`coursekit.site` renders the lectures).

Pure functions from data to HTML strings: the header (navigation and the search box), the per-page
table of contents, the line that says how a page was made (time estimate, budgets and data, the
notebook, "Open in Colab"), the references, the pre-rendered sliders, the course map, the references
page and the search index. The look (light/dark, laptop/phone) is ``assets/site.css``; the behaviour
(search, sliders) is ``assets/site.js``; neither asks the network for anything.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from coursekit.references import Reference

ASSETS = ("site.css", "site.js")
_HEADING = re.compile(r"<h([1-3]) id=\"([^\"]+)\"[^>]*>(.*?)</h\1>", re.S)
_TAG = re.compile(r"<[^>]+>")
_SKIP_BLOCKS = re.compile(r"<(script|style)\b.*?</\1>", re.S | re.I)
_CODE_INPUT = re.compile(r"<div class=\"highlight[^\"]*\">\s*<pre>.*?</pre>\s*</div>", re.S)   # code cells' source
SECTION_CHARS = 4000   # the text of one section kept in the search index


@dataclass
class PageInfo:
    """What the chrome of one lecture page needs."""

    name: str
    title: str
    page: str
    minutes: int = 0
    made_with: str = ""                       # e.g. "default budgets, embedded digits"
    notebook: str | None = None               # the student notebook to download
    colab: str | None = None                  # "Open in Colab" address
    references: list[Reference] = field(default_factory=list)


def _text(fragment: str) -> str:
    """Visible text of an HTML fragment (no tags, scripts or styles; one space between words)."""
    fragment = _SKIP_BLOCKS.sub(" ", fragment)
    fragment = fragment.replace("¶", " ")
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def headings(body: str) -> list[tuple[int, str, str]]:
    """``(level, id, text)`` of the h1-h3 headings of a rendered page, in order."""
    return [(int(level), anchor, _text(inner)) for level, anchor, inner in _HEADING.findall(body)]


def toc_html(entries: Sequence[tuple[int, str, str]], *, references: bool = False) -> str:
    """The page's contents: its h2 and h3 headings, linked (the h1 title only when there is no h2),
    and the references section when the page has one."""
    shown = [e for e in entries if e[0] in (2, 3)] or [e for e in entries if e[0] == 1]
    items = [f"<li class='ck-h{level}'><a href='#{html.escape(anchor, quote=True)}'>{html.escape(text)}</a></li>"
             for level, anchor, text in shown]
    if references:
        items.append("<li class='ck-h2'><a href='#references'>References</a></li>")
    return ("<aside class='ck-toc' id='ck-toc'><details open><summary>Contents</summary><ol>"
            + "".join(items) + "</ol></details></aside>")


def sections(body: str) -> list[dict]:
    """The page cut at its headings: ``{"anchor", "section", "text"}`` per heading (for the search):
    the prose and the outputs, not the code cells' source."""
    found = []
    matches = list(_HEADING.finditer(body))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        text = _text(_CODE_INPUT.sub(" ", body[match.end():end]))
        found.append({"anchor": match.group(2), "section": _text(match.group(3)), "text": text[:SECTION_CHARS]})
    return found


def search_index_js(entries: Sequence[dict]) -> str:
    """``search-index.js``: the index as a script (a page on file:// may load scripts, not fetch JSON)."""
    return "window.COURSEKIT_SEARCH = " + json.dumps(list(entries), ensure_ascii=False) + ";\n"


def _search_box() -> str:
    return ("<div class='ck-search' role='search'><input id='ck-search' type='search' "
            "placeholder='Search all lectures' aria-label='Search all lectures' autocomplete='off'>"
            "<ul id='ck-search-results' hidden></ul></div>")


def nav_html(pages: Sequence[PageInfo], i: int | None, *, footer: bool = False) -> str:
    """Previous / course map / references / next, and the search box (top bar only)."""
    def link(target: PageInfo | None, arrow: str, short: str) -> str:
        if target is None:
            return ""
        title = html.escape(target.title)
        label = f"{arrow} {title}" if arrow == "&larr;" else f"{title} {arrow}"
        short_label = f"{arrow} {short}" if arrow == "&larr;" else f"{short} {arrow}"
        return (f"<a href='{target.page}' class='ck-{short}'><span class='ck-long'>{label}</span>"
                f"<span class='ck-short'>{short_label}</span></a>")

    prev_page = pages[i - 1] if i is not None and i > 0 else None
    next_page = pages[i + 1] if i is not None and i + 1 < len(pages) else None
    parts = [link(prev_page, "&larr;", "previous"), "<a href='index.html'>course map</a>",
             "<a href='references.html'>references</a>", link(next_page, "&rarr;", "next")]
    if not footer:
        parts.append(_search_box())
    where = "ck-footer" if footer else "ck-header"
    ident = "coursekit-nav-bottom" if footer else "coursekit-nav-top"
    return f"<header class='{where}'><nav class='ck-nav coursekit-nav' id='{ident}'>{''.join(p for p in parts if p)}</nav></header>"


def meta_html(info: PageInfo) -> str:
    """The line under the header: time estimate, how the figures were made, notebook links."""
    parts = [f"About {info.minutes} minutes" if info.minutes else "",
             f"Figures and numbers on this page: {html.escape(info.made_with)}" if info.made_with else ""]
    if info.notebook:
        parts.append(f"<a href='{info.notebook}' download>download the notebook (.ipynb)</a>")
    if info.colab:
        parts.append(f"<a href='{html.escape(info.colab, quote=True)}' class='ck-colab'>Open in Colab</a>")
    return "<div class='ck-meta'>" + " &middot; ".join(p for p in parts if p) + "</div>"


def references_html(refs: Sequence[Reference], heading: str = "References") -> str:
    if not refs:
        return ""
    items = "".join(f"<li id='ref-{r.key}'>{html.escape(r.citation())} "
                    f"<a href='{html.escape(r.url, quote=True)}'>{html.escape(_short_link(r.url))}</a></li>"
                    for r in refs)
    return f"<section class='ck-references' id='references'><h2>{heading}</h2><ol>{items}</ol></section>"


def _short_link(url: str) -> str:
    if "arxiv.org/abs/" in url:
        return "arXiv:" + url.rsplit("/", 1)[1]
    if "doi.org/" in url:
        return "doi:" + url.split("doi.org/", 1)[1]
    return url.split("//", 1)[-1]


def head_links() -> str:
    """The site's own stylesheets and scripts (no external address)."""
    return ("<link rel='stylesheet' href='site.css'>\n"
            "<link rel='stylesheet' href='theme-dark.css' media='(prefers-color-scheme: dark)'>\n"
            "<script src='search-index.js' defer></script>\n<script src='site.js' defer></script>\n")


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']https?://[^>]*>\s*</script>\s*", re.I)


def without_external_scripts(page: str) -> str:
    """Drop ``<script src="http...">`` tags (nbconvert's require.js from a CDN: widgets need it, a static
    page has none)."""
    return _EXTERNAL_SCRIPT.sub("", page)


def lecture_page(page: str, info: PageInfo, pages: Sequence[PageInfo], i: int) -> str:
    """Wrap an nbconvert page: header, contents beside the lecture, meta line, references, footer."""
    from coursekit.checks import CourseKitError

    page = without_external_scripts(page)
    page = page.replace("</head>", head_links() + "</head>", 1)
    body_start = re.search(r"<body[^>]*>", page)
    if body_start is None or "<main>" not in page or "</main>" not in page:
        raise CourseKitError("nbconvert produced a page without <body>/<main>: cannot add the navigation.")
    body = page[body_start.end():]
    toc = toc_html(headings(body), references=bool(info.references))
    page = page[:body_start.end()] + "\n" + nav_html(pages, i) + page[body_start.end():]
    page = page.replace("<main>", f"<div class='ck-layout'>{toc}<main class='ck-main'>{meta_html(info)}", 1)
    head, sep, tail = page.rpartition("</main>")
    page = head + references_html(info.references) + sep + "</div>" + tail
    head, sep, tail = page.rpartition("</body>")
    return head + nav_html(pages, i, footer=True) + "\n" + sep + tail


def frames_html(frames, folder: str, out: Path, key: str) -> str:
    """Write ``frames`` (a :class:`coursekit.widgets.Frames`) as PNG files in ``out/folder``; return
    the slider's HTML (an image and an HTML range input; assets/site.js swaps the image)."""
    (out / folder).mkdir(parents=True, exist_ok=True)
    names = []
    for j, png in enumerate(frames.images):
        name = f"{folder}/{key}_frame{j}.png"
        (out / name).write_bytes(png)
        names.append(name)
    label = html.escape(frames.label)
    return (f"<figure class='ck-frames' data-frames='{html.escape(json.dumps(names), quote=True)}' "
            f"data-values='{html.escape(json.dumps(frames.values, ensure_ascii=False), quote=True)}'>"
            f"<img src='{names[frames.start]}' alt='the explorer at {label} = {html.escape(frames.values[frames.start])}'>"
            f"<label>{label} <input type='range' min='0' max='{len(names) - 1}' step='1' value='{frames.start}' "
            f"aria-label='{label}' disabled> <output>{html.escape(frames.values[frames.start])}</output></label>"
            f"<figcaption>The explorer, pre-rendered at {len(names)} values of {label}: move the slider "
            f"(no kernel needed).</figcaption></figure>")


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title>\n{head_links()}</head>\n<body>{body}</body></html>\n")


@dataclass
class IndexRow:
    number: str
    info: PageInfo
    summary: str
    points: int
    figures: int
    error: str | None = None


def index_html(rows: Sequence[IndexRow], *, built: str, made_with: str, solutions_note: str) -> str:
    """The course map: every lecture with its time estimate, summary, points and figures."""
    lines = []
    for row in rows:
        info = row.info
        status = (f" <strong style='color:#cf222e'>(failed: {html.escape(row.error.splitlines()[0])})</strong>"
                  if row.error else "")
        notebook = f"<a href='{info.notebook}' download>.ipynb</a>" if info.notebook else "-"
        if info.colab:
            notebook += f"<br><a href='{html.escape(info.colab, quote=True)}' class='ck-colab'>Colab</a>"
        lines.append(f"<tr><td>{row.number}</td><td><a href='{info.page}'>{html.escape(info.title)}</a>{status}"
                     f"<br><small>{html.escape(row.summary)}</small></td><td>{info.minutes or '-'}</td>"
                     f"<td>{row.points or '-'}</td><td>{row.figures}</td><td>{notebook}</td></tr>")
    pages = [row.info for row in rows]
    body = f"""{nav_html(pages, None)}<div class='ck-page'>
<h1>Adversarial examples and GANs, hands-on</h1>
<p>A Jupyter course that runs on a laptop CPU, offline. Each lecture below is a notebook, shown here
with its outputs and with the explorers' sliders pre-rendered; download the student notebook to run it
and do the exercises. Start with lecture 00. Search every lecture with the box above.</p>
<h2 id="course-map">Course map</h2>
<table id="lectures">
<tr><th>#</th><th>lecture</th><th>minutes</th><th>points</th><th>figures</th><th>notebook</th></tr>
{''.join(lines)}
</table>
<p><small>Minutes: an estimate (reading at 200 words a minute, half a minute per code cell, the
notebook's own run time here, and 10 minutes per exercise). Figures and numbers: {html.escape(made_with)}.
{html.escape(solutions_note)} Built {html.escape(built)}.</small></p>
<h2>Run it yourself</h2>
<pre><code>make lab            # JupyterLab on the student notebooks (sets up .venv the first time)
coursekit doctor    # checks Python, packages, widgets, weights, data and the device</code></pre>
</div>"""
    return _page("coursekit: adversarial examples and GANs", body)


def references_page(refs_by_lecture: Sequence[tuple[PageInfo, Sequence[Reference]]]) -> str:
    """``references.html``: every cited paper once, with the lectures that cite it."""
    where: dict[str, list[PageInfo]] = {}
    order: list[Reference] = []
    for info, refs in refs_by_lecture:
        for ref in refs:
            if ref.key not in where:
                where[ref.key] = []
                order.append(ref)
            where[ref.key].append(info)
    order.sort(key=lambda r: (r.authors.split(",")[0].split()[-1], r.year))
    items = "".join(
        f"<li id='ref-{r.key}'>{html.escape(r.citation())} <a href='{html.escape(r.url, quote=True)}'>"
        f"{html.escape(_short_link(r.url))}</a><br><small>cited in: "
        + ", ".join(f"<a href='{p.page}#references'>{html.escape(p.title)}</a>" for p in where[r.key])
        + "</small></li>" for r in order)
    pages = [info for info, _ in refs_by_lecture]
    body = (f"{nav_html(pages, None)}<div class='ck-page'><h1>References</h1>"
            f"<p>The papers the lectures cite, with links to the papers themselves.</p><ol>{items}</ol></div>")
    return _page("coursekit: references", body)
