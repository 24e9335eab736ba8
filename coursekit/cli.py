"""The ``coursekit`` command line.

    coursekit release [ASSIGNMENT ...]      student notebooks/ from solutions/
    coursekit execute [NOTEBOOK ...]        run lecture notebooks headless (fast budgets)
    coursekit collect DIR                   DIR/<student>/<assignment>/*.ipynb -> submitted/
    coursekit autograde [ASSIGNMENT ...]    grade submitted/ in sandboxes and write feedback/
                 [--workers N] [--dask tcp://SCHEDULER:8786]
    coursekit grades [--csv FILE]           print the grade table and failures, export CSV
    coursekit report [--out DIR]            CSV, per-exercise stats, histogram, failures by reason
    coursekit course                        all of the above with the bundled example submissions
    coursekit zoo list | build [NAME ...]   the model zoo
    coursekit doctor [--json]               is this machine ready? (exit 1 on FAIL)
    coursekit site [--full] [--solutions] [NOTEBOOK ...]   the static HTML course site (build/site/)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _root(args) -> Path:
    from coursekit.grading import find_course_root
    return find_course_root(Path(args.root) if args.root else None)


def cmd_release(args) -> int:
    from coursekit import grading

    root = _root(args)
    for path in grading.release(root, args.assignments or None):
        print(f"released {path.relative_to(root)}")
    return 0


def cmd_execute(args) -> int:
    from coursekit.execute import execute_notebook

    root = _root(args)
    paths = [Path(p) for p in args.notebooks] or sorted((root / "solutions").glob("*/*.ipynb"))
    failed = 0
    for path in paths:
        t0 = time.time()
        out = root / "build" / "executed" / path.name
        try:
            execute_notebook(path, out, fast=not args.full)
            print(f"executed {path.name} in {time.time() - t0:.1f} s -> {out.relative_to(root)}")
        except Exception as exc:  # report every notebook, fail at the end
            failed += 1
            print(f"FAILED {path.name} after {time.time() - t0:.1f} s: {str(exc)[-2000:]}", file=sys.stderr)
    return 1 if failed else 0


def cmd_collect(args) -> int:
    from coursekit import grading

    root = _root(args)
    for student, assignment in grading.collect(root, Path(args.source), args.assignments or None):
        print(f"collected {student}/{assignment}")
    return 0


def cmd_autograde(args) -> int:
    from coursekit import grading

    from coursekit.sandbox import Limits

    root = _root(args)
    names = args.assignments or sorted({p.name for p in (root / "submitted").glob("*/*") if p.is_dir()})
    limits = Limits(**{k: v for k, v in (("cell_timeout", getattr(args, "cell_timeout", None)),
                                         ("notebook_timeout", getattr(args, "notebook_timeout", None)),
                                         ("memory_mb", getattr(args, "memory_mb", None))) if v})
    for name in names:
        t0 = time.time()
        results = grading.autograde(root, name, sandbox=not getattr(args, "no_sandbox", False),
                                    workers=getattr(args, "workers", 1) or 1, dask=getattr(args, "dask", None),
                                    limits=limits, progress=getattr(args, "progress", False))
        print(f"autograded {name} in {time.time() - t0:.1f} s")
        for r in results or []:
            if r["reason"] != "ok":
                serious = [f["message"] for f in r["findings"] if f["kind"] == r["reason"]]
                print(f"  {r['student']}: {r['reason']} ({serious[0][:120] if serious else ''})")
    return 0


def cmd_grades(args) -> int:
    from coursekit import grading

    root = _root(args)
    rows = grading.grades(root)
    print(grading.format_table(rows))
    summary = grading.failure_summary(root)
    if any(summary.values()):
        print()
        print(grading.format_failures(summary, root))
    if args.csv:
        print(f"wrote {grading.export_csv(rows, Path(args.csv))}")
    return 0


def cmd_report(args) -> int:
    from coursekit import grading

    root = _root(args)
    paths = grading.report(root, Path(args.out) if args.out else root / "reports")
    print(paths["summary"].read_text())
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def cmd_course(args) -> int:
    """The main job: release, execute the lectures, autograde the example submissions.

    Grading happens in a throwaway course directory (build/course/, its own gradebook),
    so the demo never touches an instructor's real gradebook.db.
    """
    import shutil

    from coursekit import grading

    root = _root(args)
    t_start = time.time()
    work = root / "build" / "course"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in ("solutions", "examples"):
        shutil.copytree(root / name, work / name)
    shutil.copy(root / "nbgrader_config.py", work / "nbgrader_config.py")

    print("== 1/4 release: student notebooks/ from solutions/")
    for path in grading.release(work):
        dest = root / "notebooks" / path.relative_to(work / "notebooks")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest)
        print(f"released {dest.relative_to(root)}")
    print("== 2/4 execute the lecture notebooks headless (fast budgets)")
    status = cmd_execute(argparse.Namespace(root=str(root), notebooks=[], full=False))
    print("== 3/4 collect and autograde the bundled example submissions (in build/course/)")
    for student, assignment in grading.collect(work, work / "examples" / "submissions"):
        print(f"collected {student}/{assignment}")
    cmd_autograde(argparse.Namespace(root=str(work), assignments=[]))
    print("== 4/4 grades")
    cmd_grades(argparse.Namespace(root=str(work), csv=str(root / "build" / "grades.csv")))
    print(f"feedback HTML in {(work / 'feedback').relative_to(root)}/")
    print(f"course job finished in {time.time() - t_start:.0f} s")
    return status


def cmd_doctor(args) -> int:
    from coursekit import doctor

    return doctor.main(as_json=args.json)


def cmd_site(args) -> int:
    from coursekit import site

    root = _root(args)
    index = site.build(root, out=Path(args.out) if args.out else None, fast=not args.full,
                       notebooks=args.notebooks or None, show_solutions=args.solutions)
    print(f"course site: {index}")
    return 0


def cmd_zoo(args) -> int:
    from coursekit import zoo

    if args.action == "list":
        shipped = zoo.manifest()
        for name in zoo.available():
            info = shipped.get(name, {})
            acc = f"{info['accuracy']:.2%}" if "accuracy" in info else "-"
            print(f"{name:<26} {acc:>8}  {zoo.ENTRIES[name].description}")
        return 0
    from coursekit import recipes   # the build side: trainers load only when building

    recipes.build(args.names or None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coursekit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", help="course directory (default: search upwards from the cwd)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate notebooks/ from solutions/")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("execute", help="execute notebooks headless")
    p.add_argument("notebooks", nargs="*")
    p.add_argument("--full", action="store_true", help="full budgets instead of the fast path")
    p.set_defaults(func=cmd_execute)

    p = sub.add_parser("collect", help="copy submissions into submitted/")
    p.add_argument("source")
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("autograde", help="autograde submitted/ and write feedback (sandboxed, in parallel)")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--workers", "-j", type=int, default=1, help="grade N submissions at a time on this machine")
    p.add_argument("--dask", metavar="ADDRESS", help="send the work to a Dask scheduler (e.g. tcp://10.0.0.5:8786)")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell (default 120)")
    p.add_argument("--notebook-timeout", type=int, help="seconds per notebook (default 600)")
    p.add_argument("--memory-mb", type=int, help="resident memory per submission (default 4096)")
    p.add_argument("--no-sandbox", action="store_true", help="plain nbgrader in the course directory (trusted work only)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("grades", help="print grades, optionally export CSV")
    p.add_argument("--csv")
    p.set_defaults(func=cmd_grades)

    p = sub.add_parser("report", help="grades CSV, per-exercise statistics, histogram, failures by reason")
    p.add_argument("--out", help="output folder (default: reports/ in the course directory)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("course", help="release + execute + autograde the examples + grades")
    p.set_defaults(func=cmd_course)

    p = sub.add_parser("zoo", help="list or build the model zoo")
    p.add_argument("action", choices=["list", "build"])
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("doctor", help="check Python, packages, widgets, weights, data and device")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("site", help="execute the lectures and render the static HTML course site")
    p.add_argument("notebooks", nargs="*", help="solution notebooks (default: all)")
    p.add_argument("--full", action="store_true", help="full budgets instead of the fast path")
    p.add_argument("--out", help="output folder (default: build/site)")
    p.add_argument("--solutions", action="store_true",
                   help="keep the exercise solutions (an instructor copy; default: the student view)")
    p.set_defaults(func=cmd_site)

    args = parser.parse_args(argv)
    from coursekit import quiet
    from coursekit.checks import CourseKitError

    quiet.filter_known_warnings()   # known-harmless third-party warnings only (coursekit/quiet.py)

    try:
        return args.func(args)
    except CourseKitError as exc:
        print(f"coursekit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
