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
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the table, the load and the machine to this file (benchmarks/results/...)")
    args = parser.parse_args()
    os.environ.setdefault("COURSEKIT_OFFLINE", "1")
    cores = os.cpu_count() or 1
    workers = args.workers or sorted({1, 2, cores})
    from coursekit.sandbox import describe

    load_before = os.getloadavg()
    print(f"{args.submissions} submissions of {args.assignment}; {cores} CPU cores; isolation: "
          f"{describe()['isolation']}; load average before: {load_before[0]:.1f}")
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
    base = table[0][1] if table else {"per_min": 1, "wall": 0}
    print("speed-up vs the first row: " + ", ".join(f"{n}: {r['per_min'] / base['per_min']:.2f}x" for n, r in table))
    if args.plain:   # what the sandbox costs per submission beyond plain nbgrader, measured in the same run
        print("wall time per submission beyond plain nbgrader's: " + ", ".join(
            f"{n}: {(r['wall'] - base['wall']) / args.submissions:+.1f} s" for n, r in table[1:]))
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.1f}")
    if args.json:
        write_results(args.json, assignment=args.assignment, submissions=args.submissions, cores=cores,
                      isolation=describe()["isolation"], load=(load_before, load_after), table=table,
                      plain=args.plain)


def write_results(path: Path, *, assignment: str, submissions: int, cores: int, isolation: str, load: tuple,
                  table: list, plain: bool) -> None:
    """The run as JSON: each row's figures, its throughput relative to the first row (plain nbgrader with
    ``--plain``) and, against plain nbgrader, the extra wall time per submission."""
    import json
    import platform
    import subprocess

    base = table[0][1]
    rows = []
    for name, r in table:
        row = {"mode": name, **{k: round(v, 2) for k, v in r.items()},
               "wall_per_submission": round(r["wall"] / submissions, 2),
               "throughput_vs_first_row": round(r["per_min"] / base["per_min"], 3)}
        if plain and r is not base:
            row["extra_wall_per_submission_vs_plain"] = round((r["wall"] - base["wall"]) / submissions, 2)
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "benchmark": "benchmarks/bench_grading.py", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit.strip(), "machine": f"{platform.machine()}, {cores} CPU cores, {platform.python_version()}",
        "isolation": isolation, "assignment": assignment, "submissions": submissions,
        "load_average_before": [round(x, 2) for x in load[0]], "load_average_after": [round(x, 2) for x in load[1]],
        "uptime_after": uptime, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
