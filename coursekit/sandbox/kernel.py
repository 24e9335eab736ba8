"""The confined kernel: resource limits, no capabilities, Landlock, a clean environment.

``python -m coursekit.sandbox kernel CONNECTION_FILE`` (the sandbox kernelspec's argv) calls
:func:`kernel_main`, which confines its own process and then becomes the IPython kernel: rlimits
(address space, CPU seconds, file size, number of processes, no core files), every capability given
up when it runs as root, and a Landlock ruleset (Linux >= 5.13) under which the kernel reads the
Python installation, the coursekit package and the data caches, writes only its own working
folder, may not connect anywhere over TCP and may not signal processes outside its sandbox.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from coursekit.sandbox.records import Limits


def landlock(read_only: list[str], read_write: list[str], tcp_bind: list[int]) -> int:
    """Restrict this process (and its future children) with Landlock; return the ABI used (0: none)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    create, add_rule, restrict = 444, 445, 446          # syscall numbers (same on x86_64 and arm64)
    abi = libc.syscall(create, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0
    fs_all = (1 << 13) - 1
    if abi >= 2:
        fs_all |= 1 << 13       # REFER
    if abi >= 3:
        fs_all |= 1 << 14       # TRUNCATE
    file_rights = 1 | 2 | 4 | (1 << 14 if abi >= 3 else 0)    # EXECUTE, WRITE_FILE, READ_FILE, TRUNCATE
    read_rights = 1 | 4 | 8                                    # EXECUTE, READ_FILE, READ_DIR

    class Attr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    class NetPort(ctypes.Structure):
        _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]

    attr = Attr(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)   # net: BIND|CONNECT; scope: UNIX|SIGNAL
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    fd = libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")

    def allow(path: str, rights: int):
        try:
            pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not os.path.isdir(path):
                rights &= file_rights
            rule = PathBeneath(rights & fs_all, pfd)
            if libc.syscall(add_rule, fd, 1, ctypes.byref(rule), 0) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
        finally:
            os.close(pfd)

    for path in read_only:
        allow(path, read_rights)
    for path in read_write:
        allow(path, fs_all)
    if abi >= 4:
        for port in tcp_bind:
            rule = NetPort(1, port)
            if libc.syscall(add_rule, fd, 2, ctypes.byref(rule), 0) != 0:
                raise OSError(ctypes.get_errno(), "landlock net rule")
    if libc.prctl(38, 1, 0, 0, 0) != 0:                     # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
    if libc.syscall(restrict, fd, 0) != 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    os.close(fd)
    return abi


def readable_roots() -> list[str]:
    """What a kernel may read: the Python installation, coursekit, system folders, data caches."""
    import sysconfig

    import coursekit

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.abspath(coursekit.__file__))}
    paths |= {p for p in sysconfig.get_paths().values() if p}
    paths |= {p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p}
    for system in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/opt/conda"):
        paths.add(system)
    home = Path.home()
    for env, default in (("COURSEKIT_DATA", None), ("COURSEKIT_CACHE", home / ".cache" / "coursekit"),
                         ("TORCH_HOME", home / ".cache" / "torch")):
        value = os.environ.get(env) or default
        if value:
            paths.add(str(value))
    out = set()
    for p in paths:
        if os.path.exists(p):
            out |= {os.path.abspath(p), os.path.realpath(p)}
    return sorted(out)


def drop_capabilities() -> None:
    """Running as root: give up every capability (kept uid 0, so the interpreter stays readable).

    Without CAP_SYS_RESOURCE the process limit holds, without CAP_DAC_OVERRIDE/CAP_SYS_ADMIN
    Landlock and the file modes decide, and execve cannot give the capabilities back (empty
    bounding set).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    try:
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except OSError:
        last = 40
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)        # PR_CAPBSET_DROP
    libc.prctl(47, 4, 0, 0, 0)              # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def set_rlimits(limits: Limits) -> None:
    """Address space, CPU seconds, file size, no core files, and a process count for this sandbox."""
    import resource

    mb = 1024 * 1024
    cpu = limits.notebook_timeout + 30
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_mb * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = limits.max_processes
    try:  # RLIMIT_NPROC counts every task (thread) of the real uid, not only this sandbox's
        import psutil

        uid = os.getuid()
        nproc += sum(p.info["num_threads"] or 1 for p in psutil.process_iter(["uids", "num_threads"])
                     if p.info["uids"] and p.info["uids"].real == uid)
    except Exception:
        nproc += 4096
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def clean_environment(home: str) -> None:
    """Keep a short allow-list of the grader's variables; HOME and the caches move into the sandbox."""
    keep = ("PATH", "LANG", "LC_", "TZ", "TERM", "COURSEKIT_", "TORCH_", "OMP_", "MKL_", "OPENBLAS_", "CUDA_",
            "NVIDIA_", "NBGRADER_", "PYTHONHASHSEED", "PYDEVD_")
    for key in list(os.environ):  # the instructor's environment (tokens, keys) is not the student's business
        if not key.startswith(keep) or key in ("COURSEKIT_ROOT", "COURSEKIT_SANDBOX_DIR", "COURSEKIT_SANDBOX_LIMITS"):
            os.environ.pop(key)
    real_home = Path.home()  # data caches stay where they are (read-only), HOME moves into the sandbox
    os.environ.setdefault("COURSEKIT_CACHE", str(real_home / ".cache" / "coursekit"))
    os.environ.setdefault("TORCH_HOME", str(real_home / ".cache" / "torch"))
    os.environ.update(HOME=home, TMPDIR=os.path.join(home, "tmp"), MPLCONFIGDIR=os.path.join(home, ".mpl"),
                      IPYTHONDIR=os.path.join(home, ".ipython"), XDG_CACHE_HOME=os.path.join(home, ".cache"),
                      XDG_CONFIG_HOME=os.path.join(home, ".config"), JUPYTER_CONFIG_DIR=os.path.join(home, ".jupyter"),
                      JUPYTER_DATA_DIR=os.path.join(home, ".jupyter-data"), MPLBACKEND="agg",
                      COURSEKIT_FAST="1", COURSEKIT_OFFLINE="1")
    for sub in ("tmp", ".mpl", ".ipython", ".cache", ".config"):
        os.makedirs(os.path.join(home, sub), exist_ok=True)


def kernel_main(argv: list[str]) -> None:
    """Confine this process, then become the IPython kernel (the sandbox kernelspec's argv)."""
    conn, extra = argv[0], argv[1:]
    cfg = json.loads(os.environ.pop("COURSEKIT_KERNEL_SANDBOX"))
    work, home = cfg["workdir"], cfg["home"]
    set_rlimits(Limits.from_dict(cfg["limits"]))
    clean_environment(home)
    readable = readable_roots()
    with open(conn) as f:
        ports = [int(v) for k, v in json.load(f).items() if k.endswith("_port")]
    if os.geteuid() == 0:
        drop_capabilities()  # root without capabilities: RLIMIT_NPROC applies, Landlock guards the files
    if cfg.get("landlock", True):
        try:
            landlock(readable + [conn], [work, home, "/dev"], ports)
        except OSError as exc:
            print(f"coursekit sandbox: Landlock unavailable ({exc}); files are protected by the uid only",
                  file=sys.stderr)
    os.chdir(work)
    # start the kernel in this process (one interpreter start less than exec'ing ipykernel_launcher)
    sys.argv = [sys.executable, "-f", conn, *extra]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


def landlock_abi() -> int:
    """The Landlock ABI version of this machine's kernel (0: not available)."""
    try:
        import ctypes

        abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        return max(0, int(abi))
    except Exception:
        return 0
