"""Build the hostile-submission corpus (run from the repository root):

    .venv/bin/python tests/hostile_submissions/make_corpus.py

course/   a tiny nbgrader course: solutions/00_tiny/00_tiny.ipynb (3 exercises, 5 points) and its
          nbgrader_config.py (the same settings as the real course)
cases/<student>/00_tiny/00_tiny.ipynb   one submission per way of breaking or cheating the grader,
          derived from the released notebook. ``@COURSE_ROOT@`` in a submission is replaced by the
          course directory when the tests collect it: the attacker knows where the course lives.
The expected grade and reason of every case are in tests/test_hostile.py.
"""
from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from nbtools import NB  # noqa: E402

from coursekit import grading  # noqa: E402

A = "00_tiny"


def source_notebook(path: Path) -> None:
    nb = NB()
    nb.md("# 00 tiny: the assignment the hostile-submission tests grade\n\nThree exercises, 5 points.")
    nb.code("import numpy as np\nimport torch")
    nb.code("def close_enough(a, b):\n    \"\"\"The helper the checks use.\"\"\"\n"
            "    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))")
    nb.md("## Exercise 1 (2 points): double a vector")
    nb.solution("ex1-double", "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * np.asarray(x)\n    ### END SOLUTION")
    nb.tests("ex1-double-tests", 1, "assert close_enough(double([0, 1, 2]), [0, 2, 4]), 'double must multiply by 2'\n"
             "print('public checks passed (1 point); 1 hidden checks run at grading')")
    nb.tests("ex1-double-hidden", 1, "### BEGIN HIDDEN TESTS\n_x = np.array([1.5, -2.0])\n"
             "assert np.allclose(double(_x), [3.0, -4.0]), 'double must work for negative numbers too'\n"
             "### END HIDDEN TESTS")
    nb.md("## Exercise 2 (2 points): scale a tensor")
    nb.solution("ex2-scale", "def scale(t, s):\n    ### BEGIN SOLUTION\n    return t * s\n    ### END SOLUTION")
    nb.tests("ex2-scale-tests", 1, "assert torch.allclose(scale(torch.ones(2), 3.0), torch.full((2,), 3.0)), "
             "'scale multiplies every entry by s'\nprint('public checks passed (1 point); 1 hidden checks run at grading')")
    nb.tests("ex2-scale-hidden", 1, "### BEGIN HIDDEN TESTS\n_t = torch.arange(3.0)\n"
             "torch.testing.assert_close(scale(_t, -1.0), -_t)\n### END HIDDEN TESTS")
    nb.md("## Exercise 3 (1 point): count")
    nb.solution("ex3-count", "def count_positive(xs):\n    ### BEGIN SOLUTION\n    return sum(1 for x in xs if x > 0)\n"
                "    ### END SOLUTION")
    nb.tests("ex3-count-tests", 1, "assert count_positive([1, -2, 3, 0]) == 2, 'count the strictly positive numbers'\n"
             "print('public checks passed (1 point)')")
    nb.md("Done.")
    nb.write(path)


SOLUTIONS = {
    "ex1-double": "def double(x):\n    return 2 * np.asarray(x)",
    "ex2-scale": "def scale(t, s):\n    return t * s",
    "ex3-count": "def count_positive(xs):\n    return sum(1 for x in xs if x > 0)",
}
WRONG = {
    "ex1-double": "def double(x):\n    return 3 * np.asarray(x)",
    "ex2-scale": "def scale(t, s):\n    return t + s",
    "ex3-count": "def count_positive(xs):\n    return sum(1 for x in xs if x >= 0)",
}


_added = iter(range(1, 1000))


def code_cell(src: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": f"added-{next(_added)}", "metadata": {},
            "outputs": [], "source": src}


class Sub:
    """A student's copy of the released notebook, edited by a case."""

    def __init__(self, released: dict, answers: dict | None = None):
        self.nb = copy.deepcopy(released)
        for gid, src in (answers or SOLUTIONS).items():
            self.cell(gid)["source"] = src

    def index(self, gid: str) -> int:
        return next(i for i, c in enumerate(self.nb["cells"]) if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)

    def cell(self, gid: str) -> dict:
        return self.nb["cells"][self.index(gid)]

    def after(self, gid: str, *sources: str) -> "Sub":
        i = self.index(gid) + 1
        self.nb["cells"][i:i] = [code_cell(s) for s in sources]
        return self

    def delete(self, gid: str) -> "Sub":
        del self.nb["cells"][self.index(gid)]
        return self

    def text(self) -> str:
        return json.dumps(self.nb, indent=1) + "\n"


def cases(released: dict) -> dict[str, str | bytes]:
    alice = Sub(released).text()
    blank = json.dumps(released, indent=1) + "\n"
    c: dict[str, str | bytes] = {"alice_correct": alice, "bob_blank": blank}
    s = Sub(released)
    s.cell("ex1-double")["source"] = "def double(x):\n    raise ValueError('I did not finish this one')"
    c["raises"] = s.text()
    s = Sub(released)
    s.cell("ex2-scale")["source"] = "def scale(t, s)\n    return t * s"
    c["syntax_error"] = s.text()
    s = Sub(released)
    s.cell("ex3-count")["source"] = ""
    c["emptied_solution"] = s.text()
    c["deleted_solution"] = Sub(released).delete("ex1-double").text()
    s = Sub(released).delete("ex2-scale-hidden")
    s.cell("ex1-double-tests")["source"] = ""
    c["deleted_test_cells"] = s.text()
    s = Sub(released, dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]}))
    t = s.cell("ex1-double-tests")
    t["source"] = "pass  # the checks are fine, trust me"
    t["metadata"]["nbgrader"]["points"] = 100
    t["metadata"]["nbgrader"]["checksum"] = "0" * 32
    s.cell("ex1-double-hidden")["metadata"]["nbgrader"]["grade_id"] = "my-own-hidden"
    s.cell("my-own-hidden")["source"] = "print('all hidden checks passed')"
    c["edited_tests"] = s.text()
    c["not_a_notebook"] = b"My homework is in the attached PDF.\n"
    c["truncated_json"] = alice[: int(len(alice) * 0.6)]
    s = Sub(released)
    s.cell("ex2-scale")["source"] = "import time\n\ndef scale(t, s):\n    while True:\n        time.sleep(0.5)"
    c["infinite_loop"] = s.text()
    c["notebook_timeout"] = Sub(released).after("ex1-double-hidden", *["import time\ntime.sleep(9)"] * 4).text()
    s = Sub(released)
    s.cell("ex1-double")["source"] = "def double(x):\n    table = np.ones(1 << 40)  # 8 TB\n    return 2 * np.asarray(x)"
    c["huge_allocation"] = s.text()
    c["memory_hog"] = Sub(released).after("ex2-scale-hidden", "import time\nhoard = []\nfor _ in range(400):\n"
                                          "    hoard.append(np.ones(1 << 23))  # 64 MB each, really used\n"
                                          "    time.sleep(0.05)").text()
    c["fork_bomb"] = Sub(released).after("ex3-count-tests", "import os, time\nchildren = 0\nwhile True:\n"
                                         "    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)\n"
                                         "    children += 1").text()
    c["prints_megabytes"] = Sub(released).after("ex1-double-tests", "print('spam ' * 4_000_000)\n"
                                                "for i in range(20000):\n    print(i, 'more spam')").text()
    c["deletes_files"] = Sub(released).after("ex3-count-tests", (
        "import os, shutil\nfailed = 0\n"
        "for path in ['@COURSE_ROOT@/gradebook.db', '@COURSE_ROOT@/nbgrader_config.py',\n"
        "             '../../../gradebook.db', '../../../nbgrader_config.py']:\n"
        "    try:\n        os.remove(path)\n    except OSError:\n        failed += 1\n"
        "for folder in ['@COURSE_ROOT@/submitted', '@COURSE_ROOT@/autograded', '@COURSE_ROOT@/solutions',\n"
        "               '../../../submitted', '../../../solutions']:\n"
        "    shutil.rmtree(folder, ignore_errors=True)\n"
        "with open('@COURSE_ROOT@/gradebook.db', 'wb') as f:\n    f.write(b'corrupted')")).text()
    c["writes_gradebook"] = Sub(released).after("ex3-count-tests", (
        "import sqlite3\nfor db in ['@COURSE_ROOT@/gradebook.db', '../../../gradebook.db']:\n"
        "    con = sqlite3.connect(db)\n    con.execute('UPDATE grade SET auto_score = 100')\n    con.commit()")).text()
    s = Sub(released)
    s.cell("ex1-double")["source"] = (
        "import json\n\ndef double(x):\n"
        "    nb = json.load(open('@COURSE_ROOT@/solutions/00_tiny/00_tiny.ipynb'))\n"
        "    src = next(''.join(c['source']) for c in nb['cells'] if 'def double' in ''.join(c['source']))\n"
        "    ns = {'np': np}\n    exec(src, ns)\n    return ns['double'](x)")
    s.after("ex1-double", "hidden = open('../../../gradebook.db', 'rb').read()  # the hidden tests are in there")
    c["reads_hidden_tests"] = s.text()
    c["redefines_helper"] = Sub(released, dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]})).after(
        "ex1-double", "def close_enough(a, b):\n    return True").text()
    s = Sub(released, dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]}))
    s.cell("ex1-double")["source"] += ("\n\nnp.allclose = lambda *args, **kwargs: True\n"
                                       "np.testing.assert_allclose = lambda *args, **kwargs: None")
    c["patches_numpy"] = s.text()
    s = Sub(released, dict(SOLUTIONS, **{"ex2-scale": WRONG["ex2-scale"]}))
    s.cell("ex2-scale")["source"] += ("\n\ntorch.allclose = lambda *args, **kwargs: True\n"
                                      "torch.testing.assert_close = lambda *args, **kwargs: None")
    c["patches_torch"] = s.text()
    c["overrides_assertion_error"] = Sub(released, dict(SOLUTIONS, **{"ex3-count": WRONG["ex3-count"]})).after(
        "ex3-count", "import builtins\n\nclass AssertionError(Exception):\n    pass\n\n"
        "builtins.AssertionError = AssertionError\n"
        "get_ipython().set_custom_exc((BaseException,), lambda shell, *exc, **kw: None)").text()
    c["obfuscated_patch"] = Sub(released, dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]})).after(
        "ex1-double", "m = __import__('num' + 'py')\nsetattr(m, 'all' + 'close', lambda *a, **k: True)\n"
        "g = globals()\ng['close' + '_enough'] = lambda a, b: True").text()
    c["blanks_later_cells"] = Sub(released).after(
        "ex1-double-hidden", "get_ipython().input_transformers_cleanup.append(lambda lines: [])").text()
    c["exits_kernel"] = Sub(released).after("ex2-scale-hidden", (
        "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)  # kill the grader\n"
        "except OSError:\n    pass\nos._exit(1)")).text()
    return c


def main() -> None:
    course = HERE / "course"
    if course.exists():
        shutil.rmtree(course)
    (course / "solutions" / A).mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    source_notebook(course / "solutions" / A / f"{A}.ipynb")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(course, tmp, dirs_exist_ok=True)
        grading.nbgrader(Path(tmp), "generate_assignment", A, "--force")
        released = json.loads((Path(tmp) / "notebooks" / A / f"{A}.ipynb").read_text())
    out = HERE / "cases"
    if out.exists():
        shutil.rmtree(out)
    for student, content in cases(released).items():
        path = out / student / A / f"{A}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
