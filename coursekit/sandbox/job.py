"""Grade ONE submission in a sandbox: :func:`grade_job`, a pure function of its job (picklable both ways).

1. **Validate and rebuild** (:mod:`~coursekit.sandbox.submission`; no code runs): the released
   structure with the student's answers, the hidden tests restored from the gradebook's copy, and
   the static scan (:mod:`~coursekit.sandbox.scan`).
2. **A box** (:class:`~coursekit.sandbox.isolation.Box`): the kernel's working folder with the
   assignment's files (never the judge's), its HOME, the grading channel, its sockets. No course
   copy: nbgrader's own commands do not run per submission.
3. **A sandboxed kernel** (:mod:`~coursekit.sandbox.kernels`), started before it is needed
   (:func:`start_submission`: the pool starts the next submission's kernel while one is graded).
4. **The guarded run** (:mod:`~coursekit.sandbox.execute`), then the **judge** on what the hidden
   checks recorded (:mod:`~coursekit.sandbox.verdicts`), the scores (nbgrader's rule: a test cell
   that shows an error scores 0), the graded notebook and the feedback page, written here.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from coursekit import coursedir
from coursekit.feedback import feedback_banner, feedback_page, placeholder_page, student_view
from coursekit.sandbox import isolation, verdicts
from coursekit.sandbox.execute import GuardedRun
from coursekit.sandbox.isolation import Box
from coursekit.sandbox.kernels import SandboxKernel
from coursekit.sandbox.records import Limits, finding, main_reason
from coursekit.sandbox.scan import notebook_names, scan_code
from coursekit.sandbox.submission import (is_solution, load_submission, nbgrader_meta, rebuild, restore_sources,
                                          student_code)

JOB_WALL_FACTOR = 3   # a whole submission may take this many times its notebooks' time limit (then it is stopped)


_KITS: dict[tuple, dict] = {}     # prepared assignments, by name and the content of their sources


def prepare_assignment(root: Path, assignment: str) -> dict:
    """Everything a worker needs to grade ``assignment`` (self-contained: works on another machine).

    Runs ``nbgrader generate_assignment`` once in a private folder: the released notebooks and a
    gradebook with the assignment's structure, each cell's full source (hidden tests included) and no
    students. The result is kept for as long as the sources and the configuration stay the same.
    """
    root = Path(root)
    key = (assignment, _digest(root, assignment))     # the folder it lives in does not matter
    if key not in _KITS:
        _KITS[key] = _prepare(root, assignment)
    return _KITS[key]


def _digest(root: Path, assignment: str) -> str:
    h = hashlib.sha256((root / "nbgrader_config.py").read_bytes())
    for p in sorted((root / "solutions" / assignment).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _prepare(root: Path, assignment: str) -> dict:
    src = root / "solutions" / assignment
    with tempfile.TemporaryDirectory(prefix="coursekit-prep-") as tmp:
        prep = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", prep / "nbgrader_config.py")
        shutil.copytree(src, prep / "solutions" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        coursedir.nbgrader(prep, "generate_assignment", assignment, "--force")
        released = {p.stem: p.read_text() for p in sorted((prep / "notebooks" / assignment).glob("*.ipynb"))}
        gradebook = (prep / "gradebook.db").read_bytes()
        sources = _sources(prep / "gradebook.db", assignment)
    files, secret = {}, hashlib.sha256()
    for p in sorted(src.rglob("*")):
        if not p.is_file() or ".ipynb_checkpoints" in p.parts or "__pycache__" in p.parts:
            continue
        if p.suffix == ".ipynb":
            secret.update(p.read_bytes())     # the solutions: what students never see
        else:
            files[str(p.relative_to(src))] = base64.b64encode(p.read_bytes()).decode()
    return {"assignment": assignment, "released": released, "config": (root / "nbgrader_config.py").read_text(),
            "gradebook_b64": base64.b64encode(gradebook).decode(), "files": files, "sources": sources,
            "structure": _structure(released), "probe_secret": secret.hexdigest()}


def _sources(db: Path, assignment: str) -> dict:
    """{notebook: {grade_id: source}} as the gradebook keeps them (hidden tests included)."""
    with coursedir.open_gradebook(db) as gb:
        return {nb.name: {c.name: c.source for c in nb.source_cells}
                for nb in gb.find_assignment(assignment).notebooks}


def _structure(released: dict[str, str]) -> dict:
    """{notebook: {grade_id: points}} of the graded cells."""
    out = {}
    for name, text in released.items():
        cells = json.loads(text)["cells"]
        out[name] = {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
                     for c in cells if nbgrader_meta(c).get("grade")}
    return out


def _rebuild_all(job: dict, findings: list[dict]) -> dict:
    """{notebook name: the notebook to grade} for every readable notebook of the submission."""
    import nbformat

    kit = job["kit"]
    rebuilt = {}
    for name, text in kit["released"].items():
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
                              builtin_names=set(info["builtins_used"]) | {"AssertionError"},
                              data_names=set(info["data"]))
        restore_sources(graded, kit.get("sources", {}).get(name, {}))
        rebuilt[name] = graded
    return rebuilt


@dataclass
class Submission:
    """One submission between its start (box, first kernel) and its result."""

    job: dict
    limits: Limits
    result: dict
    rebuilt: dict
    t0: float     # its clock; the time it waits in a pool for its turn is not counted
    box: Box | None = None
    isolation: str = ""
    judge: object = None
    seed: int = 0
    kernel: SandboxKernel | None = None
    runs: dict = field(default_factory=dict)

    @property
    def findings(self) -> list[dict]:
        return self.result["findings"]

    @property
    def course_copy(self) -> Path:
        """Where the judge reads the assignment's judge-only files (out of the kernel's reach)."""
        return self.box.root / "course"


def _empty_result(job: dict) -> dict:
    structure = job["kit"]["structure"]
    return {"student": job["student"], "assignment": job["assignment"], "findings": [], "files": {}, "log": "",
            "scores": {nb: {gid: 0.0 for gid in cells} for nb, cells in structure.items()},
            "max_score": sum(sum(c.values()) for c in structure.values()), "compute_seconds": 0.0}


async def start_submission(job: dict) -> Submission:
    """Validate, rebuild and scan; make the box and start the first notebook's kernel (it boots meanwhile)."""
    t0 = time.time()
    sub = Submission(job, Limits.from_dict(job.get("limits")), _empty_result(job), {}, t0)
    sub.rebuilt = _rebuild_all(job, sub.findings)
    if not sub.rebuilt:
        sub.t0 = time.time() - t0
        return sub
    kit = job["kit"]
    sub.isolation = job.get("isolation") or isolation.available_isolation()
    sub.result["isolation"] = sub.isolation
    if sub.isolation != "bubblewrap":
        sub.findings.append(finding("info", f"grading ran without bubblewrap ({sub.isolation} only): "
                                            + isolation.describe()["note"]))
    sub.judge = verdicts.find_judge(job.get("judge"))
    sub.seed = verdicts.probe_seed(kit.get("probe_secret", ""), job["assignment"], job["student"])
    sub.box = Box.create(sub.isolation)
    for rel, data in kit["files"].items():    # the judge's files (bands) go where only the grader reads
        judge_only = sub.judge is not None and Path(rel).name in isolation.JUDGE_ONLY_FILES
        path = (sub.course_copy / "solutions" / job["assignment"] if judge_only else sub.box.work) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    sub.box.hand_over()
    if sub.judge is not None:
        sub.judge.prepare(sub.box.channel, job["assignment"], sub.seed)
    first = next(iter(sub.rebuilt))
    sub.kernel = await _start_kernel(sub, first, 0)
    sub.t0 = time.time() - t0      # for now: how long starting took (finish_submission resets the clock)
    return sub


async def _start_kernel(sub: Submission, name: str, restart: int) -> SandboxKernel:
    info = notebook_names(sub.rebuilt[name])
    env = isolation.kernel_env(sub.box, threads=sub.limits.threads, private_tmp=sub.isolation == "bubblewrap",
                               extra={"COURSEKIT_GRADING_CHANNEL": str(sub.box.channel),
                                      "COURSEKIT_PROBE_SEED": str(sub.seed)})
    kernel = SandboxKernel(sub.box, limits=sub.limits, isolation_kind=sub.isolation, preload=info["preload"],
                           env=env, name=f"{name[:20]}-{restart}", hide_judge=sub.judge is not None)
    await kernel.start()
    return kernel


async def finish_submission(sub: Submission) -> dict:
    """Run every notebook, judge, score, write the graded notebooks and the feedback pages."""
    sub.t0 = time.time() - sub.t0
    try:
        if not sub.rebuilt:
            sub.result["placeholders"] = list(sub.job["kit"]["released"])
            return _finish(sub.result, sub.t0)
        budget = JOB_WALL_FACTOR * (sub.limits.notebook_timeout + sub.limits.grace) * len(sub.rebuilt)
        try:
            await asyncio.wait_for(_run_all(sub), timeout=budget)
        except asyncio.TimeoutError:
            sub.findings.append(finding("timeout", f"grading did not finish within {budget} s and was stopped"))
        except Exception as exc:     # a failure of the grader itself: this submission only
            sub.findings.append(finding("error", f"grading failed ({type(exc).__name__}: {str(exc)[:300]})"))
        finally:
            for run in sub.runs.values():
                await run.stop()
        for name, run in sub.runs.items():
            _score(sub, name, run)
        return _finish(sub.result, sub.t0)
    finally:
        if sub.box is not None:
            sub.box.remove()


async def _run_all(sub: Submission) -> None:
    trusted = verdicts.make_trusted_dir(sub.box.root)
    channel = verdicts.Channel(sub.box.channel, trusted)
    for i, (name, nb) in enumerate(sub.rebuilt.items()):
        kernel = sub.kernel if i == 0 else await _start_kernel(sub, name, 0)
        sub.kernel = None

        async def new_kernel(restart: int, name=name):
            return await _start_kernel(sub, name, restart)

        run = GuardedRun(nb, kernel=kernel, new_kernel=new_kernel, limits=sub.limits,
                         info=notebook_names(nb), channel=channel)
        sub.runs[name] = run
        await run.run()
        sub.findings.extend(run.events)
        sub.result["compute_seconds"] += round(run.charged, 2)
        sub.result["peak_rss_mb"] = max(sub.result.get("peak_rss_mb", 0.0), round(run.peak_bytes / 2**20, 1))
        if run.leftovers:
            sub.findings.append(finding("info", f"{run.leftovers} process(es) left behind by the submission "
                                                "were killed"))
    sub.findings.extend(channel.stray())
    if sub.judge is not None:
        judged, problems = verdicts.run_judge(sub.judge, trusted, sub.seed, assignment=sub.job["assignment"],
                                              course_root=sub.course_copy)
    elif any(trusted.iterdir()):    # answers were recorded for a judge that is not installed: fail closed
        judged, problems = {}, [finding("error", "the hidden checks recorded the answers but no judge is installed "
                                                 "here to judge them: they score 0")]
    else:                           # an engine that judges in the kernel (or no engine): the cells decide
        return
    sub.findings.extend(problems)
    sub.result["verdicts"] = {k: v.__dict__ for k, v in judged.items()}
    for run in sub.runs.values():
        run.judged = verdicts.apply_verdicts(run.nb, judged)


async def discard(sub: Submission) -> None:
    """Stop a started submission that will not be graded (its kernel, its box)."""
    if sub.kernel is not None:
        await sub.kernel.stop()
    if sub.box is not None:
        sub.box.remove()


def _score(sub: Submission, name: str, run: GuardedRun) -> None:
    """nbgrader's rule per graded cell (an error output scores 0), the judge's verdicts over it; files."""
    import nbformat
    from nbgrader.preprocessors import LimitOutput
    from nbgrader.utils import determine_grade

    nb = run.nb
    judged = run.judged
    scores = sub.result["scores"].setdefault(name, {})
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and meta.get("grade_id") in scores:
            auto, _ = determine_grade(cell, None) if not is_solution(cell) else (None, None)
            scores[meta["grade_id"]] = float(judged.get(meta["grade_id"], auto or 0.0))
    graded, _ = LimitOutput().preprocess(nb, {})
    sub.result["files"][f"autograded/{name}.ipynb"] = base64.b64encode(nbformat.writes(graded).encode()).decode()
    if sub.job.get("feedback", True):
        view = student_view(graded, scores, judged=set(judged), library_dirs=(isolation.package_dir(),))
        sub.result.setdefault("pages", {})[name] = (view, sum(scores.values()),
                                                    sum(sub.job["kit"]["structure"][name].values()))


def _finish(result: dict, t0: float) -> dict:
    result["reason"] = main_reason(result["findings"])
    result["score"] = round(sum(sum(g.values()) for g in result["scores"].values()), 4)
    banner = feedback_banner(result)
    pages = {name: feedback_page(view, notebook=name, score=score, max_score=max_score, banner=banner)
             for name, (view, score, max_score) in result.pop("pages", {}).items()}
    for name in result.pop("placeholders", []):       # nothing could run: the banner says why
        pages[name] = placeholder_page(result["student"], result["assignment"], name, banner)
    for name, page in pages.items():
        result["files"][f"feedback/{name}.html"] = base64.b64encode(page.encode()).decode()
    result["seconds"] = round(time.time() - t0, 2)
    return result


def grade_job(job: dict) -> dict:
    """Grade one submission in a sandbox. Pure function of ``job`` (picklable both ways).

    job: {"student", "assignment", "kit": prepare_assignment(...), "notebooks": {name: base64 bytes | None},
    "limits": dict, optional "feedback", "isolation", "judge" ("module:function")}. Returns {"student",
    "assignment", "reason", "findings", "scores": {notebook: {grade_id: score}}, "max_score", "score",
    "files": {relative path: base64}, "seconds", "compute_seconds", "isolation", ...}.
    """
    async def both():
        return await finish_submission(await start_submission(job))

    return asyncio.run(both())
