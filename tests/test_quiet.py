"""Quiet commands (coursekit.quiet): kernels start encrypted, known-harmless warnings are filtered by
category, module and message, and every other warning stays visible."""
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from coursekit import quiet

ROOT = Path(__file__).resolve().parents[1]
TCP_WARNING = "running over TCP without encryption"

# Runs one cell in a fresh kernel, with or without coursekit's kernel configuration.
KERNEL_SCRIPT = """
import sys, nbformat
from nbclient import NotebookClient
from coursekit import quiet
nb = nbformat.v4.new_notebook()
nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
kwargs = {"config": quiet.kernel_config()} if sys.argv[1] == "encrypted" else {}
NotebookClient(nb, kernel_name="python3", timeout=120, **kwargs).execute()
print("cell said", nb.cells[0].outputs[0]["text"].strip())
"""


def run_kernel(mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KERNEL_SCRIPT, mode], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


@pytest.mark.slow
def test_kernels_start_encrypted_and_the_tcp_warning_is_gone():
    pytest.importorskip("zmq")
    import zmq

    if not zmq.has("curve"):
        pytest.skip("this libzmq has no CurveZMQ: kernels cannot be encrypted here")
    plain = run_kernel("plain")
    assert plain.returncode == 0, plain.stderr
    assert TCP_WARNING in plain.stderr, "the unencrypted kernel warns (else this test proves nothing)"
    encrypted = run_kernel("encrypted")
    assert encrypted.returncode == 0, encrypted.stderr
    assert "cell said 42" in encrypted.stdout, "the encrypted kernel runs code"
    assert TCP_WARNING not in encrypted.stderr + encrypted.stdout


def test_kernel_config_and_arguments_name_transport_encryption():
    import zmq

    config = quiet.kernel_config()
    expected = "auto" if zmq.has("curve") else "disabled"
    assert config.KernelManager.transport_encryption == expected
    assert quiet.KERNEL_ARGUMENTS == ("--KernelManager.transport_encryption=auto",)


def warn_from(module: str, message: str, category) -> list[str]:
    """Emit a warning attributed to ``module`` with the process's filters plus the course's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet.filter_known_warnings()
        warnings.warn_explicit(message, category, filename=f"{module.replace('.', '/')}.py", lineno=1,
                               module=module)
    return [str(w.message) for w in caught]


def test_only_the_known_harmless_warning_is_filtered():
    from sqlalchemy.exc import SAWarning

    harmless = ("Object of type <SubmittedAssignment> not in session, add operation along "
                "'Student.submissions' will not proceed")
    assert warn_from("nbgrader.api", harmless, SAWarning) == []
    # the same text from another module, another SQLAlchemy warning from nbgrader, another category: shown
    assert warn_from("coursekit.grading", harmless, SAWarning) == [harmless]
    assert warn_from("nbgrader.api", "relationship X will copy column y", SAWarning) == \
        ["relationship X will copy column y"]
    assert warn_from("nbgrader.api", harmless, UserWarning) == [harmless]


def test_pytest_filters_match_the_list():
    """pyproject.toml's filterwarnings carry every entry of quiet.HARMLESS_WARNINGS, spelled the same."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    filters = config["tool"]["pytest"]["ini_options"]["filterwarnings"]
    assert set(quiet.pytest_filters()) <= set(filters)
    assert all(entry.why for entry in quiet.HARMLESS_WARNINGS)


def test_the_cli_installs_the_filters(monkeypatch):
    from coursekit import cli

    installed = []
    monkeypatch.setattr(quiet, "filter_known_warnings", lambda: installed.append(True) or [])
    assert cli.main(["zoo", "list"]) == 0
    assert installed == [True]


@pytest.mark.slow
def test_coursekit_execute_prints_progress_not_the_kernel_warning(tmp_path):
    """The README's commands run notebooks through `coursekit execute`'s executor: its output has the
    progress line and no 'without encryption' line."""
    import nbformat

    (tmp_path / "solutions" / "01_x").mkdir(parents=True)
    (tmp_path / "nbgrader_config.py").write_text("")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nbformat.write(nb, tmp_path / "solutions" / "01_x" / "01_x.ipynb")
    proc = subprocess.run([sys.executable, "-m", "coursekit.cli", "--root", str(tmp_path), "execute"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "executed 01_x.ipynb" in output, output[-2000:]
    assert TCP_WARNING not in output
