"""Where a learner's Python gets coursekit (Colab, JupyterHub), and where the course lives online.

A notebook opened in Colab, or downloaded from the course site, runs in a Python that may not have
coursekit. The first code cell of every lecture (the *install cell*, tagged ``coursekit-install``)
installs it from the package source that the course names, and says clearly what to do when the
course names none. Two settings, in ONE place, the ``[tool.coursekit]`` table of the course's
``pyproject.toml``::

    [tool.coursekit]
    package = "https://example.org/course/coursekit-0.1.0-py3-none-any.whl"
    repository = "https://github.com/example/coursekit"     # "Open in Colab" links on the site
    branch = "main"

``package`` is a wheel URL (``make wheel`` builds it: host ``dist/coursekit-*.whl`` anywhere that
serves files), a package index URL (``.../simple``: coursekit from there, its dependencies from PyPI),
a pip requirement (``coursekit==0.1.0``) or a ``git+https://...`` address. The environment variables
``COURSEKIT_PACKAGE``, ``COURSEKIT_REPOSITORY`` and ``COURSEKIT_BRANCH`` override the file (a
JupyterHub image, a test).

After changing a setting, ``python -m coursekit.distribution stamp`` rewrites the install cells of
``solutions/`` (then ``make release`` carries them into ``notebooks/``); the site stamps the notebooks
it offers for download itself, and gives a download whose lecture has no install cell one
(:func:`ensure_install_cell`). A lecture gets the cell with :func:`install_cell` (see docs/CONVENTIONS.md).
"""
from __future__ import annotations

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from coursekit.checks import CourseKitError

__all__ = ["INSTALL_TAG", "Settings", "colab_url", "ensure_install_cell", "install_cell", "install_cell_source", "pip_arguments",
           "settings", "stamp"]

INSTALL_TAG = "coursekit-install"
_ENV = {"package": "COURSEKIT_PACKAGE", "repository": "COURSEKIT_REPOSITORY", "branch": "COURSEKIT_BRANCH"}


@dataclass(frozen=True)
class Settings:
    """The course's package source (``package``) and repository address, both optional."""

    package: str = ""
    repository: str = ""
    branch: str = "main"


def settings(root: Path | str | None = None) -> Settings:
    """The settings of the course at ``root`` (``[tool.coursekit]`` of its pyproject.toml), env first."""
    values: dict[str, str] = {}
    if root is not None and (Path(root) / "pyproject.toml").is_file():
        path = Path(root) / "pyproject.toml"
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("coursekit", {})
        except tomllib.TOMLDecodeError as exc:
            raise CourseKitError(f"{path} is not valid TOML ({exc}): fix it to read [tool.coursekit].") from None
        for key, value in table.items():
            if key not in _ENV:
                raise CourseKitError(f"Unknown setting {key!r} in [tool.coursekit] of {path}: "
                                     f"use {', '.join(_ENV)}.")
            if not isinstance(value, str):
                raise CourseKitError(f"[tool.coursekit] {key} in {path} must be a string, got {value!r}.")
            values[key] = value.strip()
    for key, variable in _ENV.items():
        if os.environ.get(variable, "").strip():
            values[key] = os.environ[variable].strip()
    return Settings(**{k: v for k, v in values.items() if v})


def pip_arguments(package: str) -> list[str]:
    """What follows ``pip install`` for a package source (see the module docstring for the forms)."""
    package = package.strip()
    if not package:
        raise CourseKitError("No package source given: set [tool.coursekit] package in pyproject.toml.")
    if package.startswith("git+") or package.endswith(".whl") or package.endswith((".tar.gz", ".zip")):
        return [f"coursekit @ {package}"]
    if urlparse(package).scheme in ("http", "https"):       # a package index (PEP 503 'simple' page)
        return ["--extra-index-url", package, "coursekit"]
    if package.startswith("coursekit"):                       # a requirement: coursekit==0.1.0
        return [package]
    raise CourseKitError(f"Cannot read the package source {package!r}: give a wheel URL (.whl), a package "
                         "index URL (https://.../simple), a requirement (coursekit==0.1.0) or git+https://...")


def _quoted(args: list[str]) -> str:
    return " ".join(f'"{a}"' if " " in a else a for a in args)


def install_cell_source(config: Settings | None = None) -> str:
    """The install cell's code for ``config`` (this course's settings when None)."""
    config = config if config is not None else Settings()
    lines = ["# Colab / JupyterHub: installs coursekit where it is missing (on your own computer nothing happens).",
             "import importlib, importlib.util, sys",
             'if importlib.util.find_spec("coursekit") is None:']
    if config.package:
        lines += [f"    %pip install --quiet {_quoted(pip_arguments(config.package))}",
                  "    importlib.invalidate_caches()   # import it without restarting the session"]
    else:
        lines += ['    raise ModuleNotFoundError(',
                  '        "coursekit is not installed in this Python, and this course names no package to install "',
                  '        "it from. Ask your instructor for the course\'s wheel URL, run  %pip install <that URL>  "',
                  '        "in a cell, then run this notebook again. (Instructors: set [tool.coursekit] package "',
                  '        "in pyproject.toml; see the README.)")']
    lines += ['if "google.colab" in sys.modules:   # sliders in Colab need its custom widget manager',
              "    from google.colab import output",
              "    output.enable_custom_widget_manager()"]
    return "\n".join(lines)


def install_cell(config: Settings | None = None):
    """A new install cell (an nbformat code cell tagged ``coursekit-install``), for a lecture's top."""
    import nbformat

    cell = nbformat.v4.new_code_cell(install_cell_source(config))
    cell["id"] = INSTALL_TAG
    cell.metadata["tags"] = [INSTALL_TAG]
    return cell


def stamp(nb, config: Settings | None = None) -> int:
    """Rewrite the install cells of a notebook (in place) for ``config``; return how many changed."""
    source = install_cell_source(config)
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and INSTALL_TAG in cell.metadata.get("tags", []) and cell.source != source:
            cell.source = source
            cell.outputs = []
            changed += 1
    return changed


def ensure_install_cell(nb, config: Settings | None = None) -> bool:
    """Give a notebook (in place) an up-to-date install cell as its first code cell; True if one was added.

    For the copies the site offers for download: a lecture whose source has no install cell still
    installs coursekit wherever the download is opened. Existing install cells are stamped instead.
    """
    if any(cell.cell_type == "code" and INSTALL_TAG in cell.metadata.get("tags", []) for cell in nb.cells):
        stamp(nb, config)
        return False
    first_code = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, install_cell(config))
    return True


def colab_url(config: Settings, notebook: str) -> str | None:
    """"Open in Colab" for ``notebook`` (a path inside the repository), or None without a GitHub repository."""
    parsed = urlparse(config.repository)
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.netloc.lower() != "github.com" or len(parts) < 2:
        return None
    owner, repo = parts[0], parts[1].removesuffix(".git")
    return f"https://colab.research.google.com/github/{owner}/{repo}/blob/{config.branch}/{notebook.lstrip('/')}"


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(prog="python -m coursekit.distribution",
                                     description="Show the course's package settings, or stamp them into "
                                                 "the install cells of solutions/ (then run `make release`).")
    parser.add_argument("action", choices=["show", "stamp"])
    parser.add_argument("--root", default=".", help="the course folder (default: .)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    config = settings(root)
    if args.action == "show":
        print(f"package: {config.package or '(none: the install cell tells learners to ask)'}")
        print(f"repository: {config.repository or '(none: no Open in Colab links)'} (branch {config.branch})")
        return 0
    for path in sorted((root / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        if stamp(nb, config):
            nbformat.write(nb, path)
            print(f"stamped {path.relative_to(root)}")
    print("now run `make release` to carry the install cells into notebooks/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
