"""Shared fixtures and the suite's scheduling.

- ``make test`` / ``make test-fast`` run ``pytest -n 2 --dist loadgroup``: every test that uses a
  module-scoped fixture of its own module (a graded corpus, a built site, a running JupyterLab,
  a trained detector) is put in one xdist group, so that fixture is computed once, not once per
  worker; the ``slow`` tests (notebooks executed, submissions autograded) are collected first, so
  the long ones start early and the short ones fill the gaps at the end.
- Under xdist each worker's torch gets ``cores // workers`` threads (and its kernels, through
  ``OMP_NUM_THREADS``): two workers with two threads each on two cores only contend.
"""
import os
from pathlib import Path

import pytest

# Tests never download anything: data comes from the mirror, the cache or the package.
os.environ.setdefault("COURSEKIT_OFFLINE", "1")
# Notebooks executed by the tests take their fast (grading-size) path.
os.environ.setdefault("COURSEKIT_FAST", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the project (local mirror, MobileNet weights); skip when absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data is not beside the project (only the CI/dev machines have it)")
    return SHARED


@pytest.fixture(scope="session")
def mnist_mirror(shared_dir) -> Path:
    mirror = shared_dir / "data"
    if not (mirror / "MNIST" / "raw").is_dir():
        pytest.skip("no MNIST mirror in ../shared/data")
    return mirror


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small models and batches gain nothing from a second thread, and a busy 2-core machine loses a lot.
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def shuffled_test_digits():
    """``take(n)``: the first ``n`` MNIST test digits in a seeded random order (the embedded test split
    is sorted by class, so a plain prefix would be all zeros)."""
    import torch

    from coursekit import data

    def take(n: int):
        x, y = data.load_mnist("test")
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:n]
        return x[idx], y[idx]
    return take


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """No mirror, an empty cache and no downloads: only the embedded data remains."""
    monkeypatch.delenv("COURSEKIT_DATA", raising=False)
    monkeypatch.setenv("COURSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COURSEKIT_OFFLINE", "1")
    return tmp_path


def _threads_per_worker() -> int | None:
    """Torch threads for this xdist worker (None outside xdist): the cores shared out, at least 1."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return None
    return max(1, (os.cpu_count() or 1) // int(workers))


def pytest_configure(config):
    import time

    config._coursekit_started = time.time()
    threads = _threads_per_worker()
    if threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))       # the kernels this worker starts
        import torch

        torch.set_num_threads(threads)


def _uses_own_module_fixture(item) -> bool:
    """Does the test use a module-scoped fixture defined in its own module (not conftest)?"""
    info = getattr(item, "_fixtureinfo", None)
    module = getattr(item, "module", None)
    if info is None or module is None:
        return False
    for defs in info.name2fixturedefs.values():
        fixture = defs[-1]
        if fixture.scope == "module" and getattr(fixture.func, "__module__", None) == module.__name__:
            return True
    return False


def pytest_collection_modifyitems(config, items):
    """Group tests that share an expensive module fixture; put the slow tests first (see the docstring)."""
    for item in items:
        if _uses_own_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)     # stable: slow first


def pytest_terminal_summary(terminalreporter, config):
    """The notebook budget report: tests/test_pipeline.py times each lecture's fast (grading) path and
    this prints it against benchmarks/bench_notebooks.py's BUDGETS (a report, never a failure)."""
    import json
    import sys

    records = ROOT / "build" / "notebook_budgets"
    started = getattr(config, "_coursekit_started", 0.0)
    rows = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))
            if p.stat().st_mtime >= started] if records.is_dir() else []     # this run's only
    if not rows:
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_notebooks

    over = [r["assignment"] for r in rows if r["verdict"] != "ok"]
    terminalreporter.section("notebook budgets (fast path; a report, not a test)")
    terminalreporter.write_line(bench_notebooks.table(rows, markdown=False))
    terminalreporter.write_line("over budget: " + ", ".join(over) if over else "every notebook within its budget")
