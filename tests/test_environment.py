"""pyproject.toml and environment.yml install the same things."""
import json
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pip_section(text: str) -> list[str]:
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r"^\s*- pip:\s*$", line):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s*-\s+(.+?)\s*$", line)
            if m:
                lines.append(m.group(1))
            elif line.strip() and not line.strip().startswith("#"):
                break
    return lines


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    listed = set(_pip_section((ROOT / "environment.yml").read_text())) - {"-e ."}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in environment.yml: {listed - wanted}"
    assert "-e ." in _pip_section((ROOT / "environment.yml").read_text())


def test_torch_range_admits_the_release_on_this_machines_disk():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_spec = next(d for d in deps if d.startswith("torch>") or d.startswith("torch<"))
    assert "<=2.14.1" in torch_spec and ">=" in torch_spec  # a range, capped at the tested release
    assert any(d.startswith("torchvision") and "<=0.29.1" in d for d in deps)


@pytest.mark.slow
def test_the_wheel_carries_every_shipped_model_the_digits_and_the_exercise_registry(tmp_path):
    """`make wheel` (what a student uploads to Colab): the package must work without the checkout."""
    import subprocess
    import sys
    import zipfile

    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("coursekit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((ROOT / "coursekit" / "weights" / "manifest.json").read_text())
    for model in manifest:
        if isinstance(manifest[model], dict) and manifest[model].get("sha256"):
            assert f"coursekit/weights/{model}.pt" in names, model
    assert {"coursekit/weights/manifest.json", "coursekit/assets/mnist_embedded.npz",
            "coursekit/exercises/judge/lecture04.py", "coursekit/exercises/judge/lecture05.py",
            "coursekit/exercises/runner.py", "coursekit/course_config.py"} <= names
    assert not any(n.startswith(("tests/", "solutions/", "notebooks/")) for n in names)
