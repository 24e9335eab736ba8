"""JupyterLab for learners and for instructors: ``make lab`` / ``make lab-instructor``.

nbgrader installs its instructor tools into JupyterLab for everyone who has the package: the
"Create Assignment" sidebar, the Validate button, the Nbgrader menu, the formgrader. A learner
needs none of them. ``python -m coursekit.lab`` starts JupyterLab on ``notebooks/`` with those tools
switched off *for that session only*: it writes a small Jupyter configuration folder
(``build/lab-config/learner`` by default) and puts it first on ``JUPYTER_CONFIG_PATH`` for the
server it starts, so nothing global changes (no ``jupyter labextension disable``, no edit of the
user's or the environment's configuration):

- ``labconfig/page_config.json``: ``disabledExtensions`` lists nbgrader's JupyterLab extension;
- ``jupyter_server_config.json``: nbgrader's server extensions off, and transport encryption for
  the kernels (:mod:`coursekit.quiet`).

``python -m coursekit.lab --instructor`` starts the same JupyterLab with nbgrader's tools, on the
course folder (the formgrader needs it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# nbgrader's JupyterLab extension (all its plugins: create-assignment, validate-assignment, menu,
# formgrader, course-list, assignment-list) and its server extensions.
INSTRUCTOR_LAB_EXTENSIONS = ("@jupyter/nbgrader",)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
)


def write_config(folder: Path, *, learner: bool = True) -> Path:
    """Write a session's Jupyter configuration folder; return it.

    Learner: nbgrader's lab and server extensions disabled. Both: kernels start encrypted.
    """
    from coursekit import quiet

    folder = Path(folder)
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    disabled = {name: True for name in INSTRUCTOR_LAB_EXTENSIONS} if learner else {}
    (folder / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled}, indent=2) + "\n")
    server = {"KernelManager": {"transport_encryption": quiet.kernel_config().KernelManager.transport_encryption}}
    if learner:
        server["ServerApp"] = {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n")
    return folder


def session_env(config_folder: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``config_folder`` first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if base is None else base)
    rest = env.get("JUPYTER_CONFIG_PATH")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([str(Path(config_folder).resolve())] + ([rest] if rest else []))
    return env


def command(root: Path | str, extra: list[str] | None = None) -> list[str]:
    """The JupyterLab command line on ``root`` (as root, Jupyter needs ``--allow-root``)."""
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={Path(root).resolve()}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv + list(extra or [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", help="folder to open (default: notebooks/, or . for --instructor)")
    parser.add_argument("--instructor", action="store_true", help="keep nbgrader's instructor tools")
    parser.add_argument("--config-dir", help="where to write the session's configuration "
                                             "(default: build/lab-config/learner or .../instructor)")
    args, extra = parser.parse_known_args(argv)
    learner = not args.instructor
    folder = Path(args.folder or ("notebooks" if learner else "."))
    config = Path(args.config_dir or Path("build") / "lab-config" / ("learner" if learner else "instructor"))
    write_config(config, learner=learner)
    who = "learner (nbgrader's instructor tools off)" if learner else "instructor (with nbgrader's tools)"
    print(f"JupyterLab for the {who} on {folder}/; session configuration in {config}/", flush=True)
    argv_lab = command(folder, extra)
    os.execve(argv_lab[0], argv_lab, session_env(config))
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
