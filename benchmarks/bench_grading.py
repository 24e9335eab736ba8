"""Autograding throughput: submissions per minute with 1, 2 and N sandboxed workers, and the
per-submission overhead beyond the notebook's own compute.

    .venv/bin/python benchmarks/bench_grading.py                      # tiny assignment, 8 submissions
    .venv/bin/python benchmarks/bench_grading.py --assignment 02_linear_explanation --submissions 6
    .venv/bin/python benchmarks/bench_grading.py --dask                # also a local Dask cluster

Each submission is a copy of a correct one (tests/hostile_submissions alice_correct for the tiny
assignment, examples/submissions/alice_correct for a lecture). "compute" is the time the kernel
was charged for the notebook's cells (wall time less the time it waited for a CPU); "overhead" is
everything else one submission costs in its sandbox beyond its turn in the queue (validation and
rebuild, the box, whatever of the kernel's start was not hidden behind the previous submission,
the guard, judging, the graded notebook and the feedback HTML). The plain-nbgrader row grades the
same submissions with ``nbgrader autograde`` + ``generate_feedback`` in the course directory (no
sandbox), one process for all of them. The load average is printed before and after: the numbers
only compare on a machine that is as quiet for every row.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_course(dest: Path, assignment: str, n: int) -> Path:
    if assignment == "00_tiny":
        src_course = ROOT / "tests" / "hostile_submissions" / "course"
        shutil.copytree(src_course, dest)
        alice = ROOT / "tests" / "hostile_submissions" / "cases" / "alice_correct" / assignment / f"{assignment}.ipynb"
    else:
        dest.mkdir(parents=True)
        shutil.copytree(ROOT / "solutions" / assignment, dest / "solutions" / assignment)
        shutil.copy(ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
        alice = ROOT / "examples" / "submissions" / "alice_correct" / assignment / f"{assignment}.ipynb"
    for i in range(n):
        target = dest / "submitted" / f"student{i:03d}" / assignment / alice.name
        target.parent.mkdir(parents=True)
        shutil.copy(alice, target)
    return dest


def run(assignment: str, n: int, workers: int, dask=None, sandbox: bool = True) -> dict:
    from coursekit import grading

    from coursekit.sandbox import job

    job._KITS.clear()   # every row pays for preparing the assignment, as a fresh `coursekit autograde` does
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        course = make_course(Path(tmp) / "course", assignment, n)
        if not sandbox:  # plain nbgrader needs the assignment in the gradebook first (not timed)
            grading.release(course, [assignment])
        t0 = time.perf_counter()
        results = grading.autograde(course, assignment, workers=workers, dask=dask, sandbox=sandbox)
        wall = time.perf_counter() - t0
        rows = grading.grades(course)
    assert len(rows) == n and all(r["score"] == r["max_score"] for r in rows), rows
    out = {"wall": wall, "per_min": 60 * n / wall}
    if results:
        assert all(r["reason"] == "ok" for r in results), [r["findings"] for r in results]
        out["job"] = statistics.mean(r["seconds"] for r in results)
        out["compute"] = statistics.mean(r["compute_seconds"] for r in results)
        out["overhead"] = out["job"] - out["compute"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="00_tiny")
    parser.add_argument("--submissions", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="*", default=None, help="default: 1 2 N (N = CPU cores)")
    parser.add_argument("--dask", action="store_true", help="also grade on a LocalCluster with N workers")
    parser.add_argument("--plain", action="store_true", help="also time plain nbgrader (no sandbox)")
    args = parser.parse_args()
    os.environ.setdefault("COURSEKIT_OFFLINE", "1")
    cores = os.cpu_count() or 1
    workers = args.workers or sorted({1, 2, cores})
    from coursekit.sandbox import describe

    print(f"{args.submissions} submissions of {args.assignment}; {cores} CPU cores; isolation: "
          f"{describe()['isolation']}; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<22} {'wall s':>8} {'subs/min':>9} {'s/sub (job)':>12} {'compute s':>10} {'overhead s':>11}")
    table = []
    if args.plain:
        r = run(args.assignment, args.submissions, 1, sandbox=False)
        table.append(("plain nbgrader", r))
    for w in workers:
        table.append((f"sandbox, {w} worker{'s' if w > 1 else ''}", run(args.assignment, args.submissions, w)))
    if args.dask:
        from distributed import LocalCluster

        with LocalCluster(n_workers=cores, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cl:
            table.append((f"dask, {cores} workers", run(args.assignment, args.submissions, 1, dask=cl.scheduler_address)))
    for name, r in table:
        job = f"{r['job']:>12.1f} {r['compute']:>10.1f} {r['overhead']:>11.1f}" if "job" in r else f"{'-':>12} {'-':>10} {'-':>11}"
        print(f"{name:<22} {r['wall']:>8.1f} {r['per_min']:>9.1f} {job}", flush=True)
    base = table[0][1]["per_min"] if table else 1
    print("speed-up vs the first row: " + ", ".join(f"{n}: {r['per_min'] / base:.2f}x" for n, r in table))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    sys.exit(main())
