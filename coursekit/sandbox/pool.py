"""Many submissions: jobs, workers (threads on this machine, or a Dask cluster), and the merge of
each result into the real course (one writer: the parent).
"""
from __future__ import annotations

import asyncio
import base64
import queue
import secrets
import shutil
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from coursekit.coursedir import open_gradebook
from coursekit.sandbox.job import discard, finish_submission, grade_job, prepare_assignment, start_submission
from coursekit.sandbox.records import Limits, write_record


def make_jobs(root: Path, assignment: str, students: list[str] | None = None, *, limits: Limits | None = None,
              kit: dict | None = None, judge: str | None = None) -> list[dict]:
    """One job per collected submission of ``assignment`` (submitted/<student>/<assignment>/)."""
    root = Path(root)
    kit = kit or prepare_assignment(root, assignment)
    found = sorted(p.parent.name for p in (root / "submitted").glob(f"*/{assignment}") if p.is_dir())
    jobs = []
    for student in students or found:
        folder = root / "submitted" / student / assignment
        notebooks = {}
        for name in kit["released"]:
            path = folder / f"{name}.ipynb"
            notebooks[name] = base64.b64encode(path.read_bytes()).decode() if path.is_file() else None
        jobs.append({"student": student, "assignment": assignment, "kit": kit, "notebooks": notebooks,
                     "limits": asdict(limits or Limits()), "judge": judge})
    return jobs


def run_jobs(jobs: list[dict], *, workers: int = 1, dask: str | object | None = None, progress: bool = False):
    """Grade jobs N at a time on this machine, or on a Dask cluster; yield results as they finish.

    Locally, ``workers`` threads each grade one submission at a time and start the kernel of their
    next one while they grade (:func:`_worker`); the kernels are processes of their own, so the
    threads only drive them (no pickling, no ``__main__`` guard).

    ``dask``: a scheduler address ("tcp://host:8786") or a ``distributed.Client``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="autograding", disable=not progress)
    try:
        results = _on_dask(jobs, dask) if dask is not None else _on_threads(jobs, max(1, workers))
        for result in results:
            bar.update()
            yield result
    finally:
        bar.close()


def _on_dask(jobs: list[dict], dask):
    from distributed import Client, as_completed

    client = dask if isinstance(dask, Client) else Client(dask)
    try:
        kits, futures = {}, []
        for job in jobs:    # the kit is the same for every job: ship it once
            key = id(job["kit"])
            if key not in kits:
                kits[key] = client.scatter(job["kit"], broadcast=True)
            light = {k: v for k, v in job.items() if k != "kit"}
            futures.append(client.submit(_grade_with_kit, light, kits[key], pure=False,
                                         key=f"grade-{job['assignment']}-{job['student']}-{secrets.token_hex(4)}"))
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if not isinstance(dask, Client):
            client.close()


def _on_threads(jobs: list[dict], workers: int):
    pending, done = list(reversed(jobs)), queue.Queue()
    lock = threading.Lock()

    def take():
        with lock:
            return pending.pop() if pending else None

    threads = [threading.Thread(target=lambda: asyncio.run(_worker(take, done.put)), daemon=True,
                                name=f"coursekit-grader-{i}") for i in range(min(workers, len(jobs)))]
    for t in threads:
        t.start()
    for _ in jobs:
        result = done.get()
        if isinstance(result, BaseException):
            raise result
        yield result
    for t in threads:
        t.join()


async def _worker(take, put) -> None:
    """Grade submissions one after the other, the next one's kernel booting while one is graded.

    The kernels are started from this thread, which lives until the queue is empty (bubblewrap's
    --die-with-parent follows the thread that started it).
    """
    nxt = None
    try:
        job = take()
        nxt = await start_submission(job) if job else None
        while nxt is not None:
            current, nxt = nxt, None
            job = take()
            if job is not None:
                nxt = await start_submission(job)
            put(await finish_submission(current))
    except BaseException as exc:     # never leave the consumer waiting
        if nxt is not None:
            await discard(nxt)
        put(exc)


def _grade_with_kit(job: dict, kit: dict) -> dict:
    return grade_job(dict(job, kit=kit))


def ensure_structure(gb, kit: dict) -> None:
    """Create the assignment, its notebooks and cells in the real gradebook (from the kit's gradebook)."""
    from nbgrader.api import Gradebook

    assignment = kit["assignment"]
    with tempfile.NamedTemporaryFile(suffix=".db") as tmp:
        tmp.write(base64.b64decode(kit["gradebook_b64"]))
        tmp.flush()
        with Gradebook(f"sqlite:///{tmp.name}") as src:
            a = src.find_assignment(assignment)
            gb.update_or_create_assignment(assignment, duedate=a.duedate)
            for nb in a.notebooks:
                gb.update_or_create_notebook(nb.name, assignment)
                for c in nb.grade_cells:
                    gb.update_or_create_grade_cell(c.name, nb.name, assignment, max_score=c.max_score,
                                                   cell_type=c.cell_type)
                for c in nb.solution_cells:
                    gb.update_or_create_solution_cell(c.name, nb.name, assignment)
                for c in nb.task_cells:
                    gb.update_or_create_task_cell(c.name, nb.name, assignment, max_score=c.max_score,
                                                  cell_type=c.cell_type)
                for c in nb.source_cells:
                    gb.update_or_create_source_cell(c.name, nb.name, assignment, cell_type=c.cell_type,
                                                    locked=c.locked, source=c.source, checksum=c.checksum)


def merge_result(root: Path, result: dict, gb=None) -> None:
    """Write one sandbox result into the real course: gradebook scores, autograded/, feedback/."""
    root = Path(root)
    student, assignment = result["student"], result["assignment"]
    own = gb is None
    gb = gb or open_gradebook(root / "gradebook.db")
    try:
        gb.update_or_create_student(student)
        sub = gb.update_or_create_submission(assignment, student)
        for nb in sub.notebooks:
            scores = result["scores"].get(nb.name, {})
            for grade in nb.grades:
                grade.auto_score = float(scores.get(grade.name, 0.0))
                grade.manual_score = None
                grade.needs_manual_grade = False
            for comment in nb.comments:
                comment.auto_comment = None
        gb.db.commit()
    finally:
        if own:
            gb.close()
    for base in ("autograded", "feedback"):
        dest = root / base / student / assignment
        if dest.exists():
            shutil.rmtree(dest)
    for rel, data in result["files"].items():
        base, _, name = rel.partition("/")
        path = root / base / student / assignment / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
    write_record(root / "autograded" / student / assignment, result)


def autograde(root: Path, assignment: str, students: list[str] | None = None, *, workers: int = 1,
              dask: str | object | None = None, limits: Limits | None = None, progress: bool = False,
              feedback: bool = True, judge: str | None = None) -> list[dict]:
    """Grade every collected submission of ``assignment`` in sandboxes; merge into gradebook.db.

    Returns the results (one dict per submission, without the file payloads), in student order.
    """
    root = Path(root)
    kit = prepare_assignment(root, assignment)
    jobs = make_jobs(root, assignment, students, limits=limits, kit=kit, judge=judge)
    for job in jobs:
        job["feedback"] = feedback
    results = []
    with open_gradebook(root / "gradebook.db") as gb:
        ensure_structure(gb, kit)
        for res in run_jobs(jobs, workers=workers, dask=dask, progress=progress):
            merge_result(root, res, gb)     # one writer: the parent
            res.pop("files", None)
            results.append(res)
    return sorted(results, key=lambda r: r["student"])
