"""Where a student's kernel runs: a bubblewrap sandbox where ``bwrap`` works, else rlimits + Landlock.

**bubblewrap** (Debian's ``bubblewrap`` package, ``apt-get install bubblewrap``): the kernel gets its
own network namespace (no network at all: loopback only, inside), its own PID namespace (when the
sandbox ends, every process it started ends with it, double-forked daemons included), private
``/tmp`` and ``/dev/shm`` (size-limited tmpfs), a minimal ``/dev``, a filesystem that holds only the
Python installation, the coursekit package, the data caches (all read-only) and the submission's
own folders (writable), an unprivileged uid of its own (when the grader runs as root; otherwise
the grader's uid in a user namespace) and an environment given at exec from a short allow-list
(``--clearenv``): nothing of the grader's environment is visible, not even in
``/proc/self/environ``. The judge-only parts of the exercise engine are covered by empty mounts.

**Landlock** (fallback, Linux >= 5.13) and **rlimits** (last resort): the kernel starts with the
same clean environment, leaves the network (a namespace of its own where the kernel allows it),
gives up its capabilities and confines its files with Landlock (:mod:`coursekit.sandbox.kernel`).

Either way the connection to the kernel is made of Unix sockets in the submission's ``run/``
folder (ZeroMQ ``ipc`` transport): no TCP port is opened.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ISOLATIONS = ("bubblewrap", "landlock", "rlimits")
# Grading kernels run as uids from this range (one per submission, so RLIMIT_NPROC counts one sandbox).
UID_BASE, UID_SPAN = 200_000, 50_000
# /etc entries a Python kernel needs (the dynamic linker, time zone, names, fonts); nothing else.
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "nsswitch.conf", "passwd",
               "group", "hosts", "host.conf", "fonts", "mime.types", "alternatives", "os-release", "matplotlibrc")
# Variables of the grader that reach the kernel (when set); everything else is given explicitly.
ENV_PASSED = ("PYTHONPATH", "COURSEKIT_DATA", "COURSEKIT_CACHE", "TORCH_HOME", "LANG", "LC_ALL", "TZ")
# Files of an assignment folder that only the grader reads (calibrated bands).
JUDGE_ONLY_FILES = ("bands.json",)


@dataclass
class Box:
    """The folders of one submission's sandbox (all under one temporary root, removed at the end)."""

    root: Path
    uid: int

    @property
    def work(self) -> Path:      # the kernel's working folder: the assignment's files, what the student writes
        return self.root / "work"

    @property
    def home(self) -> Path:      # HOME, caches and configuration of the kernel's libraries
        return self.root / "home"

    @property
    def channel(self) -> Path:   # outputs of the hidden checks, read by the judge after the run
        return self.root / "channel"

    @property
    def run(self) -> Path:       # the connection file and the kernel's Unix sockets
        return self.root / "run"

    @classmethod
    def create(cls, isolation: str) -> "Box":
        """Fresh folders, owned by the uid the kernel will run as under ``isolation``."""
        root = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
        os.chmod(root, 0o755)
        box = cls(root, sandbox_uid() if isolation == "bubblewrap" else os.geteuid())
        for folder in (box.work, box.home, box.channel, box.run):
            folder.mkdir(mode=0o700)
            if os.geteuid() == 0:
                os.chown(folder, box.uid, box.uid)
        return box

    def hand_over(self) -> None:
        """Make what the grader wrote into the working folder the kernel's (it runs as ``uid``)."""
        if os.geteuid() != 0 or self.uid == 0:
            return
        for root, dirs, files in os.walk(self.work):
            for name in dirs + files:
                os.chown(os.path.join(root, name), self.uid, self.uid, follow_symlinks=False)

    def writable(self) -> list[str]:
        return [str(p) for p in (self.work, self.home, self.channel, self.run)]

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def sandbox_uid() -> int:
    """A fresh unprivileged uid for one sandbox when the grader is root; the grader's own otherwise."""
    if os.geteuid() != 0:
        return os.geteuid()
    import secrets

    return UID_BASE + secrets.randbelow(UID_SPAN)


# ---- what the kernel may read --------------------------------------------------------------------

def _course_like(folder: str) -> bool:
    """A PYTHONPATH entry that is a course directory (a development checkout): never mounted whole."""
    return any(os.path.exists(os.path.join(folder, name)) for name in ("nbgrader_config.py", "solutions", "gradebook.db"))


def package_dir() -> str:
    """The folder of the coursekit package that grades (the kernel imports the same one)."""
    import coursekit

    return os.path.dirname(os.path.abspath(coursekit.__file__))


def readable_paths() -> list[str]:
    """What a kernel may read: the Python installation, coursekit, the data caches (real paths)."""
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             package_dir()}
    paths |= {p for p in sysconfig.get_paths().values() if p}
    paths |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and os.path.isdir(entry):
            paths.add(os.path.join(entry, "coursekit") if _course_like(entry) else entry)
    home = Path.home()
    for env, default in (("COURSEKIT_DATA", None), ("COURSEKIT_CACHE", home / ".cache" / "coursekit"),
                         ("TORCH_HOME", home / ".cache" / "torch")):
        value = os.environ.get(env) or default
        if value:
            paths.add(str(value))
    out = set()
    for p in paths:
        if os.path.exists(p):
            out.add(os.path.realpath(p))
    return _outermost(out)


def _outermost(paths) -> list[str]:
    """Drop paths inside another path of the set (one mount covers them)."""
    out: list[str] = []
    for p in sorted(paths, key=len):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return sorted(out)


def carve(readable: list[str], hidden: list[str]) -> tuple[list[str], list[str]]:
    """``readable`` without the ``hidden`` folders, for Landlock (its rules only add rights).

    A folder that holds a hidden one is replaced by its entries, down the path to it; the folders on
    the way stay listable. Returns (readable, list-only folders).
    """
    out, listable = list(readable), []
    for h in hidden:
        h = os.path.realpath(h)
        for root in [p for p in out if h.startswith(p.rstrip("/") + "/")]:
            out.remove(root)
            folder = root
            for part in Path(os.path.relpath(h, root)).parts:
                listable.append(folder)
                out += [os.path.join(folder, e) for e in sorted(os.listdir(folder)) if e != part]
                folder = os.path.join(folder, part)
    return sorted(out), sorted(listable)


def hidden_paths() -> list[str]:
    """The judge-only part of the installed exercise engine (declarations, references, misconception banks,
    bands: ``coursekit/exercises/judge/``, docs/CONVENTIONS.md), which the kernel must not read."""
    path = os.path.join(package_dir(), "exercises", "judge")
    return [path] if os.path.isdir(path) else []


# ---- which isolation runs --------------------------------------------------------------------------

def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """bubblewrap is installed and can create the namespaces grading uses (tried once)."""
    path = bwrap_path()
    if not path:
        return False
    args = [path, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        return subprocess.run(args, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def available_isolation() -> str:
    """``bubblewrap`` where it works, else ``landlock`` where the kernel has it, else ``rlimits``."""
    from coursekit.sandbox.kernel import landlock_abi

    forced = os.environ.get("COURSEKIT_SANDBOX_ISOLATION")
    if forced in ISOLATIONS:
        return forced
    if bwrap_works():
        return "bubblewrap"
    return "landlock" if landlock_abi() >= 1 else "rlimits"


def describe() -> dict:
    """Which sandbox grading uses on this machine, and why (for ``coursekit doctor``)."""
    from coursekit.sandbox.kernel import landlock_abi

    isolation = available_isolation()
    version = None
    if bwrap_path():
        try:
            version = subprocess.run([bwrap_path(), "--version"], capture_output=True, text=True,
                                     timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            version = None
    notes = {
        "bubblewrap": "kernels run in bubblewrap: no network, own PID namespace, private /tmp and /dev/shm, "
                      "minimal /dev, unprivileged uid, clean environment",
        "landlock": "bubblewrap is not usable here (apt-get install bubblewrap): kernels run with rlimits, "
                    "no capabilities and Landlock file rules",
        "rlimits": "neither bubblewrap nor Landlock here: kernels run with rlimits and no capabilities only",
    }
    return {"isolation": isolation, "bubblewrap": version, "landlock_abi": landlock_abi(),
            "grader_is_root": os.geteuid() == 0, "note": notes[isolation]}


# ---- the kernel's command and environment ---------------------------------------------------------

def kernel_env(box: Box, *, threads: int, private_tmp: bool, extra: dict | None = None) -> dict:
    """The kernel's whole environment: a few of the grader's variables, the rest set here.

    ``private_tmp``: /tmp is the sandbox's own (bubblewrap); otherwise temporary files go to HOME.
    """
    env = {k: os.environ[k] for k in ENV_PASSED if os.environ.get(k)}
    home = str(box.home)
    env.update(PATH=os.pathsep.join([os.path.dirname(kernel_python()), "/usr/local/bin", "/usr/bin", "/bin"]),
               HOME=home, USER="student", LOGNAME="student", LANG=env.get("LANG", "C.UTF-8"),
               TMPDIR="/tmp" if private_tmp else os.path.join(home, "tmp"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", MPLBACKEND="agg",
               MPLCONFIGDIR=os.path.join(home, ".mpl"), IPYTHONDIR=os.path.join(home, ".ipython"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), XDG_CONFIG_HOME=os.path.join(home, ".config"),
               JUPYTER_CONFIG_DIR=os.path.join(home, ".jupyter"), JUPYTER_DATA_DIR=os.path.join(home, ".jupyter-data"),
               JUPYTER_RUNTIME_DIR=str(box.run), NBGRADER_EXECUTION="autograde", COURSEKIT_FAST="1",
               COURSEKIT_OFFLINE="1", COURSEKIT_DEVICE="cpu", OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    real_home = Path.home()  # data caches stay where they are (read-only), HOME moves into the sandbox
    env.setdefault("COURSEKIT_CACHE", str(real_home / ".cache" / "coursekit"))
    env.setdefault("TORCH_HOME", str(real_home / ".cache" / "torch"))
    env.update(extra or {})
    return env


def _namespace_args() -> list[str]:
    if os.geteuid() == 0:   # privileged bwrap: no user namespace, the launcher drops to the sandbox uid
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    return ["--unshare-all", "--disable-userns"]


def _system_args() -> list[str]:
    args = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ETC_ENTRIES:
        path = os.path.join("/etc", name)
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_args(box: Box, env: dict, *, tmp_mb: int, hide_judge: bool) -> list[str]:
    """bubblewrap's arguments up to the command (the command follows them).

    ``hide_judge``: cover the engine's judge with an empty folder (when the grader judges outside the
    kernel; an engine that judges in the kernel needs it there).
    """
    readable = [p for p in readable_paths() if not p.startswith("/usr/")]
    parents = set()
    for p in readable + box.writable():
        q = os.path.dirname(p)
        while q not in ("/", ""):
            parents.add(q)
            q = os.path.dirname(q)
    args = [bwrap_path(), *_namespace_args(), "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for tmp in ("/tmp", "/dev/shm"):        # private, size-limited, writable by the sandbox's uid
        args += ["--perms", "1777", "--size", str(tmp_mb * 2**20), "--tmpfs", tmp]
    args += _system_args()
    for p in sorted(parents - {"/tmp", "/usr", "/etc", "/proc", "/dev"}):
        args += ["--perms", "0755", "--dir", p]       # bwrap makes missing parents 0700: the uid must pass
    for p in readable:
        args += ["--ro-bind", p, p]
    for p in hidden_paths() if hide_judge else []:
        args += ["--tmpfs", p]
    for p in box.writable():
        args += ["--bind", p, p]
    args += ["--chdir", str(box.work)]
    if os.geteuid() == 0:   # the launcher needs these to become the sandbox uid, then has none
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    return args


def kernel_python() -> str:
    """This interpreter by a path that exists in the sandbox (a venv's bin/ under its real folder)."""
    if sys.prefix != sys.base_prefix:
        return os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    return os.path.realpath(sys.executable)


def kernel_command(box: Box, config: str, *, isolation: str, env: dict, tmp_mb: int, hide_judge: bool) -> list[str]:
    """The kernelspec argv: the launcher (:func:`coursekit.sandbox.kernel.kernel_main`), in bwrap or not."""
    launcher = [kernel_python(), "-m", "coursekit.sandbox", "kernel", config, "{connection_file}"]
    if isolation == "bubblewrap":
        return bwrap_args(box, env, tmp_mb=tmp_mb, hide_judge=hide_judge) + ["--", *launcher]
    return launcher
