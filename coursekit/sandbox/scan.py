"""A static look at the student's code: patches of library functions, redefined names the tests
use, reaching into the kernel or the grader, references to course files (all ``tampering``).

It runs before any code does, and only reports: what actually runs is confined by the kernel's
sandbox and checked by the guard. :func:`notebook_names` tells the scan and the guard what the
instructor's cells define and import.
"""
from __future__ import annotations

import ast

from coursekit.sandbox.submission import is_solution, is_test
from coursekit.sandbox.records import finding


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

    trusted = [c for c in nb.cells if c.cell_type == "code" and not is_solution(c)
               and c.metadata.get("coursekit", {}).get("origin") != "student"]
    solutions = [c for c in nb.cells if c.cell_type == "code" and is_solution(c)]
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
            if is_test(cell) and isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
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

