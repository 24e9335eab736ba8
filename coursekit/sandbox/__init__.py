"""Autograding that survives hostile submissions: one sandbox per submission, nbgrader's gradebook.

A student's notebook is untrusted code. :func:`grade_job` grades ONE submission so that nothing it
does reaches the other submissions, the course directory, the gradebook or the grader's secrets,
and so that its grade does not depend on how busy the machine is. The package, bottom up:

- :mod:`~coursekit.sandbox.records`     limits, findings, the reason of a submission, the record kept;
- :mod:`~coursekit.sandbox.submission`  validate the file, rebuild it on the released structure;
- :mod:`~coursekit.sandbox.scan`        the static look at the student's code;
- :mod:`~coursekit.sandbox.guard`       the tamper guard that runs inside the kernel (sent by source);
- :mod:`~coursekit.sandbox.kernel`      the kernel's launcher: rlimits, uid, capabilities, Landlock;
- :mod:`~coursekit.sandbox.isolation`   bubblewrap (or the fallback), the kernel's environment;
- :mod:`~coursekit.sandbox.kernels`     the grader's side of a sandboxed kernel (start, clock, kill);
- :mod:`~coursekit.sandbox.execute`     the guarded, load-independent run of one notebook;
- :mod:`~coursekit.sandbox.verdicts`    the grading channel and the engine's judge, outside the kernel;
- :mod:`~coursekit.sandbox.job`         grade one submission (scores, graded notebook, feedback page);
- :mod:`~coursekit.sandbox.pool`        many submissions (threads with pre-started kernels, or Dask).

What it cannot promise: the student's code and the instructor's visible checks share one Python
process, so code written against this grader's internals (ctypes, frames) can still fool a check
that runs in the kernel. Hidden checks of the exercise engine are judged outside the kernel
(:mod:`~coursekit.sandbox.verdicts`); the static scan and the guard report the rest
(``tampering``) so that a person looks at it; the filesystem, network, process, memory and time
limits are enforced by the operating system and hold regardless.

Grades are what the student's code really does under the real tests; the reason (``ok``, ``error``,
``timeout``, ``memory``, ``tampering``, ``invalid``), the findings and the isolation that ran go
into the feedback HTML and ``autograded/<student>/<assignment>/coursekit_grading.json``.
"""
import importlib

# Public names, loaded on first use: the kernel launcher (``python -m coursekit.sandbox kernel``)
# imports this package and must not pay for nbgrader and nbconvert before it confines itself.
_WHERE = {
    "records": ("REASONS", "RESULT_FILE", "Limits", "finding", "load_results", "main_reason"),
    "submission": ("load_submission", "rebuild", "student_code"),
    "scan": ("notebook_names", "scan_code"),
    "kernel": ("landlock_abi",),
    "isolation": ("available_isolation", "describe"),
    "job": ("grade_job", "prepare_assignment"),
    "pool": ("autograde", "ensure_structure", "make_jobs", "merge_result", "run_jobs"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'coursekit.sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"coursekit.sandbox.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value
