"""The kernel's side of the sandbox: the launcher that confines its own process, then becomes the kernel.

``python -m coursekit.sandbox kernel CONFIG CONNECTION_FILE`` (the sandbox kernelspec's argv, see
:mod:`coursekit.sandbox.isolation`) calls :func:`kernel_main`. It sets rlimits (address space, CPU
seconds, file size, number of processes, no core files), then

- inside bubblewrap, as root: gives up the capability bounding set and becomes the sandbox's own
  unprivileged uid (no capability left, no_new_privs);
- without bubblewrap: leaves the network (a namespace of its own), gives up every capability when it
  runs as root, and applies a Landlock ruleset (Linux >= 5.13) under which the kernel reads the
  Python installation, the coursekit package and the data caches, writes only the submission's
  folders, may not use TCP at all and may not signal processes outside its sandbox.

It imports the notebook's libraries (the pre-started kernel is a warm one), then starts ipykernel in
this same process. The environment was given at exec (a short allow-list): nothing to clean here.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from coursekit.sandbox.records import Limits

# Landlock (fallback isolation): system folders a Python kernel reads, devices it may write.
SYSTEM_READABLE = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev"]
DEVICES_WRITABLE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty")


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


def drop_capabilities() -> None:
    """Running as root: give up every capability (kept uid 0, so the interpreter stays readable).

    Without CAP_SYS_RESOURCE the process limit holds, without CAP_DAC_OVERRIDE/CAP_SYS_ADMIN
    Landlock and the file modes decide, and execve cannot give the capabilities back (empty
    bounding set).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    last = _last_capability()
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


def set_rlimits(limits: Limits, *, own_uid: bool) -> None:
    """Address space, CPU seconds, file size, no core files, and a process count for this sandbox.

    RLIMIT_NPROC counts every task (thread) of the real uid: with a uid of its own (bubblewrap as
    root) that is this sandbox alone; otherwise the tasks the uid already runs are added.
    """
    import resource

    mb = 1024 * 1024
    cpu = limits.notebook_timeout + 30
    resource.setrlimit(resource.RLIMIT_AS, (limits.address_space_mb * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_mb * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = limits.max_processes
    if not own_uid:
        try:
            import psutil

            uid = os.getuid()
            nproc += sum(p.info["num_threads"] or 1 for p in psutil.process_iter(["uids", "num_threads"])
                         if p.info["uids"] and p.info["uids"].real == uid)
        except Exception:
            nproc += 4096
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def become(uid: int) -> None:
    """Root inside bubblewrap: give up the bounding set, then become ``uid`` (every capability goes)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    last = _last_capability()
    for cap in range(last + 1):
        libc.prctl(24, cap, 0, 0, 0)        # PR_CAPBSET_DROP
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if libc.prctl(38, 1, 0, 0, 0) != 0:     # PR_SET_NO_NEW_PRIVS: no setuid binary gives anything back
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS)")
    libc.prctl(4, 1, 0, 0, 0)               # PR_SET_DUMPABLE: /proc/self belongs to the new uid, as usual


def _last_capability() -> int:
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except OSError:
        return 40


def leave_network() -> bool:
    """A network namespace of its own (loopback only): as root, or in a new user namespace."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    newnet, newuser = 0x40000000, 0x10000000
    flags = newnet if os.geteuid() == 0 else newnet | newuser
    return libc.unshare(flags) == 0


def kernel_main(argv: list[str]) -> None:
    """Confine this process, then become the IPython kernel (the sandbox kernelspec's argv).

    ``argv``: the sandbox configuration (JSON: limits, isolation, uid, readable and writable
    folders), the connection file, then the kernel's extra arguments.
    """
    cfg, conn, extra = json.loads(argv[0]), argv[1], argv[2:]
    limits, isolation = Limits.from_dict(cfg["limits"]), cfg["isolation"]
    root = os.geteuid() == 0
    set_rlimits(limits, own_uid=isolation == "bubblewrap" and root)
    if isolation == "bubblewrap":
        if root:
            os.chown(conn, cfg["uid"], cfg["uid"])
            become(cfg["uid"])
    else:
        if not leave_network():
            print("coursekit sandbox: no network namespace; Landlock blocks TCP only", file=sys.stderr)
        if root:
            drop_capabilities()  # root without capabilities: RLIMIT_NPROC applies, Landlock guards the files
        if isolation == "landlock":
            try:
                landlock(cfg["readable"] + SYSTEM_READABLE, cfg["writable"] + list(DEVICES_WRITABLE), [])
            except OSError as exc:
                print(f"coursekit sandbox: Landlock unavailable ({exc}); files are protected by the uid only",
                      file=sys.stderr)
    for sub in ("tmp", ".mpl", ".ipython", ".cache", ".config"):
        os.makedirs(os.path.join(os.environ["HOME"], sub), exist_ok=True)
    os.chdir(cfg["work"])
    _preload(cfg.get("preload", []))
    # start the kernel in this process (one interpreter start less than exec'ing ipykernel_launcher)
    sys.argv = [sys.executable, "-f", conn, *extra]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


def _preload(modules: list[str]) -> None:
    """Import the notebook's libraries before the kernel answers (a pre-started kernel is a warm one)."""
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:       # the notebook's own import will show the error where it belongs
            pass


def landlock_abi() -> int:
    """The Landlock ABI version of this machine's kernel (0: not available)."""
    try:
        import ctypes

        abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        return max(0, int(abi))
    except Exception:
        return 0
