"""The guarded execution of one notebook in a sandboxed kernel (runs in the grader's process).

:class:`GuardedRun` is nbclient's ``NotebookClient`` driving a :class:`~coursekit.sandbox.kernels.SandboxKernel`
cell by cell:

- **The guard.** Before any student code runs, :mod:`coursekit.sandbox.guard` is set up in the
  kernel (its source is sent there, see :func:`setup_code`). Before every test cell the guard
  restores what student code replaced and reports it (``tampering``; a data name of the instructor's
  that the student rebound, e.g. a loop variable named like a check's, is only a note: ``info``,
  once per name); after it, it looks again
  (what changed while the checks ran: a background thread). A test cell passes only with positive
  evidence: no error and a per-cell random token printed by a line appended after the test's last
  line (fail closed: a cell that was cut short, swallowed or skipped fails).
- **Time that does not depend on the machine's load.** A cell is charged its wall time less the
  time the kernel waited for a CPU (:func:`~coursekit.sandbox.kernels.kernel_clock`): sleeping
  counts, a busy machine does not. A cell stops at ``cell_timeout`` charged seconds: the kernel is
  interrupted; a kernel that does not yield (an answer that swallows ``KeyboardInterrupt``) is
  killed and restarted, the notebook's earlier cells run again (their time is not charged) and
  grading goes on with the next cell. Once the notebook has been charged ``notebook_timeout``
  seconds the remaining cells fail (``timeout``): the cells that ran keep their points.
- **Memory and processes** of the sandbox are watched while a cell runs: beyond ``memory_mb`` or
  ``max_processes`` the sandbox is killed and the remaining cells fail.
- Output beyond ``max_output_kb`` per cell is dropped; a kernel that dies fails the remaining cells.
"""
from __future__ import annotations

import asyncio
import builtins
import inspect
import json
import secrets
import time
from typing import Awaitable, Callable

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from coursekit.sandbox import guard
from coursekit.sandbox.kernels import SandboxKernel, kernel_clock
from coursekit.sandbox.records import Limits, finding
from coursekit.sandbox.submission import has_hidden_tests, is_solution, is_test, nbgrader_meta

POLL_S = 0.25            # how often a running cell's time, memory and processes are looked at
INTERRUPT_GRACE_S = 5    # charged seconds a kernel gets to stop after an interrupt before it is killed
WALL_FACTOR = 10         # a cell's wall clock may exceed its charged limit this many times (a frozen machine)
MAX_RESTARTS = 3         # kernels killed for not stopping, per notebook
GUARD_TIMEOUT_S = 60     # the guard's own steps (it imports nothing new: the kernel is warm)


def setup_code(nonce: str, info: dict) -> str:
    """Kernel code that runs the guard module's source in a module object of its own and starts it."""
    args = (f"nonce={nonce!r}, preload={info['preload']!r}, roots={info['roots']!r}, "
            f"student_names={set(info['student_names'])!r}, imported={set(info.get('imported', ()))!r}, "
            f"builtins_used={set(info.get('builtins_used', ()))!r}")
    return (f"import types as _ck_types\n_coursekit_guard = _ck_types.ModuleType('coursekit_guard')\n"
            f"exec(compile({inspect.getsource(guard)!r}, '<coursekit-guard>', 'exec'), _coursekit_guard.__dict__)\n"
            f"_coursekit_guard = _coursekit_guard.make_guard({args})\ndel _ck_types\n"
            f"print({nonce!r} + ' {{\"ready\": true}}')\n")


def error_output(ename: str, evalue: str) -> NotebookNode:
    """An nbformat error output with a one-line traceback."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def role_of(cell) -> str:
    """``student`` (solution or added cell), ``test`` or ``instructor``."""
    if is_solution(cell) or cell.metadata.get("coursekit", {}).get("origin") == "student":
        return "student"
    return "test" if is_test(cell) else "instructor"


class GuardedRun(NotebookClient):
    """Execute one rebuilt notebook in a sandboxed kernel; the findings land in ``self.events``."""

    def __init__(self, nb, *, kernel: SandboxKernel, new_kernel: Callable[[int], Awaitable[SandboxKernel]],
                 limits: Limits, info: dict, channel=None):
        super().__init__(nb, km=kernel, timeout=None, allow_errors=True, iopub_timeout=15,
                         raise_on_iopub_timeout=True, startup_timeout=180, shutdown_kernel="immediate")
        self.new_kernel, self.limits, self.info, self.channel = new_kernel, limits, info, channel
        self.events: list[dict] = []
        self.nonce = secrets.token_hex(16)
        self.charged = 0.0               # the notebook's charged seconds (student and instructor cells)
        self.dead: str | None = None     # why no further cell can run
        self.restarts = 0
        self.peak_bytes = 0
        self.leftovers = 0
        self.replayable: list[int] = []  # cells that built the kernel's state (re-run after a restart)
        self.judged: dict[str, float] = {}   # {grade_id: score} set from the judge's verdicts
        self.reset: set[str] = set()         # data names the guard reset (one note each)
        self._out_bytes: dict[int, int] = {}
        self._truncated: set[int] = set()
        self._accept: str | None = None

    # -- the run -----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            try:
                await self._connect()
            except RuntimeError as exc:     # the kernel died before it answered
                self.dead = "the kernel did not start"
                self.event("error", f"{self.dead} ({str(exc)[:200]})")
            if not self.dead and not await self._setup_guard(0):
                self.event("error", "the grading guard could not start in the kernel")
            for index, cell in enumerate(self.nb.cells):
                if cell.cell_type == "code" and cell.source.strip():
                    await self._run_cell(cell, index)
        finally:
            await self._stop_kernel()

    async def _connect(self) -> None:
        self.kc = self.km.client()
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=self.startup_timeout)
        self.kc.allow_stdin = False

    async def stop(self) -> None:
        """Stop the kernel if the run was cut short (run() stops it itself when it ends)."""
        await self._stop_kernel()

    async def _stop_kernel(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            leftovers = await self.km.stop()
            self.leftovers += len(leftovers)
            self.km = None

    def event(self, kind: str, message: str, where: str = "") -> None:
        self.events.append(finding(kind, message, where))

    # -- the guard and other quiet steps -----------------------------------------------------
    async def _quiet(self, code: str, index: int, limit: float) -> tuple[NotebookNode, str | None]:
        """Run code that is not a notebook cell (the guard, a replayed cell); nb.cells stays as it was."""
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        real = self.nb.cells[index]
        try:
            cell, status, _ = await self._watched(cell, index, limit=limit, store_history=False)
        finally:
            self.nb.cells[index] = real
        return cell, status

    async def _guard(self, call: str, index: int) -> dict | None:
        """A guard step; its nonce-tagged JSON line, or None if it did not report."""
        cell, status = await self._quiet(call, index, GUARD_TIMEOUT_S)
        if status is not None:
            return None
        for out in cell.outputs:
            if out.get("output_type") == "stream":
                for line in out.get("text", "").splitlines():
                    if line.startswith(self.nonce + " "):
                        try:
                            return json.loads(line[len(self.nonce) + 1:])
                        except ValueError:
                            return None
        return None

    async def _setup_guard(self, index: int) -> bool:
        return await self._guard(setup_code(self.nonce, self.info), index) is not None

    # -- one cell, watched -------------------------------------------------------------------
    async def _watched(self, cell, index: int, *, limit: float, store_history: bool = True):
        """Execute ``cell`` under the clock, memory and process watch. (cell, status, charged seconds).

        status: None (it ran), "timeout" (interrupted at its limit, it stopped), "unresponsive"
        (killed: it did not stop), "memory", "processes", "dead" (the kernel died), "iopub".
        """
        pid = self.km.kernel_pid()
        start, wall0 = kernel_clock(pid), time.monotonic()
        task = asyncio.ensure_future(self.async_execute_cell(cell, index, store_history=store_history))
        status, interrupted = None, None
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            charged = kernel_clock(pid) - start
            if done:
                break
            if status in ("unresponsive", "memory", "processes"):
                continue            # killed: the task ends with DeadKernelError
            if interrupted is None:
                status = self._check_resources()
                if status is None and (charged > limit or time.monotonic() - wall0 > WALL_FACTOR * limit):
                    status, interrupted = "timeout", charged
                    self.km.interrupt()
            elif charged - interrupted > INTERRUPT_GRACE_S or time.monotonic() - wall0 > WALL_FACTOR * (limit + INTERRUPT_GRACE_S):
                status = "unresponsive"
                self.km.kill()
        try:
            cell = task.result()
        except DeadKernelError:
            status = status if status in ("unresponsive", "memory", "processes") else "dead"
        except CellTimeoutError as exc:       # "Timeout waiting for IOPub output": fail this cell, go on
            cell = self.nb.cells[index]
            cell.outputs = list(cell.get("outputs", [])) + [error_output("OutputTimeout", str(exc).splitlines()[0][:200])]
            status = status or "iopub"
        if status in ("timeout", "unresponsive"):
            charged = min(charged, limit)     # the time it took to stop it is not the notebook's to pay
        return cell, status, charged

    def _check_resources(self) -> str | None:
        procs = self.km.processes()
        mem = self.km.memory_bytes(procs)
        self.peak_bytes = max(self.peak_bytes, mem)
        if len(self.km.student_processes(procs)) > self.limits.max_processes:
            if not any("processes and was stopped" in e["message"] for e in self.events):
                self.event("error", f"the submission started more than {self.limits.max_processes} processes and "
                                    "was stopped; the cells after it did not run")
            self.km.kill()
            return "processes"
        if mem > self.limits.memory_mb * 2**20:
            self.event("memory", f"the kernel used more than {self.limits.memory_mb} MB of memory and was stopped; "
                                 "the cells after it did not run")
            self.km.kill()
            return "memory"
        return None

    # -- the main step ---------------------------------------------------------------------------
    async def _run_cell(self, cell, index: int) -> None:
        role = role_of(cell)
        where = nbgrader_meta(cell).get("grade_id", f"cell {index}")
        hidden = role == "test" and has_hidden_tests(cell)
        if self.dead:
            self._fail(cell, "KernelDied", f"not run: {self.dead} in an earlier cell")
            return
        remaining = self.limits.notebook_timeout - self.charged
        if remaining <= 1:
            if not any(e["kind"] == "timeout" and "notebook" in e["message"] for e in self.events):
                self.event("timeout", f"the notebook used its {self.limits.notebook_timeout} s; the remaining "
                                      "cells did not run", where)
            self._fail(cell, "NotebookTimeout",
                       f"not run: the notebook exceeded its time limit of {self.limits.notebook_timeout} s")
            return
        token = await self._before(cell, role=role, index=index, where=where)
        if token is False:
            return
        limit = min(self.limits.cell_timeout, remaining)
        cut = remaining < self.limits.cell_timeout
        original = cell.source
        if token:
            cell.source = original.rstrip("\n") + f"\nprint({token!r})"
            self._accept = token
        snapshot = self.channel.before() if hidden and self.channel is not None else None
        try:
            cell, status, charged = await self._watched(cell, index, limit=limit)
        finally:
            cell.source = original
            self._accept = None
        self.charged += charged
        if snapshot is not None:
            self.events += self.channel.after(snapshot, cell, where)
        await self._after(cell, index=index, role=role, where=where, status=status, token=token, cut=cut, hidden=hidden)

    async def _before(self, cell, *, role: str, index: int, where: str):
        """The guard step before a cell: a token for a test cell, False when the cell must fail unrun."""
        if role == "test":
            state = await self._guard("_coursekit_guard.before_tests()", index)
            if state is None:
                self.event("tampering", "the grading guard was removed or disabled before this test cell; the test "
                                        "cell counts as failed", where)
                self._fail(cell, "GradingGuardError", "the grading guard was disabled: checks not run")
                return False
            self._report_guard(state, where, "before the tests, restored what the student's code had replaced")
            return secrets.token_hex(16)
        if role == "instructor":
            await self._guard("_coursekit_guard.before_trusted()", index)
        return None

    def _report_guard(self, state: dict, where: str, what: str) -> bool:
        """Findings from a guard report; True when something had changed."""
        changed = state.get("changed") or []
        if state.get("stopped"):
            self.event("tampering", f"stopped the thread(s) the student's code had started, which were still "
                                    f"running when the checks began: {', '.join(state['stopped'][:4])}", where)
        if state.get("threads"):
            self.event("tampering", f"a thread the student's code started could not be stopped: "
                                    f"{', '.join(state['threads'][:4])}", where)
        if changed:
            shown = ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else "")
            self.event("tampering", f"{what}: {shown}", where)
        for name in state.get("reset") or []:
            if name not in self.reset:
                self.reset.add(name)
                self.event("info", f"your variable {name} was reset before the tests ran (" + (
                    f"it hid Python's builtin {name}, which the checks use" if name in vars(builtins) else
                    f"the notebook's own cells define {name}; the checks use their value, not yours") + ")", where)
        return bool(changed)

    async def _after(self, cell, *, index: int, role: str, where: str, status, token, cut: bool, hidden: bool):
        if status in ("timeout", "unresponsive"):
            self._timed_out(cell, where, cut=cut, unresponsive=status == "unresponsive")
        elif status in ("memory", "processes", "dead"):
            self.dead = "the kernel died (it crashed, exited, or was killed for exceeding a limit)"
            if status == "dead":
                self.event("error", self.dead, where)
            self._fail(cell, "KernelDied", self.dead)
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        if token:
            self._check_token(cell, token=token, where=where, errors=errors)
        for out in errors:
            self._classify(out, role=role, where=where, hidden=hidden)
        if status == "unresponsive" and not cut:
            await self._restart(index, where)
        elif status is None and not self.dead:
            if role != "test":
                self.replayable.append(index)
            if role == "test":
                await self._after_tests(cell, index, where)
            if role in ("instructor", "test"):
                await self._guard("_coursekit_guard.after_trusted()", index)

    async def _after_tests(self, cell, index: int, where: str) -> None:
        """What changed while the checks ran (a thread re-patching) fails the cell: fail closed."""
        state = await self._guard("_coursekit_guard.after_tests()", index)
        if state is None:
            self.event("tampering", "the grading guard was removed or disabled while the checks ran", where)
            self._fail(cell, "GradingGuardError", "the grading guard was disabled while the checks ran")
        elif self._report_guard(state, where, "while the checks ran, the student's code replaced"):
            self._fail(cell, "GradingGuardError", "something replaced what the checks use while they ran")

    def _check_token(self, cell, *, token: str, where: str, errors: list) -> None:
        seen = False
        for out in cell.outputs:
            if out.get("output_type") == "stream" and token in out.get("text", ""):
                seen = True
                out["text"] = "".join(line for line in out["text"].splitlines(True) if token not in line)
        cell.outputs = [o for o in cell.outputs if not (o.get("output_type") == "stream" and not o.get("text"))]
        if not seen and not errors and not self.dead:
            self.event("tampering", "the test cell did not run to its end although no error was shown", where)
            self._fail(cell, "GradingGuardError", "the checks did not run to completion")

    def _timed_out(self, cell, where: str, *, cut: bool, unresponsive: bool) -> None:
        if cut:
            self.event("timeout", f"the notebook used its {self.limits.notebook_timeout} s during this cell; it was "
                                  "stopped and the remaining cells did not run", where)
            self.charged = float(self.limits.notebook_timeout)     # the next cells fail unrun
        elif unresponsive:
            self.event("timeout", f"a cell ran longer than {self.limits.cell_timeout} s and did not stop when "
                                  "interrupted (does it catch KeyboardInterrupt?): the kernel was restarted, the "
                                  "notebook's earlier cells ran again and grading went on", where)
        else:
            self.event("timeout", f"a cell ran longer than {self.limits.cell_timeout} s and was stopped", where)
        self._fail(cell, "CellTimeoutError", f"stopped after {self.limits.cell_timeout} s")

    async def _restart(self, index: int, where: str) -> None:
        """A fresh kernel in the same sandbox, the guard, and the cells that built the state, re-run."""
        await self._stop_kernel()
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self.dead = f"the kernel was restarted {MAX_RESTARTS} times"
            return
        self.km = await self.new_kernel(self.restarts)
        await self._connect()
        if not await self._setup_guard(index):
            self.dead = "the grading guard could not start in the restarted kernel"
            self.event("error", self.dead, where)
            return
        for i in list(self.replayable):
            source = self.nb.cells[i].source
            instructor = role_of(self.nb.cells[i]) == "instructor"
            if instructor:
                await self._guard("_coursekit_guard.before_trusted()", i)
            _, status = await self._quiet(source, i, self.limits.cell_timeout)
            if status is not None:
                self.dead = "the notebook's earlier cells could not run again after a restart"
                self.event("error", self.dead, where)
                return
            if instructor:
                await self._guard("_coursekit_guard.after_trusted()", i)

    def _fail(self, cell, ename: str, evalue: str) -> None:
        cell.outputs = list(cell.get("outputs", [])) + [error_output(ename, evalue)]

    def _classify(self, out, *, role: str, where: str, hidden: bool) -> None:
        """One error output of a cell as a finding (never the student's text from a hidden cell)."""
        ename, evalue = out.get("ename", ""), str(out.get("evalue", ""))
        text = f"{ename} in the hidden checks" if hidden else f"{ename}: {evalue}"
        if ename == "OutputTimeout":
            self.event("error", f"the kernel stopped sending this cell's output ({evalue[:120]})", where)
        elif ename in ("KeyboardInterrupt", "KernelDied", "GradingGuardError", "NotebookTimeout", "CellTimeoutError"):
            return  # reported where it happened (the interrupt is the one that stopped a cell at its limit)
        elif ename == "MemoryError" or "alloc" in evalue.lower() and "memory" in evalue.lower():
            self.event("memory", f"ran out of memory ({text[:200]})", where)
        elif ename == "PermissionError" or "Permission denied" in evalue or "readonly database" in evalue:
            self.event("tampering", f"tried to touch files outside its sandbox ({text[:200]})", where)
        elif role == "test" and ename == "AssertionError":
            return  # a failed check: the normal way to lose points
        else:
            self.event("error", text[:300], where)

    # -- output limits -------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        """Keep at most max_output_kb of output per cell (the completion token always passes)."""
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        key = id(outs)
        used = self._out_bytes.get(key, 0) + size
        self._out_bytes[key] = used
        limit = self.limits.max_output_kb * 1024
        if used > limit and msg.get("msg_type") in ("stream", "display_data", "execute_result", "update_display_data"):
            token = self._accept
            if token and token in content.get("text", ""):
                msg = dict(msg, content=dict(content, text=token + "\n"))
            else:
                if key not in self._truncated:
                    self._truncated.add(key)
                    outs.append(NotebookNode(output_type="stream", name="stderr",
                                             text=f"\n[output truncated: more than {self.limits.max_output_kb} kB]\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)

