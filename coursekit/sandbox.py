"""Autograding that survives hostile submissions: one sandbox per submission, on top of nbgrader.

A student's notebook is untrusted code. ``grade_job`` grades ONE submission so that nothing it
does reaches the other submissions, the course directory or the gradebook:

1. **Validate and rebuild** (no code runs). The file must be JSON and an nbformat-4 notebook,
   otherwise the grade is 0 with reason ``invalid``. The notebook that is graded is rebuilt from
   the *released* notebook: every instructor cell and every test cell (source, nbgrader metadata,
   points, checksum, grade id) comes from the release; only the solution cells (matched by grade
   id) and the cells the student added come from the submission. Edited, deleted or re-pointed
   test cells are reported as ``tampering`` (the originals run). A deleted solution cell is graded
   as the blank stub. A static scan of the student's code reports patches of library functions,
   redefinitions of names the tests use, reaching into the kernel or the grader, and references
   to course files (``tampering``).
2. **A private course copy.** ``nbgrader autograde`` and ``generate_feedback`` run in a fresh
   temporary course directory that holds only what grading needs: the config, a gradebook with
   the assignment's structure and no students, the non-notebook files of the assignment and the
   rebuilt submission. No solutions, no other students. It runs in its own process group with a
   wall-clock limit (``notebook_timeout`` + a grace period); its results are merged into the real
   gradebook by the parent (:func:`merge_result`), one submission at a time.
3. **A confined kernel.** nbgrader starts the kernel through a kernelspec of the sandbox whose
   launcher (``python -m coursekit.sandbox kernel``) sets resource limits (address space, CPU
   seconds, file size, number of processes, no core files), gives up every capability when it
   runs as root, and applies a Landlock ruleset (Linux >= 5.13): the kernel reads the Python
   installation, the coursekit package and the data caches, writes only its own working folder,
   may not connect anywhere over TCP and may not signal processes outside its sandbox. Reading
   ``solutions/``, the hidden tests in the gradebook or other students' files fails with
   ``PermissionError``. The parent also watches the resident memory of the kernel's processes
   (``memory_mb``) and kills every process of the sandbox at the end (fork bombs included).
4. **A guarded execution** (:class:`GuardedExecute`, nbgrader's ``Execute`` with extra steps).
   Before any student code runs, a guard snapshots the callables of numpy, torch, coursekit and
   builtins, the IPython shell's hooks and ``sys`` hooks. Before every test cell it restores them
   (a patched ``np.allclose``, ``torch.testing.assert_close``, ``builtins.AssertionError``, a custom
   exception handler, an input transformer...) and restores the names that instructor cells defined
   (a redefined helper the tests call), and reports what it had to restore (``tampering``). A test
   cell passes only with positive evidence: no error and a per-cell random token printed by a line
   appended after the test's last line (fail closed: a cell that was cut short, swallowed or
   skipped fails). Cells stop at ``cell_timeout``; once the notebook has used ``notebook_timeout``
   the remaining cells fail (``timeout``), so the tests that ran keep their points. Output beyond
   ``max_output_kb`` per cell is dropped. A kernel that dies fails the remaining cells (``error``).

What it cannot promise: the student's code and the tests share one Python process, so code written
against this grader's internals (ctypes, frames, the kernel's message loop) can still cheat. The
static scan reports those tools (``tampering``) so that a person looks at them; the filesystem,
process, memory and time limits are enforced by the operating system and hold regardless.

Grades are what the student's code really does under the real tests; the reason (``ok``, ``error``,
``timeout``, ``memory``, ``tampering``, ``invalid``) and the findings go into the feedback HTML and
``autograded/<student>/<assignment>/coursekit_grading.json``.
"""
from __future__ import annotations

import ast
import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REASONS = ("ok", "error", "timeout", "memory", "tampering", "invalid")
# The submission's reason is its most serious finding, in this order.
_SEVERITY = {"invalid": 5, "tampering": 4, "memory": 3, "timeout": 2, "error": 1, "ok": 0}
RESULT_FILE = "coursekit_grading.json"


@dataclass
class Limits:
    """Resource limits for one submission (seconds, MiB, kB)."""

    cell_timeout: int = 120          # one cell (nbgrader's ExecutePreprocessor timeout)
    notebook_timeout: int = 600      # all cells of one notebook together
    memory_mb: int = 4096            # resident memory of the kernel and its children
    address_space_mb: int = 16384    # RLIMIT_AS of the kernel (torch alone reserves ~3.5 GB)
    max_processes: int = 64          # RLIMIT_NPROC: tasks the kernel may add to its uid's current count
    max_file_mb: int = 64            # RLIMIT_FSIZE: the largest file the kernel may write
    max_output_kb: int = 256         # stdout/stderr/display data kept per cell
    grace: int = 90                  # extra wall-clock for nbgrader itself (start, feedback)

    @classmethod
    def from_dict(cls, d: dict | None) -> "Limits":
        return cls(**{k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__})


def finding(kind: str, message: str, where: str = "") -> dict:
    assert kind in REASONS + ("info",), kind
    return {"kind": kind, "where": where, "message": message}


def main_reason(findings: list[dict]) -> str:
    """The most serious kind among the findings (``ok`` when there is none)."""
    kinds = [f["kind"] for f in findings if f["kind"] in _SEVERITY]
    return max(kinds, key=_SEVERITY.get, default="ok")


# ----------------------------------------------------------------------------------------------
# 1. validation, rebuild from the release, static scan
# ----------------------------------------------------------------------------------------------

def _nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def _source(cell) -> str:
    src = cell.get("source", "") if isinstance(cell, dict) else ""
    return "".join(src) if isinstance(src, list) else str(src)


def _is_solution(cell) -> bool:
    return bool(_nbgrader_meta(cell).get("solution"))


def _is_test(cell) -> bool:
    m = _nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution")


def load_submission(data: bytes | None, name: str = "notebook") -> tuple[object | None, list[dict]]:
    """Parse a submitted notebook; return (notebook or None, findings)."""
    import nbformat

    if data is None:
        return None, [finding("invalid", f"{name}.ipynb is missing from the submission", name)]
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, [finding("invalid", f"{name}.ipynb is not a text file (not a notebook)", name)]
    except json.JSONDecodeError as exc:
        what = "is truncated or broken JSON" if data.strip().startswith(b"{") else "is not a notebook (not JSON)"
        return None, [finding("invalid", f"{name}.ipynb {what}: {exc.msg} at line {exc.lineno}", name)]
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        return None, [finding("invalid", f"{name}.ipynb is JSON but not a notebook (no list of cells)", name)]
    try:
        nb = nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:  # nbformat raises many kinds
        return None, [finding("invalid", f"{name}.ipynb cannot be read as a notebook: {exc}", name)]
    for cell in nb.cells:
        if not isinstance(cell.get("source", ""), str) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, [finding("invalid", f"{name}.ipynb has a malformed cell", name)]
    return nb, []


def rebuild(student, released, name: str = "notebook"):
    """The notebook to grade: the release, with the student's solution cells and added cells.

    Returns (notebook, findings). Instructor and test cells always come from the release;
    tampering with them is reported.
    """
    import copy

    import nbformat

    findings: list[dict] = []
    rel_cells = released.cells
    rel_by_gid = {_nbgrader_meta(c)["grade_id"]: c for c in rel_cells if _nbgrader_meta(c).get("grade_id")}
    rel_ids = {c.get("id") for c in rel_cells if c.get("id")}
    rel_sources = {_source(c).strip() for c in rel_cells}

    student_solution: dict[str, str] = {}
    seen_gids: set[str] = set()
    anchor_of_extra: list[tuple[str | None, object]] = []   # (anchor key, cell)
    anchor: str | None = None
    for cell in student.cells:
        meta = _nbgrader_meta(cell)
        gid = meta.get("grade_id")
        rel = rel_by_gid.get(gid) if gid else None
        if rel is not None and gid not in seen_gids:
            seen_gids.add(gid)
            rel_meta = _nbgrader_meta(rel)
            if _is_solution(rel):
                student_solution[gid] = _source(cell)
                if not meta.get("solution"):
                    findings.append(finding("tampering", f"the nbgrader metadata of solution cell {gid!r} was edited", gid))
            else:
                changed = [k for k in ("grade", "solution", "locked", "points", "checksum")
                           if meta.get(k) != rel_meta.get(k)]
                if _source(cell).strip() != _source(rel).strip():
                    what = "emptied" if not _source(cell).strip() else "edited"
                    findings.append(finding("tampering", f"test cell {gid!r} was {what} (the original checks ran)", gid))
                elif changed:
                    findings.append(finding("tampering", f"the nbgrader metadata of cell {gid!r} was edited "
                                            f"({', '.join(changed)}); the original was restored", gid))
            anchor = gid
            continue
        if gid and gid not in rel_by_gid:
            findings.append(finding("tampering", f"cell with unknown grade id {gid!r} (not in the release): run as "
                                    "the student's own code, graded by nothing", gid))
        elif gid:
            findings.append(finding("tampering", f"grade id {gid!r} appears twice: the copy ran as the student's own code", gid))
        key = cell.get("id")
        if (key and key in rel_ids) or _source(cell).strip() in rel_sources:
            anchor = f"id:{key}" if key in rel_ids else anchor
            continue  # an instructor cell (possibly edited: the release's version runs)
        anchor_of_extra.append((anchor, cell))

    for gid, cell in rel_by_gid.items():
        if gid in seen_gids:
            continue
        if _is_solution(cell):
            findings.append(finding("error", f"solution cell {gid!r} was deleted: graded as blank", gid))
        else:
            findings.append(finding("tampering", f"test cell {gid!r} was deleted (the original checks ran)", gid))

    out = copy.deepcopy(released)
    cells = []
    extras_at: dict[str | None, list] = {}
    for key, cell in anchor_of_extra:
        extras_at.setdefault(key, []).append(cell)

    def add_extras(key):
        for cell in extras_at.pop(key, []):
            new = (nbformat.v4.new_code_cell(_source(cell)) if cell.cell_type == "code"
                   else nbformat.v4.new_markdown_cell(_source(cell)))
            new.metadata["coursekit"] = {"origin": "student"}
            cells.append(new)

    add_extras(None)
    for cell in out.cells:
        gid = _nbgrader_meta(cell).get("grade_id")
        if gid and _is_solution(cell) and gid in student_solution:
            cell.source = student_solution[gid]
        cell.outputs = [] if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
        cells.append(cell)
        add_extras(gid or (f"id:{cell.get('id')}" if cell.get("id") else None))
    for key in list(extras_at):
        add_extras(key)
    out.cells = cells
    return out, findings


def student_code(nb) -> list[tuple[str, str]]:
    """(where, source) of every code cell that came from the student."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if _is_solution(cell):
            out.append((_nbgrader_meta(cell).get("grade_id", f"cell {i}"), cell.source))
        elif cell.metadata.get("coursekit", {}).get("origin") == "student":
            out.append((f"added cell {i}", cell.source))
    return out


def _python_source(src: str) -> str:
    """Cell source with IPython syntax (magics, !shell) turned into Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)
    except Exception:
        return src


def _imports(tree) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _bound_names(tree) -> set[str]:
    """Top-level names a cell binds (def, class, assignment, import)."""
    names = set()
    for node in tree.body if isinstance(tree, ast.Module) else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
    return names


def _parse(src: str):
    try:
        return ast.parse(_python_source(src))
    except SyntaxError:
        return None


_ALLOWED_MAGICS = {"time", "timeit", "matplotlib", "who", "whos", "pinfo", "pinfo2", "psearch", "config"}
_REACH_NAMES = {
    "get_ipython": "uses the IPython shell object",
    "ctypes": "uses ctypes (raw memory access)",
    "gc": "inspects the garbage collector's objects",
    "inspect": "inspects frames and source code",
    "builtins": "modifies builtins",
    "__builtins__": "modifies builtins",
    "importlib": "re-imports or replaces modules",
    "threading": "starts threads that keep running during the tests",
    "sqlite3": "opens databases (the gradebook is one)",
}
_REACH_ATTRS = {
    "settrace": "installs a trace function", "setprofile": "installs a profile function",
    "_getframe": "walks the interpreter's frames", "modules": "edits sys.modules",
    "excepthook": "replaces the exception hook", "set_custom_exc": "swallows exceptions in the shell",
    "__globals__": "reaches into a function's globals", "__code__": "swaps a function's code",
    "__closure__": "reaches into a closure", "__subclasses__": "walks the class hierarchy",
    "f_back": "walks the interpreter's frames", "f_globals": "walks the interpreter's frames",
    "f_locals": "walks the interpreter's frames",
    "__wrapped__": "fakes a function's origin", "__module__": "fakes a function's origin",
}
_COURSE_WORDS = ("gradebook", "solutions/", "solutions\\", "submitted/", "autograded/", "nbgrader", "hidden test",
                 "BEGIN HIDDEN", ".ipynb")


def scan_code(cells: list[tuple[str, str]], *, module_aliases: set[str], protected_names: set[str],
              builtin_names: set[str]) -> list[dict]:
    """Static look at the student's code for tampering with the tests or the grader.

    module_aliases: names bound to modules by the notebook (np, torch, ...); protected_names:
    names defined by instructor cells that the tests use; builtin_names: builtins the tests use.
    """
    found: list[dict] = []

    def flag(where, msg):
        if not any(f["where"] == where and f["message"] == msg for f in found):
            found.append(finding("tampering", msg, where))

    for where, src in cells:
        tree = _parse(src)
        if tree is None:
            continue
        for node in ast.walk(tree):
            # assignments to attributes of modules: np.allclose = ..., torch.testing.assert_close = ...
            targets = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            elif isinstance(node, ast.Delete):
                targets = node.targets
            for t in targets:
                for sub in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(sub, ast.Attribute):
                        root = sub
                        while isinstance(root, ast.Attribute):
                            root = root.value
                        if isinstance(root, ast.Name) and (root.id in module_aliases or root.id in _REACH_NAMES):
                            flag(where, f"replaces {ast.unparse(sub)} (a library function the checks use; restored "
                                        "before the tests)")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
                first = node.args[0] if node.args else None
                if not (isinstance(first, ast.Name) and first.id == "self"):
                    flag(where, f"{node.func.id}() on {ast.unparse(first) if first else '?'} (can patch a library "
                                "function or a name the tests use)")
            if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
                base = node.value
                if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id in ("globals", "vars", "locals"):
                    flag(where, f"writes names through {base.func.id}() (can redefine what the tests use)")
            if isinstance(node, ast.Name):
                if node.id in _REACH_NAMES and node.id != "get_ipython":  # get_ipython: judged below
                    flag(where, _REACH_NAMES[node.id])
                if isinstance(node.ctx, ast.Store) and node.id in protected_names:
                    flag(where, f"redefines {node.id!r}, which the instructor's cells define and the tests use "
                                "(the original was restored before the tests)")
                if isinstance(node.ctx, ast.Store) and (node.id in builtin_names or node.id.endswith("Error")):
                    flag(where, f"rebinds the builtin {node.id!r} that the tests rely on")
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                if node.name in protected_names:
                    flag(where, f"redefines {node.name!r}, which the instructor's cells define and the tests use "
                                "(the original was restored before the tests)")
                if node.name in builtin_names or node.name.endswith("Error"):
                    flag(where, f"redefines the builtin {node.name!r}")
            if isinstance(node, ast.alias) and node.name.split(".")[0] in _REACH_NAMES:
                flag(where, _REACH_NAMES[node.name.split(".")[0]])
            if isinstance(node, ast.Attribute) and node.attr in _REACH_ATTRS:
                flag(where, _REACH_ATTRS[node.attr])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                base = node.func.value
                if (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "get_ipython"):
                    magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                    if node.func.attr in ("run_line_magic", "run_cell_magic") and magic in _ALLOWED_MAGICS:
                        continue
                    flag(where, f"drives the IPython shell ({node.func.attr}"
                                f"{'(' + repr(magic) + ')' if magic else ''})")
            if isinstance(node, ast.Name) and node.id == "get_ipython":
                parent_ok = False
                for call in ast.walk(tree):
                    if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                            and isinstance(call.func.value, ast.Call) and call.func.value.func is node
                            and call.func.attr in ("run_line_magic", "run_cell_magic") and call.args
                            and isinstance(call.args[0], ast.Constant) and call.args[0].value in _ALLOWED_MAGICS):
                        parent_ok = True
                if not parent_ok:
                    flag(where, _REACH_NAMES["get_ipython"])
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("exec", "eval", "compile", "__import__"):
                if not (node.args and isinstance(node.args[0], ast.Constant)):
                    flag(where, f"runs generated code with {node.func.id}()")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                low = node.value.lower()
                word = next((w for w in _COURSE_WORDS if w.lower() in low), None)
                if word:
                    flag(where, f"refers to course files ({word!r}): reading the hidden tests or the solutions, "
                                "or writing to the gradebook, is not allowed")
    return found


def notebook_names(nb) -> dict:
    """What the guard needs to know about a (released or rebuilt) notebook's trusted cells."""
    import builtins

    trusted = [c for c in nb.cells if c.cell_type == "code" and not _is_solution(c)
               and c.metadata.get("coursekit", {}).get("origin") != "student"]
    solutions = [c for c in nb.cells if c.cell_type == "code" and _is_solution(c)]
    imports, defined, used_by_tests, aliases = set(), set(), set(), set()
    for cell in trusted:
        tree = _parse(cell.source)
        if tree is None:
            continue
        imports |= _imports(tree)
        defined |= _bound_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                aliases |= {(a.asname or a.name).split(".")[0] for a in node.names}
            if _is_test(cell) and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used_by_tests.add(node.id)
    student_names = set()
    for cell in solutions:
        tree = _parse(cell.source)
        if tree is not None:
            student_names |= _bound_names(tree)
    modules = {"numpy", "torch", "coursekit", "math"}
    roots = sorted({m.split(".")[0] for m in imports} | modules)
    return {
        "preload": sorted(imports | {"numpy", "torch"}),
        "roots": roots,
        "student_names": sorted(student_names),
        "protected": sorted((defined & used_by_tests) - student_names - {n for n in defined if n.startswith("_")}
                            | (aliases & used_by_tests) - student_names),
        "aliases": sorted(aliases | {"np", "torch", "numpy"}),
        "builtins_used": sorted(used_by_tests & set(dir(builtins))),
    }


# ----------------------------------------------------------------------------------------------
# 2. the guard that runs inside the kernel
# ----------------------------------------------------------------------------------------------

GUARD_SETUP = r'''
def _coursekit_make_guard(nonce, preload, roots, student_names):
    import builtins, importlib, json, sys, threading, types
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    MISSING = object()

    def same(a, b):
        if a is b:
            return True
        if type(a) is types.MethodType and type(b) is types.MethodType:
            return a.__func__ is b.__func__ and a.__self__ is b.__self__
        return False

    def callables(d):
        out = {}
        for k, v in list(d.items()):
            try:
                if callable(v) and not isinstance(v, types.ModuleType):
                    out[k] = v
            except Exception:
                pass
        return out

    import os
    lib_dirs = []
    for root in list(roots) + ["matplotlib", "matplotlib_inline", "IPython", "ipykernel", "ipywidgets", "tqdm"]:
        mod = sys.modules.get(root)
        path = getattr(mod, "__file__", None) if mod is not None else None
        if path:
            lib_dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    lib_dirs = tuple(lib_dirs)

    def library_code(obj):
        """A function written in a library's own files (not in the notebook)."""
        fn = getattr(obj, "__func__", obj)
        code = getattr(fn, "__code__", None) if isinstance(fn, types.FunctionType) else None
        return code is not None and code.co_filename.startswith(lib_dirs)

    def library_rewrap(new, old):
        """A library wrapping its own function later (torch._dynamo wraps torch.manual_seed)."""
        return library_code(new) and getattr(new, "__wrapped__", None) is old

    modules = {}
    for name, mod in list(sys.modules.items()):
        if isinstance(mod, types.ModuleType) and name.split(".")[0] in roots:
            try:
                modules[name] = (mod, callables(dict(vars(mod))))
            except Exception:
                pass
    pristine_builtins = dict(vars(builtins))
    classes = []
    for cls in (type(shell), type(kernel) if kernel is not None else None, type(sys.stdout), type(sys.stderr)):
        if cls is not None:
            classes += [c for c in cls.__mro__ if c is not object]
    for modname, attr in (("torch", "Tensor"), ("torch.nn", "Module"), ("torch.nn", "Parameter")):
        mod = sys.modules.get(modname)
        if mod is not None and hasattr(mod, attr):
            classes += [c for c in getattr(mod, attr).__mro__ if c is not object]
    class_state = {c: callables(dict(vars(c))) for c in dict.fromkeys(classes)}
    instance_state = {id(o): (o, callables(dict(vars(o)))) for o in (shell, kernel)
                      if o is not None and hasattr(o, "__dict__")}
    list_state = {n: list(getattr(shell, n)) for n in ("input_transformers_cleanup", "input_transformers_post",
                                                         "ast_transformers") if hasattr(shell, n)}
    callbacks = {k: list(v) for k, v in shell.events.callbacks.items()}
    sys_state = {k: getattr(sys, k) for k in ("stdout", "stderr", "excepthook", "displayhook", "breakpointhook")}
    meta_path, path_hooks = list(sys.meta_path), list(sys.path_hooks)
    custom = (shell.custom_exceptions, shell.CustomTB)
    trusted, before = {}, {}
    threads0 = set(threading.enumerate())

    def restore():
        changed = []
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        for k, v in sys_state.items():
            if not same(getattr(sys, k, MISSING), v):
                setattr(sys, k, v)
                changed.append("sys." + k)
        if sys.meta_path != meta_path:
            sys.meta_path[:] = meta_path
            changed.append("sys.meta_path")
        if sys.path_hooks != path_hooks:
            sys.path_hooks[:] = path_hooks
            changed.append("sys.path_hooks")
        bd = vars(builtins)
        for k, v in pristine_builtins.items():
            if k in ("_", "__", "___"):
                continue
            if not same(bd.get(k, MISSING), v):
                bd[k] = v
                changed.append("builtins." + k)
        for k in [k for k in bd if k not in pristine_builtins and not k.startswith("_")]:
            del bd[k]
            changed.append("builtins." + k)
        for name, (mod, saved) in modules.items():
            if sys.modules.get(name) is not mod:
                sys.modules[name] = mod
                changed.append("sys.modules[%r]" % name)
            d = vars(mod)
            for k, v in list(saved.items()):
                cur = d.get(k, MISSING)
                if not same(cur, v):
                    if library_rewrap(cur, v):
                        saved[k] = cur
                        continue
                    d[k] = v
                    changed.append(name + "." + k)
        for cls, saved in class_state.items():
            d = vars(cls)
            for k, v in list(saved.items()):
                cur = d.get(k, MISSING)
                if not same(cur, v):
                    if library_rewrap(cur, v):
                        saved[k] = cur
                        continue
                    try:
                        setattr(cls, k, v)
                        changed.append(cls.__name__ + "." + k)
                    except Exception:
                        pass
            for k in [k for k in d if k not in saved]:
                try:
                    if callable(d[k]):
                        delattr(cls, k)
                        changed.append(cls.__name__ + "." + k)
                except Exception:
                    pass
        for obj, saved in instance_state.values():
            d = vars(obj)
            for k, v in saved.items():
                if not same(d.get(k, MISSING), v):
                    d[k] = v
                    changed.append(type(obj).__name__ + "." + k)
            for k in [k for k in d if k not in saved and callable(d[k]) and hasattr(type(obj), k)]:
                del d[k]
                changed.append(type(obj).__name__ + "." + k)
        for n, saved in list_state.items():
            cur = getattr(shell, n)
            if cur != saved:
                cur[:] = saved
                changed.append("shell." + n)
        for k, saved in callbacks.items():
            cur = shell.events.callbacks.setdefault(k, [])
            for cb in list(cur):
                if cb not in saved:
                    if library_code(cb):      # e.g. matplotlib-inline's flush_figures
                        saved.append(cb)
                    else:
                        cur.remove(cb)
                        changed.append("shell.events[%r]" % k)
            for cb in saved:
                if cb not in cur:
                    cur.append(cb)
                    changed.append("shell.events[%r]" % k)
        if (shell.custom_exceptions, shell.CustomTB) != custom:
            shell.custom_exceptions, shell.CustomTB = custom
            changed.append("shell.set_custom_exc")
        ns = shell.user_ns
        if ns.get("__builtins__") is not builtins and ns.get("__builtins__") is not bd:
            ns["__builtins__"] = builtins
            changed.append("__builtins__")
        for k, v in trusted.items():
            if k not in student_names and ns.get(k, MISSING) is not v:
                ns[k] = v
                changed.append("name " + k)
        return changed

    def report(**kw):
        out = sys_state["stdout"]
        out.write(nonce + " " + json.dumps(kw) + "\n")
        out.flush()

    class Guard:
        def before_tests(self):
            changed = restore()
            threads = [t.name for t in threading.enumerate() if t not in threads0 and t.is_alive()]
            report(changed=changed, threads=threads)

        def before_trusted(self):
            before.clear()
            before.update(shell.user_ns)
            report(changed=[])

        def after_trusted(self):
            ns = shell.user_ns
            for k, v in list(ns.items()):
                if before.get(k, MISSING) is not v and not k.startswith("_i") and k not in ("_", "__", "___", "_oh", "Out", "In", "_ih", "_dh", "_ii", "_iii"):
                    trusted[k] = v
            report(changed=[])

    return Guard()
'''


def _setup_code(nonce: str, info: dict) -> str:
    return (GUARD_SETUP + f"\n_coursekit_guard = _coursekit_make_guard({nonce!r}, {info['preload']!r}, "
            f"{info['roots']!r}, {set(info['student_names'])!r})\ndel _coursekit_make_guard\n"
            f"print({nonce!r} + ' {{\"ready\": true}}')\n")


def _error_output(ename: str, evalue: str):
    from nbformat import NotebookNode

    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _make_guarded_execute():
    """Define GuardedExecute lazily (nbgrader is heavy to import)."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat import NotebookNode
    from nbgrader.preprocessors import Execute

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
            if _is_solution(cell) or cell.metadata.get("coursekit", {}).get("origin") == "student":
                return "student"
            return "test" if _is_test(cell) else "instructor"

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
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(ename, evalue)]

        # -- the main step -------------------------------------------------------------------
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type != "code" or not cell.source.strip():
                return cell, resources
            role = self._ck_role(cell)
            where = _nbgrader_meta(cell).get("grade_id", f"cell {index}")
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
                ready = self._ck_guard(_setup_code(self._ck_nonce, self._ck_info), index)
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

    return GuardedExecute


def __getattr__(name):  # GuardedExecute is built on first use (nbgrader config: coursekit.sandbox.GuardedExecute)
    if name == "GuardedExecute":
        cls = _make_guarded_execute()
        globals()["GuardedExecute"] = cls
        return cls
    raise AttributeError(name)


# ----------------------------------------------------------------------------------------------
# 3. the confined kernel: rlimits, no capabilities, Landlock
# ----------------------------------------------------------------------------------------------

def _landlock(read_only: list[str], read_write: list[str], tcp_bind: list[int]) -> int:
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


def _readable_roots() -> list[str]:
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


def _drop_capabilities() -> None:
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


def kernel_main(argv: list[str]) -> None:
    """Start an IPython kernel inside the sandbox (used as the sandbox kernelspec's argv)."""
    import resource

    conn, extra = argv[0], argv[1:]
    cfg = json.loads(os.environ.pop("COURSEKIT_KERNEL_SANDBOX"))
    limits = Limits.from_dict(cfg["limits"])
    work, home = cfg["workdir"], cfg["home"]
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
    readable = _readable_roots()
    with open(conn) as f:
        ports = [int(v) for k, v in json.load(f).items() if k.endswith("_port")]
    if os.geteuid() == 0:
        _drop_capabilities()  # root without capabilities: RLIMIT_NPROC applies, Landlock guards the files
    if cfg.get("landlock", True):
        try:
            _landlock(readable + [conn], [work, home, "/dev"], ports)
        except OSError as exc:
            print(f"coursekit sandbox: Landlock unavailable ({exc}); files are protected by the uid only",
                  file=sys.stderr)
    os.chdir(work)
    # start the kernel in this process (one interpreter start less than exec'ing ipykernel_launcher)
    sys.argv = [sys.executable, "-f", conn, *extra]
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


# ----------------------------------------------------------------------------------------------
# 4. one submission: the sandbox course, nbgrader in a child process, the results
# ----------------------------------------------------------------------------------------------

def prepare_assignment(root: Path, assignment: str) -> dict:
    """Everything a worker needs to grade ``assignment`` (self-contained: works on another machine).

    Runs ``nbgrader generate_assignment`` once in a private folder: the released notebooks and a
    gradebook with the assignment's structure and no students.
    """
    from coursekit import grading

    root = Path(root)
    src = root / "solutions" / assignment
    with tempfile.TemporaryDirectory(prefix="coursekit-prep-") as tmp:
        prep = Path(tmp)
        shutil.copy(root / "nbgrader_config.py", prep / "nbgrader_config.py")
        shutil.copytree(src, prep / "solutions" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        grading.nbgrader(prep, "generate_assignment", assignment, "--force")
        released = {p.stem: p.read_text() for p in sorted((prep / "notebooks" / assignment).glob("*.ipynb"))}
        gradebook = (prep / "gradebook.db").read_bytes()
    files = {}
    for p in src.rglob("*"):
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts and "__pycache__" not in p.parts:
            files[str(p.relative_to(src))] = base64.b64encode(p.read_bytes()).decode()
    return {"assignment": assignment, "released": released, "config": (root / "nbgrader_config.py").read_text(),
            "gradebook_b64": base64.b64encode(gradebook).decode(), "files": files,
            "structure": _structure(released)}


def _structure(released: dict[str, str]) -> dict:
    """{notebook: {grade_id: points}} of the graded cells."""
    out = {}
    for name, text in released.items():
        cells = json.loads(text)["cells"]
        out[name] = {_nbgrader_meta(c)["grade_id"]: float(_nbgrader_meta(c).get("points", 0))
                     for c in cells if _nbgrader_meta(c).get("grade")}
    return out


_CONFIG_TAIL = '''
# --- appended by coursekit.sandbox: this is a throwaway course directory for one submission ---
import os as _os
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///" + _os.path.join({root!r}, "gradebook.db")
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.Execute.timeout = {cell_timeout}
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
c.Execute.iopub_timeout = 15
from coursekit.sandbox import GuardedExecute as _GuardedExecute
from nbconvert.preprocessors import ClearMetadataPreprocessor as _ClearMeta
from nbgrader.preprocessors import (IgnorePattern as _IP, LimitOutput as _LO, SaveAutoGrades as _SAG,
                                    AssignLatePenalties as _ALP, CheckCellMetadata as _CCM)
c.Autograde.autograde_preprocessors = [_GuardedExecute, _IP, _ClearMeta, _LO, _SAG, _ALP, _CCM]
'''


def _sandbox_processes(root_pid: int, mark: str, exclude: set[int]):
    """The processes of one sandbox: descendants of its nbgrader process and anything carrying its mark."""
    import psutil

    procs = {}
    try:
        for p in psutil.Process(root_pid).children(recursive=True):
            procs[p.pid] = p
    except psutil.Error:
        pass
    me = os.getuid()
    for p in psutil.process_iter(["uids"]):
        if p.pid in procs or not p.info["uids"] or p.info["uids"].real != me:
            continue
        try:
            if p.environ().get("COURSEKIT_SANDBOX_MARK") == mark:
                procs[p.pid] = p
        except psutil.Error:
            pass
    return [p for pid, p in procs.items() if pid not in exclude]


def _kill(procs) -> None:
    for p in procs:
        try:
            p.kill()
        except Exception:
            pass


def grade_job(job: dict) -> dict:
    """Grade one submission in a sandbox. Pure function of ``job`` (picklable both ways).

    job: {"student", "assignment", "kit": prepare_assignment(...), "notebooks": {name: base64 bytes | None},
    "limits": dict}. Returns {"student", "assignment", "reason", "findings", "scores": {notebook: {grade_id:
    score}}, "max_score", "score", "files": {relative path: base64}, "seconds", "compute_seconds", "log"}.
    """
    t0 = time.time()
    kit, student, assignment = job["kit"], job["student"], job["assignment"]
    limits = Limits.from_dict(job.get("limits"))
    structure = kit["structure"]
    result = {"student": student, "assignment": assignment, "findings": [], "files": {}, "log": "",
              "scores": {nb: {gid: 0.0 for gid in cells} for nb, cells in structure.items()},
              "max_score": sum(sum(c.values()) for c in structure.values()), "compute_seconds": 0.0}
    findings = result["findings"]
    box = Path(tempfile.mkdtemp(prefix="coursekit-sandbox-"))
    try:
        import nbformat

        rebuilt = {}
        for name, text in kit["released"].items():
            data = job["notebooks"].get(name)
            nb, f = load_submission(None if data is None else base64.b64decode(data), name)
            findings += f
            if nb is None:
                continue
            released = nbformat.reads(text, as_version=4)
            graded, f = rebuild(nb, released, name)
            findings += f
            info = notebook_names(released)
            findings += scan_code(student_code(graded), module_aliases=set(info["aliases"]),
                                  protected_names=set(info["protected"]),
                                  builtin_names=set(info["builtins_used"]) | {"AssertionError"})
            rebuilt[name] = graded
        if not rebuilt:
            result["files"].update(_invalid_feedback(student, assignment, kit["released"]))
            return _finish(result, t0)

        if job.get("landlock", True) and landlock_abi() < 1:
            findings.append(finding("info", "this machine's kernel has no Landlock: the kernel's file access was "
                                    "not confined (limits, guard and private course copy still applied)"))
        os.chmod(box, 0o711)
        (box / "nbgrader_config.py").write_text(
            kit["config"] + _CONFIG_TAIL.format(root=str(box), cell_timeout=limits.cell_timeout))
        (box / "gradebook.db").write_bytes(base64.b64decode(kit["gradebook_b64"]))
        os.chmod(box / "gradebook.db", 0o600)
        src = box / "solutions" / assignment
        src.mkdir(parents=True)
        for rel, data in kit["files"].items():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(base64.b64decode(data))
        sub = box / "submitted" / student / assignment
        sub.mkdir(parents=True)
        for name, nb in rebuilt.items():
            nbformat.write(nb, sub / f"{name}.ipynb")
        work = box / "autograded" / student / assignment
        work.mkdir(parents=True)
        for folder in (box / "autograded", box / "autograded" / student):
            os.chmod(folder, 0o711)
        home = box / "home"
        home.mkdir()
        runtime = box / "runtime"
        runtime.mkdir(mode=0o711)
        mark = secrets.token_hex(12)
        kdir = box / "share" / "jupyter" / "kernels" / "python3"
        kdir.mkdir(parents=True)
        sandbox_cfg = {"limits": asdict(limits), "workdir": str(work), "home": str(home),
                       "landlock": job.get("landlock", True)}
        (kdir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "coursekit.sandbox", "kernel", "{connection_file}"],
            "display_name": "Python 3 (coursekit sandbox)", "language": "python",
            "env": {"COURSEKIT_KERNEL_SANDBOX": json.dumps(sandbox_cfg), "COURSEKIT_SANDBOX_MARK": mark}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "COURSEKIT_ROOT", "DASK_"))}
        env.update(JUPYTER_PATH=str(box / "share" / "jupyter"), JUPYTER_RUNTIME_DIR=str(runtime),
                   JUPYTER_CONFIG_DIR=str(box / "jupyter-config"), JUPYTER_DATA_DIR=str(box / "jupyter-data"),
                   COURSEKIT_SANDBOX_LIMITS=json.dumps(asdict(limits)), COURSEKIT_SANDBOX_DIR=str(box),
                   COURSEKIT_SANDBOX_MARK=mark, PYTHONWARNINGS="ignore",
                   PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
        log_path = box / "nbgrader.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "coursekit.sandbox", "nbgrader", str(box), assignment,
                                     student, "1" if job.get("feedback", True) else "0"], cwd=box, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + limits.notebook_timeout + limits.grace
        killed = None
        peak = 0
        while proc.poll() is None:
            time.sleep(0.25)
            if time.monotonic() > deadline:
                killed = "timeout"
                break
            kids = _sandbox_processes(proc.pid, mark, {proc.pid, os.getpid()})
            if len(kids) > limits.max_processes:  # RLIMIT_NPROC counts the whole uid: this counts the sandbox
                if not any("processes and was stopped" in f["message"] for f in findings):
                    findings.append(finding("error", f"the submission started more than {limits.max_processes} "
                                            "processes and was stopped; the cells after it did not run"))
                _kill(kids)
                continue
            rss = 0
            for p in kids:
                try:  # proportional set size: forked children share pages, RSS would count them N times
                    rss += p.memory_full_info().pss if len(kids) > 1 else p.memory_info().rss
                except Exception:
                    pass
            peak = max(peak, rss)
            if rss > limits.memory_mb * 1024 * 1024:
                if not any(f["kind"] == "memory" and not f["where"] for f in findings):
                    findings.append(finding("memory", f"the kernel used more than {limits.memory_mb} MB of memory and "
                                        "was stopped; the cells after it did not run"))
                _kill(kids)
        if killed:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()
            findings.append(finding("timeout", f"grading did not finish within {limits.notebook_timeout + limits.grace} s "
                                    "and was stopped: no cell could be graded"))
        leftovers = _sandbox_processes(proc.pid, mark, {os.getpid()})
        if leftovers:
            findings.append(finding("info", f"{len(leftovers)} process(es) left behind by the submission were killed"))
        _kill(leftovers)
        result["log"] = log_path.read_text(errors="replace")[-4000:]
        report = box / "guard_report.json"
        if report.is_file():
            guard = json.loads(report.read_text())
            findings += guard["events"]
            result["compute_seconds"] = guard.get("compute_seconds", 0.0)
        outcome = box / "outcome.json"
        if not killed and outcome.is_file():
            data = json.loads(outcome.read_text())
            result["phases"] = data.get("times", {})
            for nb, grades in data["scores"].items():
                result["scores"].setdefault(nb, {}).update(grades)
            if not data.get("ok"):
                error = data.get("error", "")
                result["log"] += "\n--- nbgrader ---\n" + error[-6000:]
                last = [l for l in error.strip().splitlines() if l.strip()][-1:] or [""]
                findings.append(finding("error", "nbgrader could not grade this submission: " + last[0][-300:]))
        elif not killed:
            findings.append(finding("error", "nbgrader stopped without a result: " + result["log"][-500:]))
        result["peak_rss_mb"] = round(peak / 2**20, 1)
        for base in ("autograded", "feedback"):
            folder = box / base / student / assignment
            if folder.is_dir():
                for p in folder.rglob("*"):
                    if p.is_file() and (base == "feedback" or p.suffix == ".ipynb") and p.stat().st_size < 20 * 2**20:
                        result["files"][f"{base}/{p.relative_to(folder)}"] = base64.b64encode(p.read_bytes()).decode()
        return _finish(result, t0)
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _finish(result: dict, t0: float) -> dict:
    result["reason"] = main_reason(result["findings"])
    result["score"] = round(sum(sum(g.values()) for g in result["scores"].values()), 4)
    result["seconds"] = round(time.time() - t0, 2)
    banner = feedback_banner(result)
    for rel, data in list(result["files"].items()):
        if rel.startswith("feedback/") and rel.endswith(".html"):
            html = base64.b64decode(data).decode("utf-8", errors="replace")
            result["files"][rel] = base64.b64encode(_inject(html, banner).encode()).decode()
    return result


def feedback_banner(result: dict) -> str:
    """HTML: the grading reason and findings, shown at the top of the feedback."""
    import html

    items = "".join(f"<li><b>{html.escape(f['kind'])}</b>{' (' + html.escape(f['where']) + ')' if f['where'] else ''}: "
                    f"{html.escape(f['message'])}</li>" for f in result["findings"])
    colour = "#e8f5e9" if result.get("reason", "ok") == "ok" else "#fff3e0"
    return (f'<div id="coursekit-grading" style="background:{colour};border:1px solid #999;padding:8px;margin:8px">'
            f"<b>Autograding: {html.escape(str(result.get('score')))} / {html.escape(str(result.get('max_score')))}"
            f" points, result: {html.escape(result.get('reason', 'ok'))}</b>"
            f"{'<ul>' + items + '</ul>' if items else ''}</div>")


def _inject(html_text: str, banner: str) -> str:
    i = html_text.find("<body")
    if i < 0:
        return banner + html_text
    j = html_text.find(">", i) + 1
    return html_text[:j] + banner + html_text[j:]


def _invalid_feedback(student: str, assignment: str, notebooks) -> dict:
    """A feedback page per notebook when nothing could be run (the banner says why)."""
    out = {}
    for name in notebooks:
        page = f"<html><head><title>{name}</title></head><body><h1>{assignment} / {name}: {student}</h1></body></html>"
        out[f"feedback/{name}.html"] = base64.b64encode(page.encode()).decode()
    return out


def landlock_abi() -> int:
    """The Landlock ABI version of this machine's kernel (0: not available)."""
    try:
        import ctypes

        abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        return max(0, int(abi))
    except Exception:
        return 0


def _nbgrader_main(box: str, assignment: str, student: str, feedback: str = "1") -> int:
    """Child process: nbgrader autograde + generate_feedback in the sandbox course directory."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    os.chdir(box)
    config = PyFileConfigLoader("nbgrader_config.py", path=box).load_config()
    api = NbGraderAPI(config=config)
    out = {"ok": True, "scores": {}, "times": {}}
    t0 = time.time()
    res = api.autograde(assignment, student, force=True, create=True)
    out["times"]["autograde"] = round(time.time() - t0, 2)
    if not res.get("success"):
        out.update(ok=False, error=(res.get("log") or "")[-8000:] + "\n" + (res.get("error") or ""))
    elif feedback == "1":
        t0 = time.time()
        fb = api.generate_feedback(assignment, student, force=True)
        out["times"]["feedback"] = round(time.time() - t0, 2)
        if not fb.get("success"):
            out["feedback_error"] = fb.get("error") or fb.get("log", "")
    with Gradebook(f"sqlite:///{os.path.join(box, 'gradebook.db')}") as gb:
        try:
            sub = gb.find_submission(assignment, student)
            for nb in sub.notebooks:
                out["scores"][nb.name] = {g.name: float(g.score) for g in nb.grades}
        except MissingEntry:
            out["ok"] = False
    Path(box, "outcome.json").write_text(json.dumps(out))
    return 0


# ----------------------------------------------------------------------------------------------
# 5. many submissions: jobs, workers (processes or Dask), merge into the real gradebook
# ----------------------------------------------------------------------------------------------

def make_jobs(root: Path, assignment: str, students: list[str] | None = None, *, limits: Limits | None = None,
              kit: dict | None = None) -> list[dict]:
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
                     "limits": asdict(limits or Limits())})
    return jobs


def run_jobs(jobs: list[dict], *, workers: int = 1, dask: str | object | None = None, progress: bool = False):
    """Grade jobs N at a time on this machine, or on a Dask cluster; yield results as they finish.

    Locally, ``workers`` grader processes (nbgrader + kernel, one per submission) run at once.

    ``dask``: a scheduler address ("tcp://host:8786") or a ``distributed.Client``.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(jobs), desc="autograding", disable=not progress)
    try:
        if dask is not None:
            from distributed import Client, as_completed

            client = dask if isinstance(dask, Client) else Client(dask)
            try:
                # the kit is the same for every job: ship it once
                kits = {}
                futures = []
                for job in jobs:
                    key = id(job["kit"])
                    if key not in kits:
                        kits[key] = client.scatter(job["kit"], broadcast=True)
                    light = {k: v for k, v in job.items() if k != "kit"}
                    futures.append(client.submit(_grade_with_kit, light, kits[key], pure=False,
                                                 key=f"grade-{job['assignment']}-{job['student']}-{secrets.token_hex(4)}"))
                for fut in as_completed(futures):
                    bar.update()
                    yield fut.result()
            finally:
                if not isinstance(dask, Client):
                    client.close()
        elif workers <= 1:
            for job in jobs:
                bar.update()
                yield grade_job(job)
        else:
            # Each job already runs nbgrader and the kernel in child processes of their own: a thread
            # per worker slot only starts them, waits and collects (no pickling, no __main__ guard).
            from concurrent.futures import ThreadPoolExecutor, as_completed as done

            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coursekit-grader") as pool:
                futures = [pool.submit(grade_job, job) for job in jobs]
                for fut in done(futures):
                    bar.update()
                    yield fut.result()
    finally:
        bar.close()


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
    from coursekit.grading import open_gradebook

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
    record = {k: result[k] for k in ("student", "assignment", "score", "max_score", "reason", "findings",
                                     "seconds", "compute_seconds") if k in result}
    path = root / "autograded" / student / assignment / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1))


def autograde(root: Path, assignment: str, students: list[str] | None = None, *, workers: int = 1,
              dask: str | object | None = None, limits: Limits | None = None, progress: bool = False,
              feedback: bool = True) -> list[dict]:
    """Grade every collected submission of ``assignment`` in sandboxes; merge into gradebook.db.

    Returns the results (one dict per submission, without the file payloads), in student order.
    """
    from coursekit.grading import open_gradebook

    root = Path(root)
    kit = prepare_assignment(root, assignment)
    jobs = make_jobs(root, assignment, students, limits=limits, kit=kit)
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


def load_results(root: Path) -> list[dict]:
    """The per-submission grading records (reason, findings, times) written by :func:`merge_result`."""
    return [json.loads(p.read_text()) for p in sorted(Path(root).glob(f"autograded/*/*/{RESULT_FILE}"))]


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "kernel":
        kernel_main(argv[1:])
        return 0
    if argv and argv[0] == "nbgrader":
        return _nbgrader_main(*argv[1:5])
    print("usage: python -m coursekit.sandbox kernel CONNECTION_FILE | nbgrader BOX ASSIGNMENT STUDENT",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
