"""Notebook execution times against their declared budgets (a report, not a timed test).

Every lecture runs in two modes on one code path (``coursekit.runtime.budget``): the **fast** path
that autograding (``NBGRADER_EXECUTION``), CI and the tests take, and the **full** path a learner
gets in a live session. Each notebook declares a wall-time budget per mode in ``BUDGETS`` below
(the conventions: fast well under a minute, full a few minutes, on 2 CPU cores). This script
executes the solution notebooks headless, times them (wall time, and the kernel's CPU time, which a
busy machine inflates far less), names the slowest cell, and prints a table with the verdict (on wall
time against the budget); the exit status is 1 when a notebook is over budget or fails, so CI can report it.

    .venv/bin/python benchmarks/bench_notebooks.py                     # every lecture, fast mode
    .venv/bin/python benchmarks/bench_notebooks.py --mode full 01_adversarial_examples
    .venv/bin/python benchmarks/bench_notebooks.py --mode both --markdown   # a table for docs/benchmarks.md
    .venv/bin/python benchmarks/bench_notebooks.py --mode full --report-budgets   # CI: fails only on errors
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # run as a script from a checkout: this checkout's coursekit

from coursekit.execute import last_line, run_notebook, slowest_cell  # noqa: E402

# assignment -> (fast budget s, full budget s). Unlisted notebooks get DEFAULT_BUDGET.
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
    fast, full = BUDGETS.get(assignment, DEFAULT_BUDGET)
    return fast if mode == "fast" else full


def run(path: Path, mode: str, timeout: int) -> dict:
    """Execute one notebook in ``mode`` (fast or full) with the course's executor; its report row."""
    result = run_notebook(path, fast=(mode == "fast"), timeout=timeout)
    cell, cell_s = slowest_cell(result.notebook)
    return row(path.parent.name, mode, result.seconds, result.cpu_seconds, cell, cell_s,
               last_line(result.error) if result.error else None)


def row(assignment: str, mode: str, seconds: float, cpu: float, cell: str, cell_s: float,
        error: str | None) -> dict:
    """One line of the report: the times against the declared budget, and the verdict."""
    limit = budget_for(assignment, mode)
    verdict = "FAILED" if error else ("ok" if seconds <= limit else "OVER BUDGET")
    return {"assignment": assignment, "mode": mode, "seconds": seconds, "cpu": cpu, "budget": limit,
            "ratio": seconds / limit, "slowest_cell": cell, "slowest_cell_s": cell_s,
            "verdict": verdict, "error": error}


def table(rows: list[dict], markdown: bool) -> str:
    head = ["notebook", "mode", "wall (s)", "kernel CPU (s)", "budget (s)", "time/budget", "slowest cell", "verdict"]
    lines = []
    if markdown:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    else:
        lines.append(f"{head[0]:<30} {head[1]:<5} {head[2]:>9} {head[3]:>14} {head[4]:>10} {head[5]:>11}  {head[6]:<28} {head[7]}")
    for r in rows:
        cells = [r["assignment"], r["mode"], f"{r['seconds']:.1f}", f"{r['cpu']:.1f}", f"{r['budget']:.0f}", f"{r['ratio']:.2f}",
                 f"{r['slowest_cell']} ({r['slowest_cell_s']:.1f} s)", r["verdict"] + (f" ({r['error']})" if r["error"] else "")]
        if markdown:
            lines.append("| " + " | ".join(cells) + " |")
        else:
            lines.append(f"{cells[0]:<30} {cells[1]:<5} {cells[2]:>9} {cells[3]:>14} {cells[4]:>10} {cells[5]:>11}  {cells[6]:<28} {cells[7]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*", help="default: every solutions/<assignment>/")
    parser.add_argument("--mode", choices=("fast", "full", "both"), default="fast")
    parser.add_argument("--timeout", type=int, default=900, help="per cell, seconds")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--report-budgets", action="store_true",
                        help="exit 1 only when a notebook fails; over budget is reported, not an error (CI)")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("COURSEKIT_OFFLINE", "1")
    names = args.assignments or sorted(p.name for p in (ROOT / "solutions").iterdir()
                                       if p.is_dir() and any(p.glob("*.ipynb")))
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f} at start; "
          f"COURSEKIT_DATA={'set' if os.environ.get('COURSEKIT_DATA') else 'unset (embedded digits)'}")
    rows = []
    for name in names:
        path = ROOT / "solutions" / name / f"{name}.ipynb"
        if not path.is_file():
            print(f"no notebook {path}", file=sys.stderr)
            return 2
        for mode in modes:
            rows.append(run(path, mode, args.timeout))
            print(f"  {name} {mode}: {rows[-1]['seconds']:.1f} s ({rows[-1]['verdict']})", file=sys.stderr)
    print(table(rows, args.markdown))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table(rows, markdown=True) + "\n")
    failed = [r["assignment"] for r in rows if r["verdict"] == "FAILED"]
    over = [r["assignment"] for r in rows if r["verdict"] == "OVER BUDGET"]
    if over:
        print(f"over budget: {', '.join(over)}", file=sys.stderr)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed or (over and not args.report_budgets) else 0


if __name__ == "__main__":
    raise SystemExit(main())
