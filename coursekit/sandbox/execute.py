"""The guarded execution: nbgrader's ``Execute`` with the tamper guard and a notebook time budget.

Before any student code runs, :mod:`coursekit.sandbox.guard` is set up in the kernel (its source is
sent there, see :func:`setup_code`). Before every test cell the guard restores what student code
replaced and reports it (``tampering``). A test cell passes only with positive evidence: no error
and a per-cell random token printed by a line appended after the test's last line (fail closed: a
cell that was cut short, swallowed or skipped fails). Cells stop at ``cell_timeout``; once the
notebook has used ``notebook_timeout`` the remaining cells fail (``timeout``), so the tests that
ran keep their points. Output beyond ``max_output_kb`` per cell is dropped. A kernel that dies
fails the remaining cells (``error``).
"""
from __future__ import annotations

import inspect
import json
import os
import secrets
import time
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute

from coursekit.sandbox import guard
from coursekit.sandbox.submission import is_solution, is_test, nbgrader_meta
from coursekit.sandbox.records import Limits, finding
from coursekit.sandbox.scan import notebook_names


def setup_code(nonce: str, info: dict) -> str:
    """Kernel code that runs the guard module's source in a module object of its own and starts it."""
    args = f"{nonce!r}, {info['preload']!r}, {info['roots']!r}, {set(info['student_names'])!r}"
    return (f"import types as _ck_types\n_coursekit_guard = _ck_types.ModuleType('coursekit_guard')\n"
            f"exec(compile({inspect.getsource(guard)!r}, '<coursekit-guard>', 'exec'), _coursekit_guard.__dict__)\n"
            f"_coursekit_guard = _coursekit_guard.make_guard({args})\ndel _ck_types\n"
            f"print({nonce!r} + ' {{\"ready\": true}}')\n")


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An nbformat error output with a one-line traceback."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GuardedExecute(Execute):
    """nbgrader's Execute with a guard before every test cell and a notebook time budget."""

    def preprocess(self, nb, resources=None, km=None):
        self._ck_limits = Limits.from_dict(json.loads(os.environ.get("COURSEKIT_SANDBOX_LIMITS", "{}")))
        self._ck_events: list[dict] = []
        self._ck_nonce = secrets.token_hex(16)
        self._ck_info = notebook_names(nb)
        self._ck_started = False
        self._ck_dead = None
        self._ck_deadline = time.monotonic() + self._ck_limits.notebook_timeout
        self._ck_out_bytes: dict[int, int] = {}
        self._ck_truncated: set[int] = set()
        self._ck_accept: str | None = None
        self._ck_compute = 0.0
        try:
            return super().preprocess(nb, resources, km)
        finally:
            report = Path(os.environ.get("COURSEKIT_SANDBOX_DIR", ".")) / "guard_report.json"
            report.write_text(json.dumps({"events": self._ck_events, "compute_seconds": self._ck_compute}))

    # -- helpers ------------------------------------------------------------------------
    def _ck_event(self, kind, message, where=""):
        self._ck_events.append(finding(kind, message, where))

    def _ck_role(self, cell) -> str:
        if is_solution(cell) or cell.metadata.get("coursekit", {}).get("origin") == "student":
            return "student"
        return "test" if is_test(cell) else "instructor"

    def _ck_guard(self, code: str, index: int) -> dict | None:
        """Run guard code in the kernel; its nonce-tagged JSON line, or None if it did not report."""
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        real = self.nb.cells[index]
        old_timeout = self.timeout
        self.timeout = 60
        try:
            self.execute_cell(cell, index, store_history=False)
        except DeadKernelError:
            self._ck_dead = "the kernel died"
            return None
        finally:
            self.timeout = old_timeout
            self.nb.cells[index] = real   # nbclient stores the executed cell at its index
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                for line in out.get("text", "").splitlines():
                    if line.startswith(self._ck_nonce + " "):
                        try:
                            return json.loads(line[len(self._ck_nonce) + 1:])
                        except ValueError:
                            return None
        return None

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most max_output_kb of output per cell (the completion token always passes)."""
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        key = id(outs)
        used = self._ck_out_bytes.get(key, 0) + size
        self._ck_out_bytes[key] = used
        limit = self._ck_limits.max_output_kb * 1024
        if used > limit and msg.get("msg_type") in ("stream", "display_data", "execute_result", "update_display_data"):
            token = self._ck_accept
            if token and token in content.get("text", ""):
                msg = dict(msg, content=dict(content, text=token + "\n"))
            else:
                if key not in self._ck_truncated:
                    self._ck_truncated.add(key)
                    note = NotebookNode(output_type="stream", name="stderr",
                                        text=f"\n[output truncated: more than {self._ck_limits.max_output_kb} kB]\n")
                    outs.append(note)
                return None
        return super().output(outs, msg, display_id, cell_index)

    def _ck_fail(self, cell, ename, evalue):
        cell.outputs = list(cell.get("outputs", [])) + [error_output(ename, evalue)]

    # -- the main step -------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        role = self._ck_role(cell)
        where = nbgrader_meta(cell).get("grade_id", f"cell {index}")
        if self._ck_dead:
            self._ck_fail(cell, "KernelDied", f"not run: {self._ck_dead} in an earlier cell")
            return cell, resources
        remaining = self._ck_deadline - time.monotonic()
        if remaining <= 1:
            if not any(e["kind"] == "timeout" and "notebook" in e["message"] for e in self._ck_events):
                self._ck_event("timeout", f"the notebook used its {self._ck_limits.notebook_timeout} s; "
                                          "the remaining cells did not run", where)
            self._ck_fail(cell, "NotebookTimeout",
                          f"not run: the notebook exceeded its time limit of {self._ck_limits.notebook_timeout} s")
            return cell, resources
        if not self._ck_started:
            self._ck_started = True
            t0 = time.monotonic()  # the guard imports the notebook's modules: the notebook's own compute
            ready = self._ck_guard(setup_code(self._ck_nonce, self._ck_info), index)
            self._ck_compute += time.monotonic() - t0
            if not ready:
                self._ck_event("error", "the grading guard could not start in the kernel", where)
        token = None
        if role == "test":
            state = self._ck_guard("_coursekit_guard.before_tests()", index)
            if state is None:
                self._ck_event("tampering", "the grading guard was removed or disabled before this test cell; "
                                            "the test cell counts as failed", where)
                self._ck_fail(cell, "GradingGuardError", "the grading guard was disabled: checks not run")
                return cell, resources
            if state.get("changed"):
                shown = ", ".join(state["changed"][:8]) + (" ..." if len(state["changed"]) > 8 else "")
                self._ck_event("tampering", f"before the tests, restored what the student's code had replaced: "
                                            f"{shown}", where)
            token = secrets.token_hex(16)
        elif role == "instructor":
            self._ck_guard("_coursekit_guard.before_trusted()", index)
        original = cell.source
        if token:
            cell.source = original.rstrip("\n") + f"\nprint({token!r})"
            self._ck_accept = token
        old_timeout = self.timeout
        self._ck_cut = bool(self.timeout) and remaining < self.timeout
        self.timeout = int(max(1, min(self.timeout or remaining, remaining)))
        t0 = time.monotonic()
        try:
            cell = self.execute_cell(cell, index, store_history=True)
        except DeadKernelError:
            self._ck_dead = "the kernel died (it crashed, exited, or was killed for exceeding a limit)"
            self._ck_event("error", self._ck_dead, where)
            self._ck_fail(cell, "KernelDied", self._ck_dead)
        except CellTimeoutError as exc:  # e.g. "Timeout waiting for IOPub output": fail this cell, go on
            cell = self.nb.cells[index]
            self._ck_fail(cell, "OutputTimeout", str(exc).splitlines()[0][:200])
        finally:
            self._ck_compute += time.monotonic() - t0
            self.timeout = old_timeout
            cell.source = original
            self._ck_accept = None
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if token:
            seen = False
            for out in cell.outputs:
                if out.get("output_type") == "stream" and token in out.get("text", ""):
                    seen = True
                    out["text"] = "".join(l for l in out["text"].splitlines(True) if token not in l)
            cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and not o.get("text"))]
            if not seen and not errors and not self._ck_dead:
                self._ck_event("tampering", "the test cell did not run to its end although no error was shown",
                               where)
                self._ck_fail(cell, "GradingGuardError", "the checks did not run to completion")
        for out in errors:
            self._ck_classify(out, role, where)
        if role in ("instructor", "test") and not self._ck_dead:
            self._ck_guard("_coursekit_guard.after_trusted()", index)
        return cell, resources

    def _ck_classify(self, out, role, where):
        ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
        text = f"{ename}: {evalue}"
        if ename == "OutputTimeout":
            self._ck_event("error", f"the kernel stopped sending this cell's output ({evalue[:120]})", where)
        elif ename in ("CellTimeoutError", "TimeoutError") or "timeout" in ename.lower():
            if getattr(self, "_ck_cut", False):
                self._ck_event("timeout", f"the notebook used its {self._ck_limits.notebook_timeout} s during this "
                                          "cell; it was stopped and the remaining cells did not run", where)
                self._ck_deadline = 0.0
            else:
                self._ck_event("timeout", f"a cell ran longer than {self._ck_limits.cell_timeout} s and was stopped",
                               where)
        elif ename == "KeyboardInterrupt":
            return  # the interrupt that stops a cell at its time limit (reported just above or below)
        elif ename == "MemoryError" or "alloc" in evalue.lower() and "memory" in evalue.lower():
            self._ck_event("memory", f"ran out of memory ({text[:200]})", where)
        elif ename == "PermissionError" or "Permission denied" in evalue or "readonly database" in evalue:
            self._ck_event("tampering", f"tried to touch files outside its sandbox ({text[:200]})", where)
        elif role == "test" and ename == "AssertionError":
            return  # a failed check: the normal way to lose points
        elif ename in ("KernelDied", "GradingGuardError", "NotebookTimeout"):
            return
        else:
            self._ck_event("error", f"{text[:300]}", where)
