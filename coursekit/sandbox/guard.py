"""The tamper guard: runs INSIDE the student's kernel, before any student code.

This module is never imported by the kernel: the executor (:mod:`coursekit.sandbox.execute`) sends
its source, which runs in a fresh module object outside ``sys.modules`` (so student code cannot
import it by name), then calls :func:`make_guard`. Only the standard library is used here.

The guard snapshots the callables of the notebook's libraries (numpy, torch, coursekit and every
submodule imported at that point), builtins, the IPython shell's hooks and ``sys`` hooks. Before
every test cell :meth:`Guard.before_tests` stops the threads the student's code started (an
exception raised in them, repeatedly), restores what the snapshot holds and the names that
instructor cells defined, and reports what it had to do, plus any function written in the notebook
found in a library module (a patch of a module imported after the snapshot). An instructor's *data*
name that the student's code rebound to data (a loop variable named like a check's ``_x``, a model
of their own under the notebook's ``model``: :func:`is_data`) is put back too but reported apart
(``reset``): it cannot change a grade, and the executor tells the student rather than reporting
tampering; a function, class, module, or a name an instructor cell imported, is tampering. After the
test cell :meth:`Guard.after_tests` looks again: whatever changed while the checks ran (a thread
that could not be stopped) is reported, and the executor fails that cell. Reports are single stdout
lines tagged with a secret nonce, read by the executor.
"""
import builtins
import importlib
import json
import os
import sys
import threading
import types

MISSING = object()
# Libraries whose own functions may legitimately add shell callbacks or wrap functions.
SUPPORT_LIBRARIES = ("matplotlib", "matplotlib_inline", "IPython", "ipykernel", "ipywidgets", "tqdm")
FRAMEWORK_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"), ("torch.nn", "Parameter"))
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
SYS_HOOKS = ("stdout", "stderr", "excepthook", "displayhook", "breakpointhook")
NOTEBOOK_NAMES = ("_", "__", "___", "_oh", "Out", "In", "_ih", "_dh", "_ii", "_iii")


def same(a, b) -> bool:
    """Identity, with bound methods compared by function and instance (each access makes a new one)."""
    if a is b:
        return True
    if type(a) is types.MethodType and type(b) is types.MethodType:
        return a.__func__ is b.__func__ and a.__self__ is b.__self__
    return False


def callables(d: dict) -> dict:
    """The callable, non-module values of a namespace."""
    out = {}
    for k, v in list(d.items()):
        try:
            if callable(v) and not isinstance(v, types.ModuleType):
                out[k] = v
        except Exception:
            pass
    return out


def library_dirs(roots) -> tuple:
    """The folders of the notebook's libraries (code written there is not the notebook's)."""
    dirs = []
    for root in list(roots) + list(SUPPORT_LIBRARIES):
        mod = sys.modules.get(root)
        path = getattr(mod, "__file__", None) if mod is not None else None
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def install_dirs() -> tuple:
    """The Python installation's folders: code there is a library's (or the standard library's)."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    return tuple(d.rstrip(os.sep) + os.sep for d in dirs)


def is_data(value) -> bool:
    """A plain value (number, array, tensor, list...) or a model: not a function, class or module.

    A model (a ``torch.nn.Module`` whose call is torch's own) is callable but is its weights: data. One
    whose class redefines ``__call__`` is not. Only the object's type is read, never the object (no
    student code runs here, and an object that overrides ``__class__`` cannot pass for data)."""
    cls = type(value)
    if value is MISSING or not callable(value):
        return not issubclass(cls, types.ModuleType)
    nn = sys.modules.get("torch.nn")
    module = vars(nn).get("Module") if nn is not None else None
    if not (isinstance(module, type) and issubclass(cls, module)):
        return False
    call = next((vars(k)["__call__"] for k in cls.__mro__ if "__call__" in vars(k)), None)
    return call is not None and call is vars(module).get("__call__")


def code_file(obj) -> str | None:
    """The file a plain Python function (or bound method) was written in; None for anything else.

    Any attribute lookup may run a library's code and fail with any exception: torch's lazy modules
    (``torch.onnx``'s ``onnx``) import on first access, ``torch.classes`` raises RuntimeError. Such an
    object is not the notebook's function, and the guard must go on (a guard that raises is read as
    removed, and every later test cell fails as tampering)."""
    try:
        fn = getattr(obj, "__func__", obj)
    except Exception:
        return None
    code = getattr(fn, "__code__", None) if isinstance(fn, types.FunctionType) else None
    return code.co_filename if code is not None else None


class Guard:
    """Snapshot at creation; restore and report before each test cell."""

    def __init__(self, *, nonce: str, preload, roots, student_names, imported=(), builtins_used=(),
                 cell_file: str = ""):
        from IPython import get_ipython

        for name in preload:
            try:
                importlib.import_module(name)
            except Exception:
                pass
        self.nonce, self.roots, self.student_names = nonce, tuple(roots), set(student_names)
        self.imported = set(imported)     # names the instructor's cells bind by import: never data
        self.builtins_used = set(builtins_used)   # builtins the checks call: a notebook name must not hide them
        self.shell = shell = get_ipython()
        kernel = getattr(shell, "kernel", None)
        self.lib_dirs = library_dirs(roots)
        self.modules = {}
        for name, mod in list(sys.modules.items()):
            if isinstance(mod, types.ModuleType) and name.split(".")[0] in self.roots:
                try:
                    self.modules[name] = (mod, callables(dict(vars(mod))))
                except Exception:
                    pass
        self.builtins = dict(vars(builtins))
        classes = []
        for cls in (type(shell), type(kernel) if kernel is not None else None, type(sys.stdout), type(sys.stderr)):
            if cls is not None:
                classes += [c for c in cls.__mro__ if c is not object]
        for modname, attr in FRAMEWORK_CLASSES:
            mod = sys.modules.get(modname)
            if mod is not None and hasattr(mod, attr):
                classes += [c for c in getattr(mod, attr).__mro__ if c is not object]
        self.class_state = {c: callables(dict(vars(c))) for c in dict.fromkeys(classes)}
        self.instance_state = {id(o): (o, callables(dict(vars(o)))) for o in (shell, kernel)
                               if o is not None and hasattr(o, "__dict__")}
        self.list_state = {n: list(getattr(shell, n)) for n in SHELL_LISTS if hasattr(shell, n)}
        self.callbacks = {k: list(v) for k, v in shell.events.callbacks.items()}
        self.sys_state = {k: getattr(sys, k) for k in SYS_HOOKS}
        self.meta_path, self.path_hooks = list(sys.meta_path), list(sys.path_hooks)
        self.custom = (shell.custom_exceptions, shell.CustomTB)
        self.trusted, self.before = {}, {}
        self.threads0 = set(threading.enumerate())
        self.known_dirs = self.lib_dirs + install_dirs()
        # the folder where IPython writes each cell's code (the setup cell's own file tells where)
        self.cell_dir = os.path.dirname(cell_file) + os.sep if os.path.isabs(cell_file) else ""

    # -- what counts as the libraries' own code ----------------------------------------------
    def library_code(self, obj) -> bool:
        """A function written in a library's own files (not in the notebook)."""
        path = code_file(obj)
        return path is not None and path.startswith(self.lib_dirs)

    def library_rewrap(self, new, old) -> bool:
        """A library wrapping its own function later (torch._dynamo wraps torch.manual_seed)."""
        return self.library_code(new) and getattr(new, "__wrapped__", None) is old

    def notebook_code(self, obj) -> bool:
        """A function written in the notebook's cells (IPython compiles each cell into a file of its own)."""
        path = code_file(obj)
        if path is None:
            return False
        fn = getattr(obj, "__func__", obj)
        return (getattr(fn, "__module__", None) == "__main__" or path.startswith("<ipython-input")
                or bool(self.cell_dir) and path.startswith(self.cell_dir))

    # -- restore ------------------------------------------------------------------------------
    def restore(self, names: bool = True) -> tuple:
        """Put back everything the snapshot holds; (what had changed, data names reset).

        ``names``: the instructor cells' names too (not after a test cell, which may rebind them itself).
        """
        changed, reset = [], []
        for part in (self._restore_sys, self._restore_builtins, self._restore_modules, self._restore_classes,
                     self._restore_instances, self._restore_shell):
            part(changed)
        if names:
            self._restore_names(changed, reset)
        return changed + self._notebook_code_in_libraries(), reset

    def _notebook_code_in_libraries(self) -> list:
        """Library modules the snapshot does not hold (imported after it) that hold a function written in
        the notebook: each is put back to the library's own function of that name (found in the
        module's package), or removed; return their names."""
        found = []
        for name, mod in list(sys.modules.items()):
            if (not isinstance(mod, types.ModuleType) or name.split(".")[0] not in self.roots
                    or self.modules.get(name, (None,))[0] is mod):     # the snapshot restores those
                continue
            try:
                items = list(vars(mod).items())
            except Exception:
                continue
            for k, v in items:
                if self.notebook_code(v):
                    original = self._library_original(name, k)
                    try:
                        if original is MISSING:
                            delattr(mod, k)
                        else:
                            setattr(mod, k, original)
                    except Exception:
                        pass
                    found.append(name + "." + k)
        return found

    def _library_original(self, module: str, attr: str):
        """The library's own ``attr`` in ``module``'s package (numpy.testing.x is numpy.testing._private.utils.x)."""
        package = module.rsplit(".", 1)[0] if "." in module else module
        for name, mod in list(sys.modules.items()):
            if name != module and (name == package or name.startswith(package + ".")):
                try:        # a module's __getattr__ may import (and fail): not the original then
                    value = getattr(mod, attr, MISSING) if isinstance(mod, types.ModuleType) else MISSING
                    if value is not MISSING and callable(value) and not self.notebook_code(value):
                        return value
                except Exception:
                    continue
        return MISSING

    def _restore_sys(self, changed):
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        for k, v in self.sys_state.items():
            if not same(getattr(sys, k, MISSING), v):
                setattr(sys, k, v)
                changed.append("sys." + k)
        if sys.meta_path != self.meta_path:
            sys.meta_path[:] = self.meta_path
            changed.append("sys.meta_path")
        if sys.path_hooks != self.path_hooks:
            sys.path_hooks[:] = self.path_hooks
            changed.append("sys.path_hooks")

    def _restore_builtins(self, changed):
        bd = vars(builtins)
        for k, v in self.builtins.items():
            if k not in ("_", "__", "___") and not same(bd.get(k, MISSING), v):
                bd[k] = v
                changed.append("builtins." + k)
        for k in [k for k in bd if k not in self.builtins and not k.startswith("_")]:
            del bd[k]
            changed.append("builtins." + k)

    def _put_back(self, saved: dict, d, put, *, label: str, changed: list) -> None:
        """Restore the saved callables of one namespace ``d`` with ``put(name, value)``."""
        for k, v in list(saved.items()):
            cur = d.get(k, MISSING)
            if same(cur, v):
                continue
            if self.library_rewrap(cur, v):
                saved[k] = cur
                continue
            try:
                put(k, v)
                changed.append(label + k)
            except Exception:   # a read-only slot: nothing the student could have changed either
                pass

    def _restore_modules(self, changed):
        for name, (mod, saved) in self.modules.items():
            if sys.modules.get(name) is not mod:
                sys.modules[name] = mod
                changed.append("sys.modules[%r]" % name)
            d = vars(mod)
            self._put_back(saved, d, d.__setitem__, label=name + ".", changed=changed)

    def _restore_classes(self, changed):
        for cls, saved in self.class_state.items():
            d = vars(cls)
            self._put_back(saved, d, lambda k, v, cls=cls: setattr(cls, k, v), label=cls.__name__ + ".",
                           changed=changed)
            for k in [k for k in d if k not in saved]:
                try:
                    if callable(d[k]):
                        delattr(cls, k)
                        changed.append(cls.__name__ + "." + k)
                except Exception:
                    pass

    def _restore_instances(self, changed):
        for obj, saved in self.instance_state.values():
            d = vars(obj)
            for k, v in saved.items():
                if not same(d.get(k, MISSING), v):
                    d[k] = v
                    changed.append(type(obj).__name__ + "." + k)
            for k in [k for k in d if k not in saved and callable(d[k]) and hasattr(type(obj), k)]:
                del d[k]
                changed.append(type(obj).__name__ + "." + k)

    def _restore_shell(self, changed):
        shell = self.shell
        for n, saved in list(self.list_state.items()):
            cur = getattr(shell, n)
            if cur != saved:
                cur[:] = saved
                changed.append("shell." + n)
        for k, saved in self.callbacks.items():
            cur = shell.events.callbacks.setdefault(k, [])
            for cb in list(cur):
                if cb not in saved:
                    if self.library_code(cb):      # e.g. matplotlib-inline's flush_figures
                        saved.append(cb)
                    else:
                        cur.remove(cb)
                        changed.append("shell.events[%r]" % k)
            for cb in saved:
                if cb not in cur:
                    cur.append(cb)
                    changed.append("shell.events[%r]" % k)
        if (shell.custom_exceptions, shell.CustomTB) != self.custom:
            shell.custom_exceptions, shell.CustomTB = self.custom
            changed.append("shell.set_custom_exc")

    def _restore_names(self, changed, reset):
        """The instructor cells' names, and the builtins the checks use (a notebook name that hides one is
        removed: ``len = lambda x: 3``, or ``sum = 0`` that would break ``sum(...)``); a data name the
        student rebound to data, or a builtin hidden by data, goes to ``reset``."""
        ns = self.shell.user_ns
        if ns.get("__builtins__") is not builtins and ns.get("__builtins__") is not vars(builtins):
            ns["__builtins__"] = builtins
            changed.append("__builtins__")
        for k, v in self.trusted.items():
            cur = ns.get(k, MISSING)
            if k not in self.student_names and cur is not v:
                ns[k] = v
                if k not in self.imported and is_data(v) and is_data(cur):
                    reset.append(k)
                else:
                    changed.append("name " + k)
        for k in sorted(self.builtins_used - set(self.trusted) - self.student_names):
            cur = ns.pop(k, MISSING)
            if cur is MISSING:
                continue
            if is_data(cur):
                reset.append(k)
            else:
                changed.append(f"name {k} (hid the builtin)")

    # -- the executor's entry points ----------------------------------------------------------
    def report(self, **kw) -> None:
        out = self.sys_state["stdout"]
        out.write(self.nonce + " " + json.dumps(kw) + "\n")
        out.flush()

    def student_threads(self) -> list:
        """Threads started since the snapshot that run notebook code (a library's helpers are left alone)."""
        frames = sys._current_frames()
        out = []
        for t in threading.enumerate():
            if t in self.threads0 or not t.is_alive() or t.ident not in frames:
                continue
            frame, ours = frames[t.ident], False
            while frame is not None and not ours:
                path = frame.f_code.co_filename
                ours = not path.startswith("<frozen") and not os.path.realpath(path).startswith(self.known_dirs)
                frame = frame.f_back
            target = getattr(t, "_target", None)
            if ours or (target is not None and self.notebook_code(target)):
                out.append(t)
        return out

    def stop_threads(self, seconds: float = 2.0) -> tuple:
        """Raise SystemExit in the student's threads until they end; (names stopped, names still alive)."""
        import ctypes
        import time

        threads = self.student_threads()
        names = [t.name for t in threads]
        deadline = time.monotonic() + seconds
        while threads and time.monotonic() < deadline:
            for t in threads:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(SystemExit))
            time.sleep(0.01)
            threads = [t for t in threads if t.is_alive()]
        return [n for n in names if n not in {t.name for t in threads}], [t.name for t in threads]

    def before_tests(self) -> None:
        stopped, alive = self.stop_threads()
        changed, reset = self.restore()
        self.report(changed=changed, reset=reset, stopped=stopped, threads=alive)

    def after_tests(self) -> None:
        stopped, alive = self.stop_threads(0.5)
        changed, _ = self.restore(names=False)
        self.report(changed=changed, stopped=stopped, threads=alive)

    def before_trusted(self) -> None:
        self.before.clear()
        self.before.update(self.shell.user_ns)
        self.report(changed=[])

    def after_trusted(self) -> None:
        for k, v in list(self.shell.user_ns.items()):
            if self.before.get(k, MISSING) is not v and not k.startswith("_i") and k not in NOTEBOOK_NAMES:
                self.trusted[k] = v
        self.report(changed=[])


def make_guard(*, nonce: str, preload, roots, student_names, imported=(), builtins_used=()) -> Guard:
    """The guard of one notebook run (call once, from the setup cell, before the first student cell)."""
    return Guard(nonce=nonce, preload=preload, roots=roots, student_names=student_names, imported=imported,
                 builtins_used=builtins_used, cell_file=sys._getframe(1).f_code.co_filename)
