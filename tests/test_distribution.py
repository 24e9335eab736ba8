"""The Colab / JupyterHub path (coursekit.distribution): the install cell installs coursekit from the
package source the course names, says what to do when it names none, and the site links to Colab
only when the course's repository is configured."""
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from coursekit import distribution
from coursekit.checks import CourseKitError

ROOT = Path(__file__).resolve().parents[1]
WHEEL = "https://example.org/course/coursekit-0.1.0-py3-none-any.whl"


@pytest.fixture()
def clean_env(monkeypatch):
    for variable in ("COURSEKIT_PACKAGE", "COURSEKIT_REPOSITORY", "COURSEKIT_BRANCH"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def course(tmp_path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.coursekit]\n{table}\n")
    return tmp_path


def test_settings_come_from_pyproject_and_the_environment_wins(tmp_path, clean_env):
    root = course(tmp_path, f'package = "{WHEEL}"\nrepository = "https://github.com/example/course"')
    config = distribution.settings(root)
    assert config == distribution.Settings(WHEEL, "https://github.com/example/course", "main")
    clean_env.setenv("COURSEKIT_PACKAGE", "coursekit==0.2.0")
    assert distribution.settings(root).package == "coursekit==0.2.0"
    clean_env.delenv("COURSEKIT_PACKAGE")
    assert distribution.settings(tmp_path / "nowhere") == distribution.Settings()


def test_this_course_names_no_package_yet(clean_env):
    """The repository's own pyproject.toml: when an instructor configures it, update this test."""
    assert distribution.settings(ROOT).package == ""


@pytest.mark.parametrize("table, match", [('pakage = "x"', "Unknown setting 'pakage'"),
                                          ("package = 3", "must be a string"),
                                          ('package = "', "not valid TOML")])
def test_bad_settings_are_named(tmp_path, clean_env, table, match):
    with pytest.raises(CourseKitError, match=match):
        distribution.settings(course(tmp_path, table))


@pytest.mark.parametrize("package, expected", [
    (WHEEL, [f"coursekit @ {WHEEL}"]),
    ("git+https://github.com/example/course@v1", ["coursekit @ git+https://github.com/example/course@v1"]),
    ("https://pypi.example.org/simple", ["--extra-index-url", "https://pypi.example.org/simple", "coursekit"]),
    ("coursekit==0.1.0", ["coursekit==0.1.0"]),
])
def test_pip_arguments_for_each_form(package, expected):
    assert distribution.pip_arguments(package) == expected


def test_a_package_source_that_is_none_of_the_forms():
    with pytest.raises(CourseKitError, match="Cannot read the package source"):
        distribution.pip_arguments("numpy")


def test_install_cell_and_stamp():
    cell = distribution.install_cell()
    assert cell.metadata["tags"] == [distribution.INSTALL_TAG] and "names no package" in cell.source
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), cell, nbformat.v4.new_code_cell("1 + 1")]
    configured = distribution.Settings(package=WHEEL)
    assert distribution.stamp(nb, configured) == 1
    assert f'%pip install --quiet "coursekit @ {WHEEL}"' in nb.cells[1].source
    assert nb.cells[2].source == "1 + 1"
    assert distribution.stamp(nb, configured) == 0, "stamping twice changes nothing"


def test_a_notebook_without_an_install_cell_gets_one_first():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), nbformat.v4.new_code_cell("import coursekit")]
    configured = distribution.Settings(package=WHEEL)
    assert distribution.ensure_install_cell(nb, configured) is True
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[1].metadata["tags"] == [distribution.INSTALL_TAG] and WHEEL in nb.cells[1].source
    assert nb.cells[2].source == "import coursekit"
    assert distribution.ensure_install_cell(nb, distribution.Settings()) is False, "one install cell, restamped"
    assert len(nb.cells) == 3 and "names no package" in nb.cells[1].source
    assert nbformat.validate(nb) is None


def test_colab_links_only_for_a_github_repository():
    config = distribution.Settings(repository="https://github.com/example/course.git", branch="2026")
    assert distribution.colab_url(config, "notebooks/01_x/01_x.ipynb") == \
        "https://colab.research.google.com/github/example/course/blob/2026/notebooks/01_x/01_x.ipynb"
    assert distribution.colab_url(distribution.Settings(), "notebooks/x.ipynb") is None
    assert distribution.colab_url(distribution.Settings(repository="https://gitlab.com/a/b"), "x.ipynb") is None


def test_every_install_cell_in_the_lectures_matches_the_setting(clean_env):
    """After a setting changes, `python -m coursekit.distribution stamp` + `make release` must have run."""
    expected = distribution.install_cell_source(distribution.settings(ROOT))
    found = 0
    for folder in ("solutions", "notebooks"):
        for path in sorted((ROOT / folder).glob("*/*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            cells = [c for c in nb.cells if distribution.INSTALL_TAG in c.metadata.get("tags", [])]
            for cell in cells:
                assert cell.source == expected, f"{path.relative_to(ROOT)}: run python -m coursekit.distribution stamp"
                first_code = next(c for c in nb.cells if c.cell_type == "code")
                assert first_code is cell, f"{path.relative_to(ROOT)}: the install cell is the first code cell"
            found += len(cells)
    lectures = len(list((ROOT / "solutions").glob("*/*.ipynb")))
    assert found == 2 * lectures, "every lecture starts with the install cell, in solutions/ and notebooks/"


# ---------------------------------------------------------------- the cell, run where coursekit is missing

def python_without_coursekit(tmp_path) -> Path:
    """A venv that sees this environment's packages (torch, IPython, pip ...) but not coursekit."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    # This environment's packages through links, without coursekit's own entries: importable, and
    # pip sees them installed, but never coursekit (so pip never touches this environment's copy).
    stack = tmp_path / "stack"
    stack.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("coursekit", "__editable__", "__editable___coursekit")) \
                and entry.suffix != ".pth":
            (stack / entry.name).symlink_to(entry)
    Path(site, "course_stack.pth").write_text(f"{stack}\n")
    return python


def run_cell(python: Path, source: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "cell.ipy"
    script.write_text(source + "\nimport coursekit\nprint('coursekit from', coursekit.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"          # never the network: everything but coursekit is there already
    return subprocess.run([str(python), "-m", "IPython", "--quick", "--no-banner", str(script)], env=env,
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)


@pytest.mark.slow
def test_the_install_cell_installs_the_wheel_where_coursekit_is_missing(tmp_path):
    python = python_without_coursekit(tmp_path)
    probe = subprocess.run([str(python), "-c", "import torch, IPython; import coursekit"], capture_output=True,
                           text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=tmp_path)
    assert "No module named 'coursekit'" in probe.stderr, probe.stderr
    unconfigured = run_cell(python, distribution.install_cell_source(distribution.Settings()), tmp_path)
    assert unconfigured.returncode != 0
    assert "names no package to install it from" in unconfigured.stdout + unconfigured.stderr
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("coursekit-*.whl")
    config = distribution.Settings(package=wheel.as_uri())
    installed = run_cell(python, distribution.install_cell_source(config), tmp_path)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert f"coursekit from {tmp_path / 'venv'}" in installed.stdout, "imported in the same session"
