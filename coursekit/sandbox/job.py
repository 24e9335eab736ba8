"""Grade ONE submission in a sandbox: :func:`grade_job`, a pure function of its job (picklable both ways).

1. **Validate and rebuild** (:mod:`coursekit.sandbox.submission`) and scan (:mod:`coursekit.sandbox.scan`).
2. **A private course copy**: ``nbgrader autograde`` and ``generate_feedback`` run in a fresh
   temporary course directory that holds only what grading needs (the config, a gradebook with the
   assignment's structure and no students, the non-notebook files of the assignment and the rebuilt
   submission), in a process group of their own with a wall-clock limit.
3. **A confined kernel** (:mod:`coursekit.sandbox.kernel`) through a kernelspec of the sandbox; the
   parent watches the kernel's resident memory and kills every process of the sandbox at the end.
4. **A guarded execution** (:mod:`coursekit.sandbox.execute`).
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from coursekit import coursedir
from coursekit.feedback import feedback_banner, inject_banner, placeholder_page
from coursekit.sandbox.kernel import landlock_abi
from coursekit.sandbox.submission import load_submission, nbgrader_meta, rebuild, student_code
from coursekit.sandbox.records import Limits, finding, main_reason
from coursekit.sandbox.scan import notebook_names, scan_code


def prepare_assignment(root: Path, assignment: str) -> dict:
    """Everything a worker needs to grade ``assignment`` (self-contained: works on another machine).

    Runs ``nbgrader generate_assignment`` once in a private folder: the released notebooks and a
    gradebook with the assignment's structure and no students.
    """
    root = Path(root)
    src = root / "solutions" / assignment
    with tempfile.TemporaryDirectory(prefix="coursekit-prep-") as tmp:
        prep = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", prep / "nbgrader_config.py")
        shutil.copytree(src, prep / "solutions" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        coursedir.nbgrader(prep, "generate_assignment", assignment, "--force")
        released = {p.stem: p.read_text() for p in sorted((prep / "notebooks" / assignment).glob("*.ipynb"))}
        gradebook = (prep / "gradebook.db").read_bytes()
    files = {}
    for p in src.rglob("*"):
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts:
            files[str(p.relative_to(src))] = base64.b64encode(p.read_bytes()).decode()
    return {"assignment": assignment, "released": released, "config": (root / "nbgrader_config.py").read_text(),
            "gradebook_b64": base64.b64encode(gradebook).decode(), "files": files,
            "structure": _structure(released)}


def _structure(released: dict[str, str]) -> dict:
    """{notebook: {grade_id: points}} of the graded cells."""
    out = {}
    for name, text in released.items():
        cells = json.loads(text)["cells"]
        out[name] = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
                     for c in cells if nbgrader_meta(c).get("grade")}
    return out


_CONFIG_TAIL = '''
# --- appended by coursekit.sandbox: this is a throwaway course directory for one submission ---
import os as _os
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///" + _os.path.join({root!r}, "gradebook.db")
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.Execute.timeout = {cell_timeout}
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
c.Execute.iopub_timeout = 15
from coursekit.sandbox.execute import GuardedExecute as _GuardedExecute
from nbconvert.preprocessors import ClearMetadataPreprocessor as _ClearMeta
from nbgrader.preprocessors import (IgnorePattern as _IP, LimitOutput as _LO, SaveAutoGrades as _SAG,
                                    AssignLatePenalties as _ALP, CheckCellMetadata as _CCM)
c.Autograde.autograde_preprocessors = [_GuardedExecute, _IP, _ClearMeta, _LO, _SAG, _ALP, _CCM]
'''


def _sandbox_processes(root_pid: int, mark: str, exclude: set[int]):
    """The processes of one sandbox: descendants of its nbgrader process and anything carrying its mark."""
    import psutil

    procs = {}
    try:
        for p in psutil.Process(root_pid).children(recursive=True):
            procs[p.pid] = p
    except psutil.Error:
        pass
    me = os.getuid()
    for p in psutil.process_iter(["uids"]):
        if p.pid in procs or not p.info["uids"] or p.info["uids"].real != me:
            continue
        try:
            if p.environ().get("COURSEKIT_SANDBOX_MARK") == mark:
                procs[p.pid] = p
        except psutil.Error:
            pass
    return [p for pid, p in procs.items() if pid not in exclude]


def _kill(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except Exception:
            pass


def _rebuild_all(job: dict, findings: list[dict]) -> dict:
    """{notebook name: the notebook to grade} for every readable notebook of the submission."""
    import nbformat

    rebuilt = {}
    for name, text in job["kit"]["released"].items():
        data = job["notebooks"].get(name)
        nb, f = load_submission(None if data is None else base64.b64decode(data), name)
        findings += f
        if nb is None:
            continue
        released = nbformat.reads(text, as_version=4)
        graded, f = rebuild(nb, released, name)
        findings += f
        info = notebook_names(released)
        findings += scan_code(student_code(graded), module_aliases=set(info["aliases"]),
                              protected_names=set(info["protected"]),
                              builtin_names=set(info["builtins_used"]) | {"AssertionError"})
        rebuilt[name] = graded
    return rebuilt


def _write_box(box: Path, job: dict, rebuilt: dict, limits: Limits, mark: str) -> dict:
    """The throwaway course directory of one submission; returns the environment of its nbgrader."""
    import nbformat

    kit, student, assignment = job["kit"], job["student"], job["assignment"]
    os.chmod(box, 0o711)
    (box / "nbgrader_config.py").write_text(
        kit["config"] + _CONFIG_TAIL.format(root=str(box), cell_timeout=limits.cell_timeout))
    (box / "gradebook.db").write_bytes(base64.b64decode(kit["gradebook_b64"]))
    os.chmod(box / "gradebook.db", 0o600)
    src = box / "solutions" / assignment
    src.mkdir(parents=True)
    for rel, data in kit["files"].items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(base64.b64decode(data))
    sub = box / "submitted" / student / assignment
    sub.mkdir(parents=True)
    for name, nb in rebuilt.items():
        nbformat.write(nb, sub / f"{name}.ipynb")
    work = box / "autograded" / student / assignment
    work.mkdir(parents=True)
    for folder in (box / "autograded", box / "autograded" / student):
        os.chmod(folder, 0o711)
    home = box / "home"
    home.mkdir()
    runtime = box / "runtime"
    runtime.mkdir(mode=0o711)
    kdir = box / "share" / "jupyter" / "kernels" / "python3"
    kdir.mkdir(parents=True)
    sandbox_cfg = {"limits": asdict(limits), "workdir": str(work), "home": str(home),
                   "landlock": job.get("landlock", True)}
    (kdir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "coursekit.sandbox", "kernel", "{connection_file}"],
        "display_name": "Python 3 (coursekit sandbox)", "language": "python",
        "env": {"COURSEKIT_KERNEL_SANDBOX": json.dumps(sandbox_cfg), "COURSEKIT_SANDBOX_MARK": mark}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSEKIT_ROOT", "DASK_"))}
    env.update(JUPYTER_PATH=str(box / "share" / "jupyter"), JUPYTER_RUNTIME_DIR=str(runtime),
               JUPYTER_CONFIG_DIR=str(box / "jupyter-config"), JUPYTER_DATA_DIR=str(box / "jupyter-data"),
               COURSEKIT_SANDBOX_LIMITS=json.dumps(asdict(limits)), COURSEKIT_SANDBOX_DIR=str(box),
               COURSEKIT_SANDBOX_MARK=mark, PYTHONWARNINGS="ignore",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return env


def _watch(proc, mark: str, limits: Limits, findings: list[dict]) -> tuple[str | None, int]:
    """Wait for nbgrader; enforce the wall clock, the process count and the memory. (killed?, peak bytes)."""
    deadline = time.monotonic() + limits.notebook_timeout + limits.grace
    peak = 0
    while proc.poll() is None:
        time.sleep(0.25)
        if time.monotonic() > deadline:
            return "timeout", peak
        kids = _sandbox_processes(proc.pid, mark, {proc.pid, os.getpid()})
        if len(kids) > limits.max_processes:  # RLIMIT_NPROC counts the whole uid: this counts the sandbox
            if not any("processes and was stopped" in f["message"] for f in findings):
                findings.append(finding("error", f"the submission started more than {limits.max_processes} "
                                        "processes and was stopped; the cells after it did not run"))
            _kill(kids)
            continue
        rss = 0
        for p in kids:
            try:  # proportional set size: forked children share pages, RSS would count them N times
                rss += p.memory_full_info().pss if len(kids) > 1 else p.memory_info().rss
            except Exception:
                pass
        peak = max(peak, rss)
        if rss > limits.memory_mb * 1024 * 1024:
            if not any(f["kind"] == "memory" and not f["where"] for f in findings):
                findings.append(finding("memory", f"the kernel used more than {limits.memory_mb} MB of memory and "
                                        "was stopped; the cells after it did not run"))
            _kill(kids)
    return None, peak


def _collect(box: Path, result: dict, killed: str | None) -> None:
    """Read what the sandbox left: the guard's report, nbgrader's scores, the notebooks and feedback."""
    findings = result["findings"]
    report = box / "guard_report.json"
    if report.is_file():
        guard = json.loads(report.read_text())
        findings += guard["events"]
        result["compute_seconds"] = guard.get("compute_seconds", 0.0)
    outcome = box / "outcome.json"
    if not killed and outcome.is_file():
        data = json.loads(outcome.read_text())
        result["phases"] = data.get("times", {})
        for nb, grades in data["scores"].items():
            result["scores"].setdefault(nb, {}).update(grades)
        if not data.get("ok"):
            error = data.get("error", "")
            result["log"] += "\n--- nbgrader ---\n" + error[-6000:]
            last = [line for line in error.strip().splitlines() if line.strip()][-1:] or [""]
            findings.append(finding("error", "nbgrader could not grade this submission: " + last[0][-300:]))
    elif not killed:
        findings.append(finding("error", "nbgrader stopped without a result: " + result["log"][-500:]))
    student, assignment = result["student"], result["assignment"]
    for base in ("autograded", "feedback"):
        folder = box / base / student / assignment
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() and (base == "feedback" or p.suffix == ".ipynb") and p.stat().st_size < 20 * 2**20:
                    result["files"][f"{base}/{p.relative_to(folder)}"] = base64.b64encode(p.read_bytes()).decode()


def grade_job(job: dict) -> dict:
    """Grade one submission in a sandbox. Pure function of ``job`` (picklable both ways).

    job: {"student", "assignment", "kit": prepare_assignment(...), "notebooks": {name: base64 bytes | None},
    "limits": dict}. Returns {"student", "assignment", "reason", "findings", "scores": {notebook: {grade_id:
    score}}, "max_score", "score", "files": {relative path: base64}, "seconds", "compute_seconds", "log"}.
    """
    t0 = time.time()
    kit, student, assignment = job["kit"], job["student"], job["assignment"]
    limits = Limits.from_dict(job.get("limits"))
    structure = kit["structure"]
    result = {"student": student, "assignment": assignment, "findings": [], "files": {}, "log": "",
              "scores": {nb: {gid: 0.0 for gid in cells} for nb, cells in structure.items()},
              "max_score": sum(sum(c.values()) for c in structure.values()), "compute_seconds": 0.0}
    findings = result["findings"]
    rebuilt = _rebuild_all(job, findings)
    if not rebuilt:
        result["files"].update(placeholder_page(student, assignment, kit["released"]))
        return _finish(result, t0)
    if job.get("landlock", True) and landlock_abi() < 1:
        findings.append(finding("info", "this machine's kernel has no Landlock: the kernel's file access was "
                                "not confined (limits, guard and private course copy still applied)"))
    box = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
    try:
        mark = secrets.token_hex(12)
        env = _write_box(box, job, rebuilt, limits, mark)
        log_path = box / "nbgrader.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "coursekit.sandbox", "nbgrader", str(box), assignment,
                                     student, "1" if job.get("feedback", True) else "0"], cwd=box, env=env,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        killed, peak = _watch(proc, mark, limits, findings)
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            findings.append(finding("timeout", f"grading did not finish within {limits.notebook_timeout + limits.grace} s "
                                    "and was stopped: no cell could be graded"))
        leftovers = _sandbox_processes(proc.pid, mark, {os.getpid()})
        if leftovers:
            findings.append(finding("info", f"{len(leftovers)} process(es) left behind by the submission were killed"))
        _kill(leftovers)
        result["log"] = log_path.read_text(errors="replace")[-4000:]
        result["peak_rss_mb"] = round(peak / 2**20, 1)
        _collect(box, result, killed)
        return _finish(result, t0)
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _finish(result: dict, t0: float) -> dict:
    result["reason"] = main_reason(result["findings"])
    result["score"] = round(sum(sum(g.values()) for g in result["scores"].values()), 4)
    result["seconds"] = round(time.time() - t0, 2)
    banner = feedback_banner(result)
    for rel, data in list(result["files"].items()):
        if rel.startswith("feedback/") and rel.endswith(".html"):
            html = base64.b64decode(data).decode("utf-8", errors="replace")
            result["files"][rel] = base64.b64encode(inject_banner(html, banner).encode()).decode()
    return result


def nbgrader_main(box: str, assignment: str, student: str, feedback: str = "1") -> int:
    """Child process: nbgrader autograde + generate_feedback in the sandbox course directory."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    os.chdir(box)
    config = PyFileConfigLoader("nbgrader_config.py", path=box).load_config()
    api = NbGraderAPI(config=config)
    out = {"ok": True, "scores": {}, "times": {}}
    t0 = time.time()
    res = api.autograde(assignment, student, force=True, create=True)
    out["times"]["autograde"] = round(time.time() - t0, 2)
    if not res.get("success"):
        out.update(ok=False, error=(res.get("log") or "")[-8000:] + "\n" + (res.get("error") or ""))
    elif feedback == "1":
        t0 = time.time()
        fb = api.generate_feedback(assignment, student, force=True)
        out["times"]["feedback"] = round(time.time() - t0, 2)
        if not fb.get("success"):
            out["feedback_error"] = fb.get("error") or fb.get("log", "")
    with Gradebook(f"sqlite:///{os.path.join(box, 'gradebook.db')}") as gb:
        try:
            sub = gb.find_submission(assignment, student)
            for nb in sub.notebooks:
                out["scores"][nb.name] = {g.name: float(g.score) for g in nb.grades}
        except MissingEntry:
            out["ok"] = False
    Path(box, "outcome.json").write_text(json.dumps(out))
    return 0
