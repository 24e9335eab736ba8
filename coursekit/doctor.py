"""``coursekit doctor``: is this machine ready for the course? Each line says OK, WARN or FAIL,
and every WARN or FAIL says what to do about it.

Checks, in order:

- **python** and **packages**: the interpreter and every dependency against the ranges that
  coursekit declares (pyproject.toml, as installed);
- **widgets**: ipywidgets, jupyterlab_widgets and widgetsnbextension installed in matching
  versions, JupyterLab's widget extension (``@jupyter-widgets/jupyterlab-manager``) present in a
  Jupyter data folder, and a widget producing its front-end view (``widget-view+json``);
- **kernel**: the ``python3`` Jupyter kernel that ``coursekit execute`` and nbgrader use;
- **weights**: the sha256 of every shipped weights file against ``weights/manifest.json``;
- **embedded data**: the hash of the arrays of the embedded 4,000/1,000 MNIST digits;
- **data mirror**: when ``COURSEKIT_DATA`` is set, that the folder exists, has torchvision's layout
  (``MNIST/raw/*-idx?-ubyte[.gz]``) and holds every file whole (a missing folder, a wrong layout and
  a partial or truncated mirror each say what to do);
- **data sources**: where MNIST (and Fashion-MNIST) would be read from: mirror, cache or embedded;
- **device**: CUDA, Apple MPS or CPU (``coursekit.runtime``), with a tiny computation on it.

Use ``coursekit doctor`` in a terminal (exit code 1 when something FAILs) or
``coursekit.doctor.run()`` in a notebook (the report renders as a table).
"""
from __future__ import annotations

import hashlib
import html
import importlib.metadata as metadata
import json
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

STATUSES = ("OK", "WARN", "FAIL")

# sha256 over the arrays (name, dtype, shape, bytes; keys sorted) of assets/mnist_embedded.npz:
# independent of the zip container. scripts/make_embedded_mnist.py rebuilds the same arrays.
EMBEDDED_MNIST_SHA256 = "4bc605185fabbdd17e8f3b768b4aea1ca70caafa77a88fa605537aa1d5e3e2d0"
EMBEDDED_MNIST_SIZES = {"train": 4000, "test": 1000}

WIDGET_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
# ipywidgets major version -> the jupyterlab_widgets and widgetsnbextension majors it works with.
WIDGET_COMPANIONS = {8: {"jupyterlab_widgets": 3, "widgetsnbextension": 4},
                     7: {"jupyterlab_widgets": 1, "widgetsnbextension": 3}}

REINSTALL = "reinstall coursekit (`make setup`, or `pip install -e .` in the course folder)"


@dataclass
class Check:
    """One line of the report: ``status`` is OK, WARN or FAIL; ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")


class Report(list):
    """The list of checks; prints as a text report and renders as an HTML table in Jupyter."""

    def count(self, status: str) -> int:  # type: ignore[override]
        return sum(1 for c in self if c.status == status)

    @property
    def ok(self) -> bool:
        """No FAIL (warnings are allowed)."""
        return self.count("FAIL") == 0

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        verdict = ("ready for the course" if self.ok
                   else "NOT ready: fix the FAIL lines above")
        return (f"{self.count('OK')} OK, {self.count('WARN')} WARN, {self.count('FAIL')} FAIL: "
                f"{verdict}")

    def __str__(self) -> str:
        lines = ["coursekit doctor"]
        width = max((len(c.name) for c in self), default=8)
        for c in self:
            lines.append(f"  {c.status:<4}  {c.name:<{width}}  {c.detail}")
            if c.fix:
                lines.append(f"  {'':<4}  {'':<{width}}  -> {c.fix}")
        lines.append(self.summary())
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {"OK": "#1a7f37", "WARN": "#9a6700", "FAIL": "#cf222e"}
        rows = []
        for c in self:
            fix = f"<br><em>→ {html.escape(c.fix)}</em>" if c.fix else ""
            rows.append(f"<tr><td style='color:{colour[c.status]};font-weight:bold'>{c.status}</td>"
                        f"<td>{html.escape(c.name)}</td>"
                        f"<td style='text-align:left'>{html.escape(c.detail)}{fix}</td></tr>")
        return ("<table><tr><th>status</th><th>check</th><th style='text-align:left'>detail</th></tr>"
                + "".join(rows) + f"</table><p><strong>{html.escape(self.summary())}</strong></p>")

    def to_json(self) -> str:
        return json.dumps({"ok": self.ok, "checks": [asdict(c) for c in self]}, indent=2)


# ---------------------------------------------------------------- python and packages

def _requirements() -> tuple[str | None, list]:
    """(Requires-Python, [Requirement]) of the installed coursekit, extras excluded."""
    from packaging.requirements import Requirement

    meta = metadata.metadata("coursekit")
    reqs = []
    for text in metadata.requires("coursekit") or []:
        req = Requirement(text)
        if req.marker is not None and "extra" in str(req.marker):
            continue
        reqs.append(req)
    return meta.get("Requires-Python"), reqs


def check_python() -> list[Check]:
    from packaging.specifiers import SpecifierSet

    version = platform.python_version()
    try:
        needed, _ = _requirements()
    except metadata.PackageNotFoundError:
        return [Check("python", "WARN", f"Python {version}; coursekit is not installed, so its "
                      "version ranges are unknown", f"install it: {REINSTALL}")]
    if needed and not SpecifierSet(needed).contains(version):
        return [Check("python", "FAIL", f"Python {version} at {sys.executable}, coursekit needs {needed}",
                      f"use a Python {needed} (e.g. `make setup PYTHON=python3.11`)")]
    return [Check("python", "OK", f"Python {version} (coursekit needs {needed or 'any'})")]


def check_packages() -> list[Check]:
    try:
        _, reqs = _requirements()
    except metadata.PackageNotFoundError:
        return [Check("packages", "FAIL", "coursekit is not installed in this Python", REINSTALL)]
    problems, found = [], []
    for req in reqs:
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(Check(f"package {req.name}", "FAIL", f"not installed (needs {req.specifier})",
                                  f"pip install '{req.name}{req.specifier}'"))
            continue
        if req.specifier and not req.specifier.contains(version, prereleases=True):
            problems.append(Check(f"package {req.name}", "FAIL",
                                  f"{version} installed, coursekit needs {req.specifier}",
                                  f"pip install '{req.name}{req.specifier}'"))
        else:
            found.append(f"{req.name} {version}")
    checks = [Check("packages", "OK" if not problems else "WARN",
                    f"{len(found)}/{len(reqs)} in range: " + ", ".join(found))]
    if problems:
        checks[0].fix = "see the package lines below"
    return checks + problems


# ---------------------------------------------------------------- widgets and kernel

def _major(version: str) -> int:
    return int(version.split(".")[0])


def find_widget_extension() -> Path | None:
    """The folder of JupyterLab's widget manager extension in a Jupyter data path, or None."""
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        candidate = Path(base) / WIDGET_EXTENSION
        if (candidate / "package.json").is_file():
            return candidate
    return None


def check_widgets() -> list[Check]:
    fix_install = "pip install 'ipywidgets>=8' (it brings jupyterlab_widgets), then restart JupyterLab"
    versions = {}
    for name in ("ipywidgets", "jupyterlab_widgets", "widgetsnbextension"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            return [Check("widgets", "FAIL", f"{name} is not installed: sliders will not show", fix_install)]
    checks = []
    companions = WIDGET_COMPANIONS.get(_major(versions["ipywidgets"]), {})
    mismatched = [f"{name} {versions[name]} (ipywidgets {versions['ipywidgets']} needs {major}.x)"
                  for name, major in companions.items() if _major(versions[name]) != major]
    if mismatched:
        checks.append(Check("widgets", "FAIL", "mismatched widget packages: " + "; ".join(mismatched),
                            "pip install --upgrade ipywidgets jupyterlab_widgets widgetsnbextension"))
    else:
        checks.append(Check("widgets", "OK", ", ".join(f"{k} {v}" for k, v in versions.items())))
    extension = find_widget_extension()
    if extension is None:
        checks.append(Check("widget extension", "FAIL",
                            f"JupyterLab's {WIDGET_EXTENSION} extension is in no Jupyter data folder: "
                            "widgets would show as plain text", fix_install))
    else:
        ext_version = json.loads((extension / "package.json").read_text()).get("version", "?")
        checks.append(Check("widget extension", "OK", f"{WIDGET_EXTENSION} {ext_version} in {extension.parent.parent}"))
    try:
        import ipywidgets

        bundle = ipywidgets.IntSlider(value=1)._repr_mimebundle_() or {}
        if "application/vnd.jupyter.widget-view+json" not in bundle:
            raise RuntimeError(f"no widget view in {sorted(bundle)}")
        checks.append(Check("widget render", "OK", "a slider produces its front-end view "
                            "(the browser test, tests/test_browser.py, checks the drawing itself)"))
    except Exception as exc:  # a broken install shows up here
        checks.append(Check("widget render", "FAIL", f"creating a slider failed: {exc}", fix_install))
    return checks


def check_kernel() -> list[Check]:
    fix = f"{sys.executable} -m ipykernel install --sys-prefix --name python3"
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
    except Exception as exc:
        return [Check("kernel", "FAIL", f"cannot list Jupyter kernels: {exc}", fix)]
    if "python3" not in specs:
        return [Check("kernel", "FAIL", "no 'python3' Jupyter kernel: notebooks cannot run headless", fix)]
    return [Check("kernel", "OK", f"python3 kernel at {specs['python3']}")]


# ---------------------------------------------------------------- weights and data

def check_weights(weights_dir: Path | None = None) -> list[Check]:
    """Every weights file in the manifest exists and matches its sha256."""
    from coursekit import zoo

    folder = Path(weights_dir) if weights_dir is not None else zoo.weights_dir()
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        return [Check("weights", "FAIL", f"no manifest.json in {folder}", REINSTALL)]
    try:
        shipped = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        return [Check("weights", "FAIL", f"{manifest_path} is not valid JSON ({exc})", REINSTALL)]
    good, checks = [], []
    for name, record in sorted(shipped.items()):
        path = folder / f"{name}.pt"
        rebuild = f"{REINSTALL}, or rebuild: `coursekit zoo build {name}`"
        if not path.is_file():
            checks.append(Check(f"weights {name}", "FAIL", f"{path.name} is missing", rebuild))
        elif zoo.sha256_of(path) != record.get("sha256"):
            checks.append(Check(f"weights {name}", "FAIL",
                                f"{path.name} does not match its sha256 in the manifest (corrupt or edited)",
                                rebuild))
        else:
            good.append(name)
    unlisted = sorted(p.stem for p in folder.glob("*.pt") if p.stem not in shipped)
    for name in unlisted:
        checks.append(Check(f"weights {name}", "WARN", f"{name}.pt is not in the manifest (unverified)",
                            f"`coursekit zoo build {name}` records it, or delete the file"))
    summary = Check("weights", "OK" if good and not checks else ("WARN" if good else "FAIL"),
                    f"{len(good)}/{len(shipped)} shipped models verified (sha256): {', '.join(good) or 'none'}")
    return [summary] + checks


def arrays_sha256(path: Path) -> str:
    """sha256 over the arrays of an .npz file (name, dtype, shape and bytes; keys sorted)."""
    import numpy as np

    digest = hashlib.sha256()
    with np.load(path) as npz:
        for key in sorted(npz.files):
            array = np.ascontiguousarray(npz[key])
            digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def check_embedded_data(path: Path | None = None) -> list[Check]:
    from coursekit import data

    path = Path(path) if path is not None else data._embedded_path("mnist")
    if path is None or not Path(path).is_file():
        return [Check("embedded MNIST", "FAIL", "coursekit/assets/mnist_embedded.npz is missing: "
                      "without a mirror no notebook can load digits", REINSTALL)]
    try:
        digest = arrays_sha256(path)
    except Exception as exc:
        return [Check("embedded MNIST", "FAIL", f"{path.name} cannot be read ({exc})", REINSTALL)]
    if digest != EMBEDDED_MNIST_SHA256:
        return [Check("embedded MNIST", "FAIL", f"{path.name} does not match its hash (corrupt or edited)",
                      f"{REINSTALL}, or rebuild: `python scripts/make_embedded_mnist.py`")]
    sizes = "/".join(f"{n:,}" for n in EMBEDDED_MNIST_SIZES.values())
    return [Check("embedded MNIST", "OK", f"{sizes} train/test digits, hash verified")]


MIRROR_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
# torchvision's file stems per split, and the number of examples each split must hold.
MIRROR_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MIRROR_SIZES = {"train": 60_000, "test": 10_000}


def _mirror_setting() -> Path | None:
    import os

    value = os.environ.get("COURSEKIT_DATA", "").strip()
    return Path(value).expanduser() if value else None


def _find_layout(folder: Path, depth: int = 3) -> Path | None:
    """The folder under (or at) ``folder`` whose ``MNIST/raw`` would hold MNIST, found by its files."""
    stem = MIRROR_FILES["test"][0]
    for pattern in [f"{stem}*"] + [f"{'*/' * d}{stem}*" for d in range(1, depth + 1)]:
        for hit in sorted(folder.glob(pattern)):
            raw = hit.parent
            if raw.name == "raw" and raw.parent.name == "MNIST":
                return raw.parent.parent
            return raw  # found, but not in torchvision's layout: the caller explains
    return None


def _check_split_files(raw: Path, split: str) -> tuple[list[str], list[str]]:
    """(missing file names, problems) of one split in a ``raw`` folder; reads each file whole."""
    from coursekit import data
    from coursekit.checks import CourseKitError

    missing, problems = [], []
    for stem in MIRROR_FILES[split]:
        path = next((p for p in (raw / stem, raw / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            missing.append(f"{stem}.gz")
            continue
        try:
            array = data._read_idx(path)
        except (CourseKitError, OSError, EOFError) as exc:  # gzip raises EOFError on a cut file
            problems.append(f"{path.name}: {exc}")
            continue
        if len(array) != MIRROR_SIZES[split]:
            problems.append(f"{path.name} holds {len(array):,} examples, the {split} split has "
                            f"{MIRROR_SIZES[split]:,}")
    return missing, problems


def check_data_mirror() -> list[Check]:
    """``COURSEKIT_DATA`` when it is set: the folder, its layout, every file present and whole."""
    folder = _mirror_setting()
    if folder is None:
        return []
    name = "COURSEKIT_DATA"
    fallback = "until then the notebooks read the embedded 5,000 digits (or the cache)"
    if not folder.exists():
        return [Check(name, "WARN", f"COURSEKIT_DATA={folder} does not exist",
                      f"point COURSEKIT_DATA at the folder that holds MNIST/raw/, or unset it to use the "
                      f"embedded digits; {fallback}")]
    if not folder.is_dir():
        return [Check(name, "WARN", f"COURSEKIT_DATA={folder} is a file, not a folder",
                      f"point COURSEKIT_DATA at the folder that holds MNIST/raw/; {fallback}")]
    raw = folder / MIRROR_FOLDERS["mnist"] / "raw"
    if not raw.is_dir():
        found = _find_layout(folder)
        if found is not None and (found / "MNIST" / "raw").is_dir():
            hint = f"set COURSEKIT_DATA={found} (the folder that contains MNIST/raw/)"
        elif found is not None:
            hint = (f"the MNIST files are in {found}: move them to <folder>/MNIST/raw/ (torchvision's layout) "
                    "and set COURSEKIT_DATA=<folder>")
        else:
            hint = ("put torchvision's four MNIST files (train-images-idx3-ubyte.gz, ...) in "
                    f"{raw}/, or unset COURSEKIT_DATA")
        return [Check(name, "WARN", f"COURSEKIT_DATA={folder} has no MNIST/raw/ folder (wrong layout)",
                      f"{hint}; {fallback}")]
    checks = []
    for dataset, optional in (("mnist", False), ("fashion_mnist", True)):
        raw = folder / MIRROR_FOLDERS[dataset] / "raw"
        if optional and not raw.is_dir():
            continue
        missing, problems = [], []
        for split in MIRROR_FILES:
            m, p = _check_split_files(raw, split)
            missing += m
            problems += p
        label = f"{name} {MIRROR_FOLDERS[dataset]}"
        if missing or problems:
            detail = "partial mirror: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + problems)
            checks.append(Check(label, "WARN", f"{detail} (in {raw})",
                                "copy the missing or damaged files again from the official mirror (torchvision "
                                "file names; md5 in the README); the splits that are whole are used, "
                                f"the others come from the cache or the embedded digits"))
        else:
            checks.append(Check(label, "OK", f"complete: 60,000 train and 10,000 test examples in {raw}"))
    return checks


def check_data_sources() -> list[Check]:
    """Where each split would be read from (never downloads)."""
    from coursekit import data

    checks = []
    mirror_set = _mirror_setting() is not None
    for split in ("train", "test"):
        try:
            source = data.find_source("mnist", split, download=False)
        except data.DataUnavailableError as exc:
            checks.append(Check(f"MNIST {split}", "FAIL", str(exc), REINSTALL))
            continue
        if source.kind == "embedded":
            advice = ("COURSEKIT_DATA is set but not usable for this split: see the COURSEKIT_DATA line"
                      if mirror_set else
                      "optional, for the full 60,000/10,000: set COURSEKIT_DATA to a folder with "
                      "MNIST/raw/*.gz, or run once online without COURSEKIT_OFFLINE")
            checks.append(Check(f"MNIST {split}", "OK",
                                f"embedded subset ({EMBEDDED_MNIST_SIZES[split]:,} digits): every notebook runs",
                                advice))
        else:
            checks.append(Check(f"MNIST {split}", "OK", f"full data set from the {source}"))
    try:
        source = data.find_source("fashion_mnist", "train", download=False)
        checks.append(Check("Fashion-MNIST", "OK", f"from the {source}"))
    except data.DataUnavailableError:
        checks.append(Check("Fashion-MNIST", "OK", "not found (optional: no lecture needs it)",
                            "to use it, put FashionMNIST/raw/*.gz under COURSEKIT_DATA"))
    return checks


# ---------------------------------------------------------------- device

def check_device() -> list[Check]:
    import torch

    from coursekit import runtime
    from coursekit.checks import CourseKitError

    try:
        chosen = runtime.device()
    except CourseKitError as exc:
        return [Check("device", "FAIL", str(exc), "unset COURSEKIT_DEVICE (or set it to cpu)")]
    try:
        value = float((torch.arange(4.0, device=chosen) * 2).sum().cpu())
        if value != 12.0:
            raise RuntimeError(f"2 * (0+1+2+3) gave {value}")
    except Exception as exc:
        return [Check("device", "FAIL", f"a computation on {chosen} failed: {exc}",
                      "set COURSEKIT_DEVICE=cpu, or update the GPU driver / PyTorch build")]
    line = runtime.describe()
    others = [d for d in runtime.available_devices() if d != chosen.type]
    if others:
        line += f" (also available: {', '.join(others)})"
    fix = ""
    if chosen.type == "cpu" and not runtime.full_size():
        fix = "fine on a laptop; on a GPU machine the full-size budgets switch on by themselves"
    return [Check("device", "OK", line, fix)]


CHECKS: tuple[Callable[[], list[Check]], ...] = (
    check_python, check_packages, check_widgets, check_kernel,
    check_weights, check_embedded_data, check_data_mirror, check_data_sources, check_device,
)


def run(checks: Iterable[Callable[[], list[Check]]] = CHECKS) -> Report:
    """Run the checks; a check that crashes becomes a FAIL line (the others still run)."""
    report = Report()
    for check in checks:
        try:
            report.extend(check())
        except Exception as exc:  # the doctor must never die on the problem it diagnoses
            name = check.__name__.removeprefix("check_")
            report.append(Check(name, "FAIL", f"the check itself crashed: {type(exc).__name__}: {exc}",
                                REINSTALL))
    return report


def main(as_json: bool = False) -> int:
    """Print the report; return 1 when something FAILs."""
    report = run()
    print(report.to_json() if as_json else report)
    return report.exit_code
