"""Every lecture in every mode: execution times against the declared budgets, failures, and claims.

Every lecture runs on one code path (``coursekit.runtime.budget``) in two budget modes, the **fast**
path that autograding (``NBGRADER_EXECUTION``), CI and the tests take and the **default** path a
learner gets in a live session on a laptop (``full`` is accepted for ``default``), and with two data
sources: the **embedded** digits a newcomer has (``COURSEKIT_DATA`` unset, ``COURSEKIT_OFFLINE=1``,
an empty cache) and the full MNIST **mirror** (``COURSEKIT_DATA``, default ``../shared/data``).
Each notebook declares a wall-time budget per mode in ``BUDGETS`` below (fast well under a minute,
default a few minutes, on 2 CPU cores). This script executes the solution notebooks headless with
the course's executor (:mod:`coursekit.execute`), times them (wall time, and the kernel's CPU time,
which a busy machine inflates far less), names the slowest cell, and lists every
``coursekit.claims.claim`` each run made (``COURSEKIT_CLAIMS_LOG``): a claim whose condition failed
stops its notebook, so a run that passes proves its statements in that mode. The exit status is 1
when a notebook fails, or (without ``--report-budgets``) is over budget.

    .venv/bin/python benchmarks/bench_notebooks.py                     # every lecture, fast, embedded digits
    .venv/bin/python benchmarks/bench_notebooks.py --mode default 01_adversarial_examples
    .venv/bin/python benchmarks/bench_notebooks.py --mode both --data both --report-budgets \
        --out build/notebooks_all_modes.md                             # CI: make notebooks-all-modes
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run as a script from a checkout: this checkout's coursekit

from coursekit.execute import last_line, run_notebook, slowest_cell  # noqa: E402

MODES = ("fast", "default")
DATA = ("embedded", "mirror")
# assignment -> (fast budget s, default budget s). Unlisted notebooks get DEFAULT_BUDGET.
DEFAULT_BUDGET = (60.0, 300.0)
BUDGETS: dict[str, tuple[float, float]] = {
    "00_start_here": (30.0, 60.0),
    "01_adversarial_examples": (60.0, 240.0),
    "02_linear_explanation": (45.0, 180.0),
    "03_defenses_transferability": (60.0, 300.0),
    "04_gan_game": (45.0, 240.0),
    "05_gan_training_tips": (45.0, 300.0),
    "06_gan_applications": (60.0, 300.0),
    "07_evaluating_gans": (60.0, 240.0),
}


def budget_for(assignment: str, mode: str) -> float:
    fast, default = BUDGETS.get(assignment, DEFAULT_BUDGET)
    return fast if mode == "fast" else default


def mirror_folder() -> Path | None:
    """The full-MNIST mirror: ``COURSEKIT_DATA``, else ``../shared/data`` beside the project; None if neither has MNIST."""
    for folder in (os.environ.get("COURSEKIT_DATA"), ROOT.parent / "shared" / "data"):
        if folder and (Path(folder) / "MNIST" / "raw").is_dir():
            return Path(folder).resolve()
    return None


def data_env(data: str, scratch: Path) -> dict[str, str | None]:
    """The kernel's data settings: ``embedded`` (no mirror, no cache, offline) or ``mirror``."""
    if data == "embedded":
        return {"COURSEKIT_DATA": None, "COURSEKIT_OFFLINE": "1", "COURSEKIT_CACHE": str(scratch / "empty-cache")}
    mirror = mirror_folder()
    if mirror is None:
        raise SystemExit("--data mirror: no MNIST mirror (set COURSEKIT_DATA to a folder with MNIST/raw/).")
    return {"COURSEKIT_DATA": str(mirror), "COURSEKIT_OFFLINE": "1"}


def read_claims(folder: Path) -> list[dict]:
    log = folder / "claims.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def run(path: Path, mode: str, timeout: int, data: str = "embedded", *, scratch: Path | None = None,
        threads: int | None = None) -> dict:
    """Execute one notebook in ``mode`` (fast or default) with ``data``; its report row, with its claims.

    ``threads``: the kernel's torch/OpenMP threads (``OMP_NUM_THREADS``; None: the kernel's default).
    """
    scratch = Path(scratch or tempfile.mkdtemp(prefix="bench_notebooks_"))
    claims_dir = scratch / "claims" / f"{path.parent.name}-{mode}-{data}"
    env = {**data_env(data, scratch), "COURSEKIT_CLAIMS_LOG": str(claims_dir),
           "COURSEKIT_NOTEBOOK": path.parent.name}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    result = run_notebook(path, fast=(mode == "fast"), timeout=timeout, env=env)
    cell, cell_s = slowest_cell(result.notebook)
    return row(path.parent.name, mode, result.seconds, result.cpu_seconds, cell, cell_s,
               last_line(result.error) if result.error else None, data=data,
               claims=read_claims(claims_dir))


def row(assignment: str, mode: str, seconds: float, cpu: float, cell: str, cell_s: float,
        error: str | None, *, data: str | None = None, claims: list[dict] | None = None) -> dict:
    """One line of the report: the times against the declared budget, and the verdict.

    ``data`` defaults to this process's source: ``mirror`` when ``COURSEKIT_DATA`` is set.
    """
    limit = budget_for(assignment, mode)
    data = data or ("mirror" if os.environ.get("COURSEKIT_DATA") else "embedded")
    verdict = "FAILED" if error else ("ok" if seconds <= limit else "OVER BUDGET")
    return {"assignment": assignment, "mode": mode, "data": data, "seconds": seconds, "cpu": cpu,
            "budget": limit, "ratio": seconds / limit, "slowest_cell": cell, "slowest_cell_s": cell_s,
            "verdict": verdict, "error": error, "claims": claims or []}


def table(rows: list[dict], markdown: bool) -> str:
    head = ["notebook", "mode", "data", "wall (s)", "kernel CPU (s)", "budget (s)", "time/budget",
            "slowest cell", "claims", "verdict"]
    body = [[r["assignment"], r["mode"], r.get("data", "embedded"), f"{r['seconds']:.1f}", f"{r['cpu']:.1f}",
             f"{r['budget']:.0f}", f"{r['ratio']:.2f}", f"{r['slowest_cell']} ({r['slowest_cell_s']:.1f} s)",
             str(len(r.get("claims", []))), r["verdict"] + (f" ({r['error']})" if r["error"] else "")]
            for r in rows]
    if markdown:
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [30, 7, 8, 9, 14, 10, 11, 28, 6, 0]
    left = {0, 1, 2, 7, 9}          # text columns; numbers align right
    return "\n".join(" ".join(f"{c:<{w}}" if i in left else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
                     for cells in [head, *body])


def claims_report(rows: list[dict]) -> str:
    """Markdown: per lecture and mode, every claim its run made (a passing run proved each of them)."""
    lines = ["## Claims made, per lecture and mode", ""]
    for r in rows:
        lines.append(f"### {r['assignment']} ({r['mode']} budgets, {r.get('data', 'embedded')} digits): "
                     f"{len(r['claims'])} claim(s){', FAILED: ' + r['error'] if r['error'] else ''}")
        lines += [f"- {'holds' if c['holds'] else 'CONTRADICTED'}: {' '.join(c['statement'].split())}"
                  for c in r["claims"]] or ["- (none)"]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every solutions/<assignment>/")
    parser.add_argument("--mode", choices=("fast", "default", "full", "both"), default="fast",
                        help="budget mode (full = default, a learner's laptop); both: fast and default")
    parser.add_argument("--data", choices=("embedded", "mirror", "both"), default="embedded",
                        help="embedded digits only (a newcomer), the full MNIST mirror, or both")
    parser.add_argument("--timeout", type=int, default=900, help="per cell, seconds")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--report-budgets", action="store_true",
                        help="exit 1 only when a notebook fails; over budget is reported, not an error (CI)")
    parser.add_argument("--out", type=Path, help="also write the table and the claims (markdown) to this file")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks run side by side, the cores shared out between their kernels (CI: the "
                             "wall time of the whole run drops; each row's time is then not a solo timing)")
    args = parser.parse_args(argv)
    names = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir()
                                       if p.is_dir() and any(p.glob("*.ipynb")))
    modes = list(MODES) if args.mode == "both" else ["default" if args.mode == "full" else args.mode]
    sources = list(DATA) if args.data == "both" else [args.data]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f} at start; "
          f"data: {', '.join(sources)}; mirror: {mirror_folder() or 'none'}")
    runs = [(name, data, mode) for name in names for data in sources for mode in modes]
    for name in names:
        if not (ROOT / "solutions" / name / f"{name}.ipynb").is_file():
            print(f"no notebook {ROOT / 'solutions' / name / f'{name}.ipynb'}", file=sys.stderr)
            return 2
    jobs = max(1, args.jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with tempfile.TemporaryDirectory(prefix="bench_notebooks_") as scratch:
        def one(job):
            name, data, mode = job
            r = run(ROOT / "solutions" / name / f"{name}.ipynb", mode, args.timeout, data,
                    scratch=Path(scratch), threads=threads)
            if jobs > 1:        # getrusage(RUSAGE_CHILDREN) mixes the kernels that run side by side
                r["cpu"] = float("nan")
            print(f"  {name} {mode} {data}: {r['seconds']:.1f} s, {len(r['claims'])} claims "
                  f"({r['verdict']}{': ' + r['error'] if r['error'] else ''})", file=sys.stderr, flush=True)
            return r
        # Slowest first (default budgets before fast ones), so the side-by-side runs end together.
        order = sorted(runs, key=lambda job: -budget_for(job[0], job[2]))
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = dict(zip(order, pool.map(one, order)))
        rows = [done[job] for job in runs]
    print(table(rows, args.markdown))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table(rows, markdown=True) + "\n\n" + claims_report(rows) + "\n")
    failed = [f"{r['assignment']} ({r['mode']}, {r['data']})" for r in rows if r["verdict"] == "FAILED"]
    over = [f"{r['assignment']} ({r['mode']}, {r['data']})" for r in rows if r["verdict"] == "OVER BUDGET"]
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or (over and not args.report_budgets) else 0


if __name__ == "__main__":
    raise SystemExit(main())
