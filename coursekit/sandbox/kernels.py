"""The grader's side of a sandboxed kernel: start it, find its processes, measure it, stop it.

:class:`SandboxKernel` is jupyter_client's ``AsyncKernelManager`` with the sandbox's kernelspec
(:func:`coursekit.sandbox.isolation.kernel_command`) and the ZeroMQ ``ipc`` transport (Unix sockets
in the submission's ``run/`` folder, reachable across the sandbox's network namespace). It knows the
kernel's processes, so the executor can measure the CPU the student's code really got
(:func:`kernel_clock`), interrupt it and, when it does not yield, kill the whole sandbox.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import time
from dataclasses import asdict

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager

from coursekit.sandbox import isolation
from coursekit.sandbox.isolation import Box
from coursekit.sandbox.records import Limits

KERNEL_NAME = "coursekit-sandbox"


class _OneSpec(KernelSpecManager):
    """A kernelspec manager that knows one kernel: this sandbox's (no kernel.json on disk)."""

    def __init__(self, spec: KernelSpec, **kw):
        super().__init__(**kw)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str, *args, **kw) -> KernelSpec:
        return self._spec

    def find_kernel_specs(self) -> dict:
        return {KERNEL_NAME: ""}


class SandboxKernel(AsyncKernelManager):
    """One kernel in the sandbox of one submission."""

    def __init__(self, box: Box, *, limits: Limits, isolation_kind: str, preload: list[str], env: dict,
                 name: str = "kernel", hide_judge: bool = False):
        mark = secrets.token_hex(12)    # finds the kernel's processes where no PID namespace holds them
        env = dict(env, COURSEKIT_SANDBOX_MARK=mark)
        readable, listable = isolation.readable_paths(), []
        if hide_judge:      # Landlock only adds rights: the readable folders are listed around the judge
            readable, listable = isolation.carve(readable, isolation.hidden_paths())
        config = json.dumps({"limits": asdict(limits), "isolation": isolation_kind, "uid": box.uid,
                             "work": str(box.work), "readable": readable, "listable": listable,
                             "writable": box.writable(), "preload": preload})
        argv = isolation.kernel_command(box, config, isolation=isolation_kind, env=env,
                                        tmp_mb=limits.max_file_mb * 4, hide_judge=hide_judge)
        spec = KernelSpec(argv=argv, display_name="Python 3 (coursekit sandbox)", language="python",
                          interrupt_mode="signal", env={})
        super().__init__(kernel_name=KERNEL_NAME, kernel_spec_manager=_OneSpec(spec), transport="ipc",
                         ip=str(box.run / name), connection_file=str(box.run / f"{name}.json"))
        self.box, self.limits, self.isolation_kind, self.mark = box, limits, isolation_kind, mark
        self.log_path = box.root / f"{name}.log"
        self.env = env
        self._kernel_pid: int | None = None

    async def start(self) -> None:
        """Start the sandbox (returns at once: the kernel boots and imports its libraries meanwhile).

        The kernel's own stdout and stderr (not the cells': those travel as messages) go to
        ``<box>/<name>.log``, out of the kernel's reach.
        """
        with open(self.log_path, "ab") as log:
            await self.start_kernel(env=self.env, extra_arguments=["--HistoryManager.hist_file=:memory:"],
                                    stdout=log, stderr=log)

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return ""

    # -- its processes -------------------------------------------------------------------------
    @property
    def launcher_pid(self) -> int | None:
        process = getattr(self.provisioner, "process", None)
        return process.pid if process is not None else None

    def kernel_pid(self) -> int | None:
        """The pid (in the grader's PID namespace) of the Python process that is the kernel."""
        if self._kernel_pid is None:
            for p in self.processes():
                try:
                    if p.cmdline()[1:4] == ["-m", "coursekit.sandbox", "kernel"]:
                        self._kernel_pid = p.pid
                        break
                except Exception:
                    pass
        return self._kernel_pid

    def student_processes(self, procs: list) -> list:
        """The processes the student's code started (not the launcher, bubblewrap or the kernel)."""
        import psutil

        kernel = self.kernel_pid()
        own = {self.launcher_pid, kernel}
        try:    # bubblewrap's init of the PID namespace, between the launcher and the kernel
            own.add(psutil.Process(kernel).ppid() if kernel else None)
        except psutil.Error:
            pass
        return [p for p in procs if p.pid not in own]

    def processes(self) -> list:
        """Every process of this sandbox (the launcher's descendants, and anything carrying its mark)."""
        import psutil

        pid = self.launcher_pid
        procs = {}
        if pid is not None:
            try:
                top = psutil.Process(pid)
                procs[pid] = top
                procs.update({p.pid: p for p in top.children(recursive=True)})
            except psutil.Error:
                pass
        if self.isolation_kind != "bubblewrap":     # no PID namespace: a double fork leaves the tree
            for p in psutil.process_iter():
                if p.pid in procs or p.pid == os.getpid():
                    continue
                try:
                    if p.environ().get("COURSEKIT_SANDBOX_MARK") == self.mark:
                        procs[p.pid] = p
                except psutil.Error:
                    pass
        return list(procs.values())

    def memory_bytes(self, procs: list) -> int:
        """Resident memory of the sandbox (proportional set size when forked children share pages)."""
        total = 0
        for p in procs:
            try:
                total += p.memory_full_info().pss if len(procs) > 1 else p.memory_info().rss
            except Exception:
                pass
        return total

    def interrupt(self) -> None:
        """SIGINT to the kernel itself (bubblewrap does not pass signals on)."""
        pid = self.kernel_pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                pass

    def kill(self) -> int:
        """Kill every process of the sandbox; return how many were found besides the kernel's launcher."""
        procs = self.processes()
        for p in procs:
            try:
                p.kill()
            except Exception:
                pass
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            try:
                process.wait(timeout=10)
            except Exception:
                pass
        return len(procs)

    async def stop(self) -> list:
        """Shut the kernel down now; return the processes that outlived it (they are killed)."""
        try:
            if self.has_kernel:
                await self.shutdown_kernel(now=True)
        except Exception:
            pass
        leftovers = [p for p in self.processes() if p.pid != self.launcher_pid]
        self.kill()
        try:
            await self.cleanup_resources()
        except Exception:
            pass
        return leftovers


def kernel_clock(pid: int | None) -> float:
    """Seconds the kernel's main thread has been charged: wall time minus time spent waiting for a CPU.

    ``/proc/<pid>/schedstat`` holds (time on a CPU, time runnable but waiting, slices). A cell's
    charged time is its wall time less the wait: on a busy machine CPU-bound code is charged what
    it would have taken on an idle one, while sleeping or waiting for I/O is charged in full.
    """
    if pid is None:
        return time.monotonic()
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            waited = int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        waited = 0.0
    return time.monotonic() - waited
