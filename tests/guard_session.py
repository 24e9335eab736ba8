"""A notebook run with the grading guard in an IPython shell, for tests/test_guard.py.

Run as ``python guard_session.py`` with a JSON object on stdin: ``{"info": notebook_names(...)-like
dict, "path": [folders put first on sys.path], "cells": [[role, source], ...]}`` (role: ``instructor``,
``student`` or ``test``). The guard is set up by the executor's own setup code
(:func:`coursekit.sandbox.execute.setup_code`) and its steps are called around each cell as
:class:`~coursekit.sandbox.execute.GuardedRun` calls them. The last stdout line is a JSON list, one
entry per cell: ``{"role", "error": the exception's type name or None, "before": the guard's report
before a test cell, "after": its report after it}``; a guard step that raised has ``"guard_error"``.
"""
import json
import sys

from IPython.core.interactiveshell import InteractiveShell

from coursekit.sandbox.execute import setup_code

NONCE = "guard-session-nonce"


class Lines:
    """The shell's stdout (and the guard's: it keeps the stdout it found): lines kept, read per step."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s
        return len(s)

    def flush(self):
        pass

    def take(self) -> str:
        text, self.text = self.text, ""
        return text


def report(text: str):
    """The guard's nonce-tagged JSON line in ``text`` (None if it did not report)."""
    for line in text.splitlines():
        if line.startswith(NONCE + " "):
            return json.loads(line[len(NONCE) + 1:])
    return None


def main() -> None:
    spec = json.load(sys.stdin)
    sys.path[:0] = spec.get("path", [])
    real, sys.stdout = sys.stdout, Lines()
    shell = InteractiveShell.instance()

    def run(code: str, *, history: bool = True) -> tuple:
        result = shell.run_cell(code, store_history=history)
        exc = result.error_in_exec or result.error_before_exec
        return (type(exc).__name__ if exc else None), sys.stdout.take()

    error, out = run(setup_code(NONCE, spec["info"]), history=False)
    assert error is None and report(out) == {"ready": True}, (error, out)
    steps = []
    for role, source in spec["cells"]:
        step = {"role": role}
        if role == "test":
            error, out = run("_coursekit_guard.before_tests()", history=False)
            step.update(before=report(out), guard_error=error)
        elif role == "instructor":
            run("_coursekit_guard.before_trusted()", history=False)
        step["error"], _ = run(source)
        if role == "test":
            error, out = run("_coursekit_guard.after_tests()", history=False)
            step["after"] = report(out)
            step["guard_error"] = step["guard_error"] or error
        if role != "student":
            run("_coursekit_guard.after_trusted()", history=False)
        steps.append(step)
    real.write(json.dumps(steps) + "\n")


if __name__ == "__main__":
    main()
