"""The grading guard (coursekit/sandbox/guard.py) in an IPython shell, step by step.

Each test runs tests/guard_session.py in a process of its own: the executor's setup code starts the
guard, the cells run as in grading, and the guard's reports come back. What each report must say:
a function, class, module, import or builtin the student's code replaced is restored and named
(``changed``: tampering); an instructor's data name the student rebound to data is restored and
listed apart (``reset``: a note, the grade cannot depend on it); a library object whose attribute
lookups fail (torch.onnx's lazy modules) never stops the guard.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit import sandbox

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

INSTRUCTOR = ("import numpy as np\nfrom math import pi\n\n\ndef close_enough(a, b):\n"
              "    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))\n\n\n"
              "n = 3\nweights = np.arange(3.0)")
SOLUTION = "def double(x):\n    return 2 * np.asarray(x)"
FIRST_TEST = "_x = np.arange(3.0)\nassert close_enough(double(_x), 2 * _x) and n == 3"
# every name the student's cells may touch, checked with the notebook's own values
CHECKS = ("assert close_enough(double(_x), [0, 2, 4]) and n == 3 and close_enough(weights, [0, 1, 2])\n"
          "assert abs(pi - 3.14159265) < 1e-6 and abs(-2) == 2 and np.__name__ == 'numpy'")


def notebook(cells: list[tuple[str, str]]):
    """A graded notebook of (role, source) cells; role: instructor, solution, test or student (an added cell)."""
    nb = nbformat.v4.new_notebook()
    for i, (role, source) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if role == "solution":
            cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": f"cell-{i}"}
        elif role == "test":
            cell.metadata["nbgrader"] = {"solution": False, "grade": True, "grade_id": f"cell-{i}", "points": 1}
        elif role == "student":
            cell.metadata["coursekit"] = {"origin": "student"}
        nb.cells.append(cell)
    return nb


def session(cells: list[tuple[str, str]], *, info: dict | None = None, path=(), cwd=None) -> list[dict]:
    """Run the cells with the guard (tests/guard_session.py); one step per cell."""
    info = dict(info or sandbox.notebook_names(notebook(cells)))
    info.update(preload=["numpy"], roots=sorted(set(info["roots"]) - {"torch", "coursekit"}))  # no torch: quick
    roles = {"solution": "student"}
    spec = {"info": info, "path": [str(p) for p in path],
            "cells": [[roles.get(role, role), source] for role, source in cells]}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    done = subprocess.run([sys.executable, str(HERE / "guard_session.py")], input=json.dumps(spec), text=True,
                          capture_output=True, env=env, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_notebook_names_tell_data_from_imports_and_functions():
    info = sandbox.notebook_names(notebook([("instructor", INSTRUCTOR), ("solution", SOLUTION),
                                            ("test", FIRST_TEST), ("test", CHECKS)]))
    assert {"np", "pi"} <= set(info["imported"]) and "n" not in info["imported"]
    assert {"n", "weights"} <= set(info["protected"]) and {"close_enough", "np", "pi"} <= set(info["protected"])
    assert set(info["data"]) == {"n", "weights"}, "only names bound by assignment may be data"


def test_a_variable_named_like_the_checks_is_reset_not_tampering():
    """The student reuses a check's variable and an instructor's data names at the top of a cell: the guard
    puts the notebook's values back before the tests and reports them apart, as data (a note)."""
    steps = session([("instructor", INSTRUCTOR), ("solution", SOLUTION), ("test", FIRST_TEST),
                     ("student", "for _x in range(4):\n    print(_x)\nn = 10\nfor n in range(2):\n    pass\n"
                                 "weights = [5.0, 5.0, 5.0]"),
                     ("test", CHECKS)])
    last = steps[-1]
    assert last["error"] is None, "the checks saw the notebook's values"
    assert last["before"]["changed"] == [] and sorted(last["before"]["reset"]) == ["_x", "n", "weights"]
    assert last["after"]["changed"] == [] and last["guard_error"] is None


def test_deleting_a_data_name_is_reset_too():
    steps = session([("instructor", INSTRUCTOR), ("solution", SOLUTION), ("test", FIRST_TEST),
                     ("student", "del n, _x"), ("test", CHECKS)])
    assert steps[-1]["error"] is None and steps[-1]["before"]["changed"] == []
    assert sorted(steps[-1]["before"]["reset"]) == ["_x", "n"]


def test_a_builtin_the_checks_use_is_never_hidden_by_a_notebook_name(tmp_path):
    """``abs = 0`` at the top of a cell would break the checks' ``abs(...)`` (a correct answer losing points):
    removed before the tests, a note. A function under that name, even from a module the student wrote and
    star-imported (which the static scan cannot see), would pass them: removed, tampering."""
    steps = session([("instructor", INSTRUCTOR), ("solution", SOLUTION), ("test", FIRST_TEST),
                     ("student", "abs = 0\nfor v in [-1, 2]:\n    abs += v"), ("test", CHECKS),
                     ("student", "with open('helpers.py', 'w') as f:\n    f.write('abs = lambda v: 2')\n"
                                 "from helpers import *"), ("test", CHECKS + "\nassert abs(-5) == 5")],
                    path=[tmp_path], cwd=tmp_path)
    data, function = steps[4], steps[6]
    assert data["error"] is None and data["before"]["reset"] == ["abs"] and data["before"]["changed"] == []
    assert function["error"] is None and function["before"]["changed"] == ["name abs (hid the builtin)"]
    assert function["before"]["reset"] == []


# (the student's cell, what the guard must name as tampering); each followed by the checks
TAMPERING = [
    ("def close_enough(a, b):\n    return True", "name close_enough"),          # a checked function
    ("close_enough = lambda a, b: True", "name close_enough"),
    ("import math as np", "name np"),                                            # an import, rebound
    ("np = None", "name np"),
    ("pi = 3.0", "name pi"),                       # data, but the instructor's cell imported it
    ("n = lambda: 3", "name n"),                   # data replaced by a function
    ("import builtins\nbuiltins.abs = lambda v: 0", "builtins.abs"),             # a builtin
    ("import numpy\nnumpy.allclose = lambda *a, **k: True", "numpy.allclose"),  # a library function
]


def test_functions_imports_and_builtins_stay_tampering():
    cells = [("instructor", INSTRUCTOR), ("solution", SOLUTION), ("test", FIRST_TEST)]
    for source, _ in TAMPERING:
        cells += [("student", "n = 4\n" + source), ("test", CHECKS)]
    steps = session(cells)
    checks = [s for s in steps[3:] if s["role"] == "test"]
    assert len(checks) == len(TAMPERING)
    for (source, name), step in zip(TAMPERING, checks):
        assert name in step["before"]["changed"], (source, step)
        assert step["error"] is None, (source, "restored before the checks: they pass", step)
        want = [] if name == "name n" else ["n"]          # the data name rebound beside it is only reset
        assert step["before"]["reset"] == want, (source, step)


def test_a_model_rebound_to_another_model_is_data():
    """A model is callable but is its weights: the student's own model under the notebook's name is reset (a
    note); a function, or a model whose class redefines its call, in its place is tampering."""
    cells = [("instructor", "import torch\n\nmodel = torch.nn.Linear(2, 2)"),
             ("test", "assert model(torch.zeros(1, 2)).shape == (1, 2) and type(model) is torch.nn.Linear")]
    students = [("model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))", "reset"),
                ("model = lambda x: x", "changed"),
                ("class Agreeable(torch.nn.Linear):\n    def __call__(self, x):\n        return x\n\n\n"
                 "model = Agreeable(2, 2)", "changed")]
    for source, _ in students:
        cells += [("student", source), cells[1]]
    steps = session(cells)
    for (source, kind), step in zip(students, steps[3::2]):
        assert step["error"] is None, (source, step)
        other = "changed" if kind == "reset" else "reset"
        assert step["before"][kind] == (["model"] if kind == "reset" else ["name model"]), (source, step)
        assert step["before"][other] == [], (source, step)


# A package whose attribute lookups import on demand, as torch.onnx's do (torch/onnx/_internal/_lazy_import.py):
# where the optional dependency is missing, looking up any attribute raises ModuleNotFoundError, not
# AttributeError, so even getattr(obj, name, default) raises.
LAZY_PACKAGE = {
    "__init__.py": ("def __getattr__(name):\n"
                    "    raise ImportError(f'lazylib.{name} needs an optional dependency that is not installed')\n"),
    "lazy.py": ("import importlib\n\n\nclass _LazyModule:\n    def __init__(self, name):\n        self._name = name\n"
                "        self._module = None\n\n    def __getattr__(self, attr):\n        if self._module is None:\n"
                "            self._module = importlib.import_module('.', self._name)\n"
                "        return getattr(self._module, attr)\n\n\nonnx = _LazyModule('coursekit_test_not_installed')\n"),
    "plain.py": "def helper():\n    return 'library'\n",
}
LAZY_INFO = {"preload": [], "roots": ["lazylib", "numpy"], "student_names": [], "imported": []}


@pytest.fixture
def lazylib(tmp_path):
    for name, source in LAZY_PACKAGE.items():
        (tmp_path / "lazylib" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "lazylib" / name).write_text(source)
    return tmp_path


def test_a_lazy_module_imported_after_the_snapshot_does_not_stop_the_guard(lazylib):
    """The guard looks for notebook functions in library modules imported after its snapshot; an object
    whose every attribute lookup raises (a lazy module of a missing dependency) is not one. A guard step
    that raised was read as 'guard removed' and failed every later test cell as tampering."""
    steps = session([("student", "import lazylib.lazy"), ("test", "assert lazylib.lazy.onnx is not None")],
                    info=LAZY_INFO, path=[lazylib])
    test = steps[-1]
    assert test["guard_error"] is None and test["before"] is not None, "the guard reported"
    assert test["before"]["changed"] == [] and test["error"] is None


def test_a_patch_next_to_a_package_that_imports_lazily_is_still_undone(lazylib):
    """The library's own function is looked for in the patched module's package, whose module __getattr__
    raises ImportError: the guard goes on and takes the student's function out of the library."""
    steps = session([("student", "import lazylib.plain\n\n\ndef helper():\n    return 'student'\n\n\n"
                                 "lazylib.plain.helper = helper"),
                     ("test", "assert getattr(lazylib.plain, 'helper', None) is not helper")],
                    info=LAZY_INFO, path=[lazylib])
    test = steps[-1]
    assert test["guard_error"] is None and test["before"] is not None, "the guard reported"
    assert test["before"]["changed"] == ["lazylib.plain.helper"] and test["error"] is None
