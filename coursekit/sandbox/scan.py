"""A static look at the student's code: patches of library functions, redefined names the tests
use, reaching into the kernel or the grader, references to course files, answer objects that lie
in comparisons, processes and network use, the grading internals and third-party implementations
of the exercises (all ``tampering``: a person should look).

It runs before any code does, and only reports: what actually runs is confined by the kernel's
sandbox and checked by the guard. :func:`notebook_names` tells the scan and the guard what the
instructor's cells define and import.
"""
from __future__ import annotations

import ast

from coursekit.sandbox.submission import is_solution, is_test
from coursekit.sandbox.records import finding

JUDGE_MODULES = ("coursekit.exercises.judge", "coursekit.sandbox", "coursekit.grading")   # never preloaded


def _python_source(src: str) -> str:
    """Cell source with IPython syntax (magics, !shell) turned into Python."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)
    except Exception:
        return src


def _imports(tree) -> set[str]:
    """Modules a cell imports; ``from pkg import name`` counts ``pkg.name`` too (it may be a submodule)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names if a.name != "*"}
    return names


def _binding_kinds(tree) -> dict[str, set[str]]:
    """Top-level names a cell binds, each with how: ``def`` (a def, class or lambda), ``import`` or
    ``assign`` (an assignment, loop or with target: data, or a callable that only running tells)."""
    kinds: dict[str, set[str]] = {}
    for node in tree.body if isinstance(tree, ast.Module) else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            kinds.setdefault(node.name, set()).add("def")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                kinds.setdefault((a.asname or a.name).split(".")[0], set()).add("import")
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            how = "def" if isinstance(getattr(node, "value", None), ast.Lambda) else "assign"
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    kinds.setdefault(sub.id, set()).add(how)
    return kinds


def _bound_names(tree) -> set[str]:
    """Top-level names a cell binds (def, class, assignment, import)."""
    return set(_binding_kinds(tree))


def _module_bindings(tree) -> dict[int, bool]:
    """{id of a node that binds a name of the notebook's namespace (the module scope): whether it runs
    when the cell runs} (False: in a function, through ``global``, so it may run while the checks do).

    A function's parameters and locals, a comprehension's variables and a class body's attributes
    live in scopes of their own and never rebind what the instructor's cells define; a ``global``
    declaration (or a walrus in a module-level comprehension) does reach the module scope.
    """
    found: dict[int, bool] = {}

    def visit(node, *, module: bool, declared: frozenset) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if module or node.name in declared:
                found[id(node)] = module
            for sub in node.decorator_list + getattr(node, "bases", []) + getattr(node, "keywords", []):
                visit(sub, module=module, declared=declared)
            if not isinstance(node, ast.ClassDef):
                for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
                    visit(default, module=module, declared=declared)
            inner = frozenset(n for g in ast.walk(node) if isinstance(g, ast.Global) for n in g.names)
            for sub in node.body:
                visit(sub, module=False, declared=inner)
            return
        if isinstance(node, ast.Lambda):
            return                                             # its parameters are its own
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            for sub in ast.walk(node):                         # only a walrus leaks out of a comprehension
                if isinstance(sub, ast.NamedExpr) and (module or sub.target.id in declared):
                    found[id(sub.target)] = module
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if module or node.id in declared:
                found[id(node)] = module
        for sub in ast.iter_child_nodes(node):
            visit(sub, module=module, declared=declared)

    visit(tree, module=True, declared=frozenset())
    return found


def _builtin_exception(name: str) -> bool:
    """A builtin exception class (AssertionError, ValueError, ...): the checks raise and catch them;
    a student's own ``class ShapeError(ValueError)`` is not one."""
    import builtins

    obj = getattr(builtins, name, None)
    return isinstance(obj, type) and issubclass(obj, BaseException)


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
    "f_locals": "walks the interpreter's frames", "tb_frame": "walks the interpreter's frames",
    "gi_frame": "walks the interpreter's frames", "currentframe": "walks the interpreter's frames",
    "__wrapped__": "fakes a function's origin", "__module__": "fakes a function's origin",
    "as_subclass": "turns a tensor into a subclass of its own (an object that can lie in comparisons)",
    "_make_subclass": "turns a tensor into a subclass of its own (an object that can lie in comparisons)",
    "_make_wrapper_subclass": "turns a tensor into a subclass of its own (an object that can lie in comparisons)",
}
# os functions that start a process of its own or leave the kernel's session (os.fork alone is not here:
# a fork's children stay in the sandbox's process tree and limits).
_PROCESS_ATTRS = {"setsid", "setpgrp", "setpgid", "forkpty", "system", "popen", "posix_spawn", "posix_spawnp",
                  "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
                  "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe"}
_PROCESS_MODULES = {"subprocess", "pty", "pexpect", "daemon"}
_NETWORK_MODULES = {"socket", "ssl", "urllib", "http", "requests", "httpx", "aiohttp", "ftplib", "smtplib", "asyncssh"}
# The grader's own code and the engine's judge: never an answer's business.
_GRADING_MODULES = ("coursekit.exercises.judge", "coursekit.sandbox", "coursekit.grading", "coursekit.feedback",
                    "coursekit.course_config", "coursekit.coursedir", "nbgrader", "nbclient", "jupyter_client",
                    "ipykernel", "zmq")
_JUDGE_NAMES = {"EXERCISES", "get", "register", "LECTURES", "Exercise", "Misconception", "Probe", "Property", "Bands",
                "Diagnosis", "Answer", "diagnose", "judge", "judge_records", "bands", "bands_path", "calibrate",
                "calibrate_assignment", "selfstudy", "registry", "verdict"}
# Libraries that implement the course's exercises: an answer built on them is not the student's own.
_SHORTCUT_MODULES = {"torchattacks": "adversarial attacks", "art": "adversarial attacks (ART)",
                     "foolbox": "adversarial attacks", "cleverhans": "adversarial attacks",
                     "advertorch": "adversarial attacks", "pytorch_fid": "the Fréchet distance",
                     "torchmetrics": "FID, IS and other GAN metrics", "torch_fidelity": "FID, IS and KID",
                     "cleanfid": "the Fréchet distance",
                     "prdc": "precision, recall, density and coverage", "statsmodels": "confidence intervals"}
_SHORTCUT_NAMES = {"binomtest": "the binomial test (scipy)", "binom_test": "the binomial test (scipy)",
                   "proportion_confint": "confidence intervals (statsmodels)"}
# (scipy.linalg.sqrtm is a matrix function like torch.linalg.eigvals, not a Fréchet distance: the engine's
# shortcut list for that exercise, coursekit/exercises/judge/lecture07.py, does not name it either.)
# Special methods that let an answer object decide comparisons and conversions for itself.
_ALWAYS_LYING = {"__torch_function__", "__torch_dispatch__", "__array_function__", "__array_ufunc__",
                 "__array_wrap__", "__array_finalize__", "__array_priority__"}
_LYING_ON_VALUES = {"__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__float__", "__int__", "__bool__",
                    "__index__", "__array__", "__abs__", "__len__", "__hash__", "__round__", "__sub__", "__rsub__",
                    "__getattribute__", "__getattr__", "__class__"}
_VALUE_BASES = {"float", "int", "complex", "bool", "str", "list", "tuple", "dict", "ndarray", "Tensor", "Parameter",
                "generic", "floating", "float64", "float32"}
# Settings, not functions: a student may fix them for reproducibility (a bool, nothing else).
_SETTING_PREFIXES = ("torch.backends.",)
_SETTINGS = {"deterministic", "benchmark", "enabled", "allow_tf32", "allow_fp16_reduced_precision_reduction",
             "allow_bf16_reduced_precision_reduction"}
_PROSE_WORDS = ("nbgrader", "hidden test")    # words, not paths: fine in a docstring
_COURSE_WORDS = ("gradebook", "solutions/", "solutions\\", "submitted/", "autograded/", "nbgrader", "hidden test",
                 "BEGIN HIDDEN", ".ipynb", "bands.json", "exercises/judge", "COURSEKIT_GRADING_CHANNEL")


class _Scan:
    """The rules, one method each; ``flag`` keeps one finding per (cell, message)."""

    def __init__(self, *, module_aliases: set[str], protected_names: set[str], builtin_names: set[str],
                 data_names: set[str]):
        self.modules, self.protected, self.builtins = set(module_aliases), protected_names, builtin_names
        self.data = data_names
        self.found: list[dict] = []
        self.bindings: dict[int, bool] = {}  # per cell: nodes that bind a module-scope name (True: as the cell runs)
        self.called: set[int] = set()        # per cell: nodes that are called (x.modules() is nn.Module's)
        self.docstrings: set[int] = set()    # per cell: docstrings (prose)
        self.as_cell_runs: set[int] = set()  # per cell: names bound as the cell runs, to what may be data

    def flag(self, where: str, msg: str) -> None:
        if not any(f["where"] == where and f["message"] == msg for f in self.found):
            self.found.append(finding("tampering", msg, where))

    def cell(self, where: str, tree) -> None:
        self.bindings = _module_bindings(tree)
        lambdas = {id(t) for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                   and isinstance(n.value, ast.Lambda) for t in ast.walk(n) if isinstance(t, ast.Name)}
        self.as_cell_runs = {i for i, direct in self.bindings.items() if direct and i not in lambdas}
        self.called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        self.docstrings = {id(body[0].value) for n in ast.walk(tree)
                           if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                           and (body := n.body) and isinstance(body[0], ast.Expr)
                           and isinstance(body[0].value, ast.Constant)}
        for node in ast.walk(tree):     # the student's own imports are modules too (import coursekit.x as e)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self.modules |= {(a.asname or a.name).split(".")[0] for a in node.names}
        for node in ast.walk(tree):
            for rule in (self.patches, self.names, self.reach, self.ipython, self.generated_code, self.strings,
                         self.imports, self.processes, self.lying_classes):
                msg = rule(node, tree)
                for m in ([msg] if isinstance(msg, str) else msg or []):
                    self.flag(where, m)

    # -- the rules ----------------------------------------------------------------------------
    def patches(self, node, tree):
        """Assignments to attributes of modules (np.allclose = ...), setattr/delattr, writes via globals()."""
        out = []
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
                    if isinstance(root, ast.Name) and (root.id in self.modules or root.id in _REACH_NAMES):
                        if (ast.unparse(sub).startswith(_SETTING_PREFIXES) and sub.attr in _SETTINGS
                                and isinstance(node, ast.Assign)
                                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool)):
                            continue
                        out.append(f"replaces {ast.unparse(sub)} (a library function the checks use; restored "
                                   "before the tests)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr"):
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Name) and first.id == "self"):
                out.append(f"{node.func.id}() on {ast.unparse(first) if first else '?'} (can patch a library "
                           "function or a name the tests use)")
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = node.value
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id in ("globals", "vars", "locals"):
                out.append(f"writes names through {base.func.id}() (can redefine what the tests use)")
        return out

    def names(self, node, tree):
        """Redefinitions of what the instructor's cells define and of builtins the tests use (in the
        notebook's namespace: a function's own local ``b`` is not the instructor's ``b``).

        An instructor's data name rebound as the cell runs (``for n in ...`` at the top of a cell) is
        left to the guard: it puts the value back before the tests and tells data (a note) from a
        function (tampering), which only running shows; so is a builtin the tests use, hidden by a name of
        the notebook (``sum = 0``: the guard removes it). Rebound from a function (``global``), it may
        happen while the checks run: tampering. A builtin exception class rebound is always tampering."""
        out = []
        if id(node) not in self.bindings:
            return out
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if node.id in self.protected and not (node.id in self.data and id(node) in self.as_cell_runs):
                out.append(f"redefines {node.id!r}, which the instructor's cells define and the tests use "
                           "(the original was restored before the tests)")
            if (node.id in self.builtins and id(node) not in self.as_cell_runs) or _builtin_exception(node.id):
                out.append(f"rebinds the builtin {node.id!r} that the tests rely on")
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            if node.name in self.protected:
                out.append(f"redefines {node.name!r}, which the instructor's cells define and the tests use "
                           "(the original was restored before the tests)")
            if node.name in self.builtins or _builtin_exception(node.name):
                out.append(f"redefines the builtin {node.name!r}")
        return out

    def reach(self, node, tree):
        """Tools that reach into the interpreter, the kernel or other objects' insides."""
        if isinstance(node, ast.Name) and node.id in _REACH_NAMES and node.id != "get_ipython":
            return _REACH_NAMES[node.id]
        if isinstance(node, ast.alias) and node.name.split(".")[0] in _REACH_NAMES:
            return _REACH_NAMES[node.name.split(".")[0]]
        if isinstance(node, ast.Attribute) and node.attr in _REACH_ATTRS:
            if node.attr == "modules" and id(node) in self.called:
                return None     # net.modules(): a torch module's submodules (sys.modules is a dict, never called)
            return _REACH_ATTRS[node.attr]
        return None

    def ipython(self, node, tree):
        """Driving the IPython shell (magics other than the harmless ones)."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = node.func.value
            if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "get_ipython":
                magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
                if not (node.func.attr in ("run_line_magic", "run_cell_magic") and magic in _ALLOWED_MAGICS):
                    return f"drives the IPython shell ({node.func.attr}{'(' + repr(magic) + ')' if magic else ''})"
        if isinstance(node, ast.Name) and node.id == "get_ipython":
            for call in ast.walk(tree):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Call) and call.func.value.func is node
                        and call.func.attr in ("run_line_magic", "run_cell_magic") and call.args
                        and isinstance(call.args[0], ast.Constant) and call.args[0].value in _ALLOWED_MAGICS):
                    return None
            return _REACH_NAMES["get_ipython"]
        return None

    def generated_code(self, node, tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("exec", "eval", "compile", "__import__")):
            if not (node.args and isinstance(node.args[0], ast.Constant)):
                return f"runs generated code with {node.func.id}()"
            if node.func.id in ("exec", "eval") and len(node.args) > 1:
                return f"runs code with {node.func.id}() in a namespace of its own making (can fake its origin)"
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                and len(node.args) > 1 and not isinstance(node.args[1], ast.Constant)):
            return "reaches an attribute by a computed name (getattr): names the scan cannot read"
        return None

    def strings(self, node, tree):
        """Course files, the grading channel, the process table."""
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return None
        low = node.value.lower()
        words = [w for w in _COURSE_WORDS if not (id(node) in self.docstrings and w in _PROSE_WORDS)]
        word = next((w for w in words if w.lower() in low), None)
        if word:
            return (f"refers to course files ({word!r}): reading the hidden tests or the solutions, or writing to "
                    "the gradebook, is not allowed")
        if "/proc/" in low or low.startswith("/proc"):
            return "reads the process table (other processes' memory, environment or files)"
        return None

    def imports(self, node, tree):
        """Grading internals, shortcut libraries, the network."""
        names = []
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [(node.module, a.name) for a in node.names]
        out = []
        for module, name in names:
            full = f"{module}.{name}" if name else module
            if full.startswith(_GRADING_MODULES) or module.startswith(_GRADING_MODULES):
                out.append(f"reaches into the grading internals ({full})")
            elif module == "coursekit.exercises" and name in _JUDGE_NAMES:
                out.append(f"reaches into the grading internals (coursekit.exercises.{name}: the judge's references "
                           "and checks)")
            top = module.split(".")[0]
            if top in _SHORTCUT_MODULES:
                out.append(f"uses {top}, a library that implements {_SHORTCUT_MODULES[top]}: a person should check "
                           "that the answers are the student's own")
            if name in _SHORTCUT_NAMES:
                out.append(f"uses {module}.{name}, an implementation of {_SHORTCUT_NAMES[name]}: a person should "
                           "check that the answers are the student's own")
            if top in _NETWORK_MODULES:
                out.append(f"opens network connections ({top}; grading has no network)")
            if top in _PROCESS_MODULES:
                out.append(f"starts processes of its own ({top})")
        if isinstance(node, ast.Attribute) and node.attr in _SHORTCUT_NAMES and isinstance(node.ctx, ast.Load):
            out.append(f"uses {ast.unparse(node)}, an implementation of {_SHORTCUT_NAMES[node.attr]}: a person should "
                       "check that the answers are the student's own")
        if isinstance(node, ast.Attribute) and node.attr in _JUDGE_NAMES and ast.unparse(node.value).endswith("exercises"):
            out.append(f"reaches into the grading internals ({ast.unparse(node)})")
        return out

    def processes(self, node, tree):
        if (isinstance(node, ast.Attribute) and node.attr in _PROCESS_ATTRS and isinstance(node.value, ast.Name)
                and node.value.id in ("os", "posix")):
            return f"starts processes of its own or leaves the kernel's session (os.{node.attr})"
        return None

    def lying_classes(self, node, tree):
        """Answer objects that decide comparisons and conversions for themselves."""
        if not isinstance(node, ast.ClassDef):
            return None
        bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
        methods = {n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        methods |= {t.id for n in node.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        lies = methods & _ALWAYS_LYING or (methods & _LYING_ON_VALUES if bases & _VALUE_BASES else set())
        if lies:
            return (f"defines class {node.name} with {', '.join(sorted(lies))}: an answer object that can decide "
                    "comparisons and conversions for itself")
        return None


def scan_code(cells: list[tuple[str, str]], *, module_aliases: set[str], protected_names: set[str],
              builtin_names: set[str], data_names: set[str] = frozenset()) -> list[dict]:
    """Static look at the student's code for tampering with the tests or the grader.

    module_aliases: names bound to modules by the notebook (np, torch, ...); protected_names:
    names defined by instructor cells that the tests use; builtin_names: builtins the tests use;
    data_names: the protected names that instructor cells bind by assignment only (data, or a
    callable only running tells: the guard decides when the student's cell rebinds them).
    """
    scan = _Scan(module_aliases=module_aliases, protected_names=protected_names, builtin_names=builtin_names,
                 data_names=set(data_names))
    for where, src in cells:
        tree = _parse(src)
        if tree is not None:
            scan.cell(where, tree)
    return scan.found


def notebook_names(nb) -> dict:
    """What the guard needs to know about a (released or rebuilt) notebook's trusted cells."""
    import builtins

    trusted = [c for c in nb.cells if c.cell_type == "code" and not is_solution(c)
               and c.metadata.get("coursekit", {}).get("origin") != "student"]
    solutions = [c for c in nb.cells if c.cell_type == "code" and is_solution(c)]
    imports, used_by_tests, aliases = set(), set(), set()
    kinds: dict[str, set[str]] = {}
    for cell in trusted:
        tree = _parse(cell.source)
        if tree is None:
            continue
        imports |= _imports(tree)
        for name, how in _binding_kinds(tree).items():
            kinds.setdefault(name, set()).update(how)
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
    defined = set(kinds)
    modules = {"numpy", "torch", "coursekit", "math"}
    roots = sorted({m.split(".")[0] for m in imports} | modules)
    imports = {m for m in imports if not m.startswith(JUDGE_MODULES)}   # never in the kernel while grading
    protected = ((defined & used_by_tests) - student_names - {n for n in defined if n.startswith("_")}
                 | (aliases & used_by_tests) - student_names)
    return {
        "preload": sorted(imports | {"numpy", "numpy.testing", "torch", "torch.testing"}),
        "roots": roots,
        "student_names": sorted(student_names),
        "protected": sorted(protected),
        "data": sorted(n for n in protected if kinds.get(n) == {"assign"} and n not in aliases),
        "imported": sorted(aliases),      # names the instructor's cells bind by import (anywhere)
        "aliases": sorted(aliases | {"np", "torch", "numpy"}),
        "builtins_used": sorted(used_by_tests & set(dir(builtins))),
    }

