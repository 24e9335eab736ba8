"""`make lab` (coursekit.lab): a learner's JupyterLab has no nbgrader instructor tools, for that session
only; `make lab-instructor` keeps them. Checked on a real JupyterLab server."""
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from coursekit import lab

ROOT = Path(__file__).resolve().parents[1]


def test_learner_config_disables_nbgrader_and_encrypts_kernels(tmp_path):
    folder = lab.write_config(tmp_path / "learner")
    page = json.loads((folder / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"] == {"@jupyter/nbgrader": True}
    server = json.loads((folder / "jupyter_server_config.json").read_text())
    assert server["ServerApp"]["jpserver_extensions"] == {name: False for name in lab.INSTRUCTOR_SERVER_EXTENSIONS}
    assert server["KernelManager"]["transport_encryption"] in ("auto", "disabled")
    instructor = json.loads((lab.write_config(tmp_path / "instructor", learner=False)
                             / "jupyter_server_config.json").read_text())
    assert "ServerApp" not in instructor


def test_session_env_puts_the_folder_first_and_keeps_the_rest(tmp_path):
    env = lab.session_env(tmp_path, {"JUPYTER_CONFIG_PATH": "/etc/other", "HOME": "/home/x"})
    assert env["JUPYTER_CONFIG_PATH"] == os.pathsep.join([str(tmp_path.resolve()), "/etc/other"])
    assert env["HOME"] == "/home/x"
    assert lab.session_env(tmp_path, {})["JUPYTER_CONFIG_PATH"] == str(tmp_path.resolve())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def start_lab(tmp_path, learner: bool):
    config = lab.write_config(tmp_path / ("learner" if learner else "instructor"), learner=learner)
    port = _free_port()
    argv = lab.command(ROOT / "notebooks", ["--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                                            "--IdentityProvider.token=", "--ServerApp.password="])
    env = lab.session_env(config)
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-3000:]
        try:
            if _status(f"{base}/api/status")[0] == 200:
                return proc, base
        except OSError:
            pass
        assert time.time() < deadline, "JupyterLab did not answer in 120 s"
        time.sleep(0.5)


def stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def page_config(html: str) -> dict:
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "JupyterLab's page has no configuration block"
    return json.loads(match.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("learner", [True, False], ids=["learner", "instructor"])
def test_a_real_jupyterlab_shows_nbgrader_only_to_instructors(tmp_path, learner):
    proc, base = start_lab(tmp_path, learner)
    try:
        status, html = _status(f"{base}/lab")
        assert status == 200
        disabled = page_config(html)["disabledExtensions"]
        assert ("@jupyter/nbgrader" in disabled) is learner
        formgrader, _ = _status(f"{base}/formgrader")
        assert (formgrader == 404) is learner, f"/formgrader answered {formgrader}"
    finally:
        stop(proc)
