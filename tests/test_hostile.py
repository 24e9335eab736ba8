"""Autograding hostile and broken submissions (coursekit.sandbox on top of nbgrader).

The corpus is tests/hostile_submissions/ (rebuild it with make_corpus.py): a 5-point assignment
``00_tiny`` checked in the kernel, an 8-point assignment ``01_judged`` whose hidden checks are
judged outside the kernel (tests/hostile_submissions/stub_judge.py), and one submission per way of
breaking or cheating the grader, or of answering right in another way. Each case's grade is what
its code really does under the real tests, as a fair instructor would grade it; its reason is the
most serious finding. The classes of issue 15 are named where the cases are.
"""
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil
import pytest

from coursekit import feedback, grading, sandbox

HERE = Path(__file__).resolve().parent / "hostile_submissions"
CASES = HERE / "cases"
A, J = "00_tiny", "01_judged"
LIMITS = sandbox.Limits(cell_timeout=10, notebook_timeout=30, memory_mb=1500, max_processes=64)
SECRET = "coursekit-grader-secret-" + secrets.token_hex(8)     # in the grader's environment while it grades
BWRAP = sandbox.available_isolation() == "bubblewrap"
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="needs bubblewrap (apt-get install bubblewrap): "
                                 f"grading here runs with {sandbox.available_isolation()} only")

# student -> (score out of 5, reason); why, in one line each
EXPECTED = {
    "alice_correct": (5, "ok"),
    "bob_blank": (0, "error"),                   # NotImplementedError everywhere
    "raises": (3, "error"),                      # ex1 raises: 0/2
    "syntax_error": (3, "error"),                # ex2 does not compile: 0/2
    "emptied_solution": (4, "error"),            # ex3 empty: NameError, 0/1
    "deleted_solution": (3, "error"),            # ex1 cell gone: graded as the blank stub
    "deleted_test_cells": (5, "tampering"),      # code right; the deleted/emptied tests ran anyway
    "edited_tests": (3, "tampering"),            # ex1 wrong; its tests, points and ids were restored
    "not_a_notebook": (0, "invalid"),
    "truncated_json": (0, "invalid"),
    "infinite_loop": (3, "timeout"),             # ex2 never returns: both its cells stopped
    "notebook_timeout": (2, "timeout"),          # 4 x 9 s of sleep: the notebook budget (30 s) runs out after ex1
    "huge_allocation": (3, "memory"),            # ex1 asks for 8 TB: MemoryError
    "memory_hog": (4, "memory"),                 # > 1.5 GB resident after ex2: killed, ex3 not run
    "fork_bomb": (5, "error"),                   # all tests passed first; the bomb hits the process limit
    "prints_megabytes": (5, "ok"),               # 20 MB of output: truncated, grade unaffected
    "deletes_files": (5, "tampering"),           # every deletion fails: the course is not in the sandbox
    "writes_gradebook": (5, "tampering"),        # sqlite cannot open either gradebook
    "reads_hidden_tests": (3, "tampering"),      # reading solutions/ and the gradebook fails: ex1 0/2
    "redefines_helper": (3, "tampering"),        # ex1 wrong + close_enough = always True: restored
    "patches_numpy": (3, "tampering"),           # ex1 wrong + np.allclose patched: restored
    "patches_torch": (3, "tampering"),           # ex2 wrong + torch.allclose/assert_close patched
    "overrides_assertion_error": (4, "tampering"),  # ex3 wrong + AssertionError replaced, errors swallowed
    "obfuscated_patch": (3, "tampering"),        # the same patches via __import__/setattr/globals()
    "blanks_later_cells": (2, "tampering"),      # an input transformer erases every later cell: fail closed
    "exits_kernel": (4, "error"),                # tries to kill the grader, then exits: ex3 not run
    # issue 15, class 1: one line of code forges a grade
    "repatching_thread": (3, "tampering"),       # ex1 wrong + a thread re-patching np.allclose: stopped, restored
    "patches_coursekit_modules": (4, "tampering"),  # ex3 wrong + coursekit.exercises.notebook.grade replaced
    # class 4: secrets and side channels (graded with a secret in the grader's environment)
    "reads_environment": (5, "tampering"),       # reads /proc/*/environ: sees only its own short allow-list
    "leaves_daemon": (5, "tampering"),           # a double-forked, re-executed daemon and files in /dev/shm, /tmp
    "sends_udp": (5, "tampering"),               # UDP to the grading machine: nothing arrives
    "probes_devices": (5, "ok"),                 # its answer is wrong if it runs as root or can write a device
    # class 5: an answer that swallows KeyboardInterrupt
    "swallows_interrupt": (3, "timeout"),        # ex2 loops, catching the interrupt: killed, restarted, ex3 graded
    "swallows_interrupt_top_level": (5, "timeout"),  # an added cell does the same: every exercise still graded
    # class 7: shortcuts through other libraries and the grading internals
    "uses_attack_library": (5, "tampering"),     # imports torchattacks
    "uses_scipy_binomtest": (5, "tampering"),    # scipy.stats.binomtest
    "calls_registry_reference": (5, "tampering"),  # coursekit.exercises.get(...).reference
    # class 9: feedback that leaks (the hidden probe is [1.5, -2.0])
    "echoes_probe_in_error": (4, "error"),       # raises ValueError quoting the hidden probe: ex1 hidden 0
    "prints_in_hidden": (5, "ok"),               # prints its input: the hidden probe is printed during grading
    "asserts_with_probe": (4, "ok"),             # its own AssertionError quotes the hidden probe: a failed check
    # class 10: fairness under load (charged time, not the machine's)
    "slow_but_fine": (5, "ok"),                  # 6.5 s of CPU per call of scale (10 s per cell)
    "sleeps_near_limit": (5, "ok"),              # count_positive sleeps 8 s (10 s per cell)
    # names the checks use, rebound by the student's own cells
    "reuses_check_names": (5, "ok"),             # a hidden check's _x reused for experiments: reset, a note only
    "rebinds_numpy_alias": (3, "tampering"),     # ex1 wrong + np rebound to an object that agrees: restored
}
# graded after leaves_daemon, in a grading run of its own: its answer is wrong if a file of leaves_daemon is visible
LATER = {"sees_previous": (5, "ok")}
# 01_judged (8 points: ex1 1 public + 2 hidden, ex2 1 + 1, ex3 1 + 2), judged outside the kernel
EXPECTED_JUDGED = {
    "j_correct": (8, "ok"),
    "j_wrong": (6, "ok"),                        # right on the public input only: ex1 hidden 0
    "j_patches_recorder": (6, "tampering"),      # class 1: replaces the recorder and the engine's grade()
    "j_forges_channel": (6, "tampering"),        # class 2: writes a right record into the channel beforehand
    "j_reads_judge": (6, "tampering"),           # class 2: bands.json and the engine's judge are not there
    "j_lying_array": (6, "tampering"),           # class 3: an ndarray whose mean()/std() lie: public passes, hidden 0
    "j_lying_tensor": (7, "tampering"),          # class 3: a tensor whose float() lies: ex2 hidden 0
    "j_mutates_input": (6, "ok"),                # class 6: right values, the caller's array changed in place
    "j_ignores_generator": (6, "ok"),            # class 6: noise from the global generator
    "j_noise_once": (6, "ok"),                   # class 6: noise drawn once and reused
    "j_float32_answer": (8, "ok"),               # class 8: float32 is legitimate
    "j_rewritten_correct": (8, "ok"),            # class 8: right answers written otherwise
    "j_raises_assertion": (6, "ok"),             # class 9: its own AssertionError quotes the hidden probe
}
BWRAP_ONLY = {"probes_devices", "sees_previous"}   # what they check holds with bubblewrap only


def test_corpus_matches_the_expectations():
    assert sorted(p.name for p in CASES.iterdir()) == sorted({**EXPECTED, **LATER, **EXPECTED_JUDGED})
    for student in {**EXPECTED, **LATER}:
        assert (CASES / student / A / f"{A}.ipynb").is_file()
    for student in EXPECTED_JUDGED:
        assert (CASES / student / J / f"{J}.ipynb").is_file()


# ---- fast checks: no kernel ------------------------------------------------------------------

def _released():
    kit = sandbox.prepare_assignment(HERE / "course", A)
    return kit, nbformat.reads(kit["released"][A], as_version=4)


@pytest.fixture(scope="module")
def released():
    return _released()


def _load(student):
    return sandbox.load_submission((CASES / student / A / f"{A}.ipynb").read_bytes(), A)


@pytest.mark.parametrize("student", ["not_a_notebook", "truncated_json"])
def test_unreadable_submissions_are_invalid(student):
    nb, findings = _load(student)
    assert nb is None and [f["kind"] for f in findings] == ["invalid"]
    assert ("not a notebook" in findings[0]["message"]) == (student == "not_a_notebook")
    assert ("truncated" in findings[0]["message"]) == (student == "truncated_json")


def test_missing_and_non_utf8_files_are_invalid():
    assert sandbox.load_submission(None, A)[1][0]["kind"] == "invalid"
    assert sandbox.load_submission(b"\xff\xfe\x00junk", A)[1][0]["kind"] == "invalid"
    assert sandbox.load_submission(b'{"cells": 3}', A)[1][0]["kind"] == "invalid"


def test_rebuild_restores_test_cells_and_reports_tampering(released):
    kit, rel = released
    nb, _ = _load("edited_tests")
    graded, findings = sandbox.rebuild(nb, rel, A)
    rel_tests = {c.metadata["nbgrader"]["grade_id"]: (c.source, c.metadata["nbgrader"])
                 for c in rel.cells if c.metadata.get("nbgrader", {}).get("grade")}
    got_tests = {c.metadata["nbgrader"]["grade_id"]: (c.source, c.metadata["nbgrader"])
                 for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert got_tests == rel_tests, "every test cell (source and metadata) must come from the release"
    text = " ".join(f["message"] for f in findings if f["kind"] == "tampering")
    assert "ex1-double-tests" in text and "ex1-double-hidden" in text and "my-own-hidden" in text
    # the student's (wrong) solution is what runs
    assert "3 * np.asarray" in next(c.source for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-double")


def test_rebuild_of_deleted_cells(released):
    kit, rel = released
    graded, findings = sandbox.rebuild(_load("deleted_solution")[0], rel, A)
    stub = next(c.source for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1-double")
    assert "NotImplementedError" in stub
    assert [f["kind"] for f in findings] == ["error"]
    graded, findings = sandbox.rebuild(_load("deleted_test_cells")[0], rel, A)
    assert {f["where"] for f in findings if f["kind"] == "tampering"} == {"ex1-double-tests", "ex2-scale-hidden"}
    assert len(graded.cells) == len(rel.cells)


def test_added_cells_keep_their_place_and_are_marked_as_student_code(released):
    kit, rel = released
    graded, findings = sandbox.rebuild(_load("redefines_helper")[0], rel, A)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") or c.metadata.get("coursekit", {}).get("origin")
           for c in graded.cells if c.cell_type == "code"]
    assert ids.index("student") == ids.index("ex1-double") + 1
    assert not findings


@pytest.fixture(scope="module")
def released_judged():
    kit = sandbox.prepare_assignment(HERE / "course", J)
    return kit, nbformat.reads(kit["released"][J], as_version=4)


def _scan(student, released, assignment=A):
    kit, rel = released
    data = (CASES / student / assignment / f"{assignment}.ipynb").read_bytes().replace(b"@UDP_PORT@", b"9")
    nb = sandbox.load_submission(data, assignment)[0]
    graded, _ = sandbox.rebuild(nb, rel, assignment)
    info = sandbox.notebook_names(rel)
    return sandbox.scan_code(sandbox.student_code(graded), module_aliases=set(info["aliases"]),
                             protected_names=set(info["protected"]),
                             builtin_names=set(info["builtins_used"]) | {"AssertionError"},
                             data_names=set(info["data"]))


@pytest.mark.parametrize("student,words", [
    ("patches_numpy", ["np.allclose", "np.testing.assert_allclose"]),
    ("patches_torch", ["torch.allclose", "torch.testing.assert_close"]),
    ("redefines_helper", ["close_enough"]),
    ("overrides_assertion_error", ["AssertionError", "builtins", "IPython"]),
    ("obfuscated_patch", ["__import__", "setattr"]),
    ("reads_hidden_tests", ["course files", "exec"]),
    ("writes_gradebook", ["gradebook", "databases"]),
    ("blanks_later_cells", ["IPython"]),
    ("repatching_thread", ["threads", "np.allclose"]),
    ("patches_coursekit_modules", ["engine.grade", "checks.check_int"]),
    ("reads_environment", ["process table"]),
    ("leaves_daemon", ["os.setsid", "os.execve"]),
    ("sends_udp", ["network"]),
    ("uses_attack_library", ["torchattacks", "adversarial attacks"]),
    ("uses_scipy_binomtest", ["binomtest"]),
    ("calls_registry_reference", ["grading internals"]),
])
def test_static_scan_names_the_tampering(student, words, released):
    text = " ".join(f["message"] for f in _scan(student, released))
    for word in words:
        assert word in text, (word, text)


@pytest.mark.parametrize("student,words", [
    ("j_lying_array", ["class Standard", "__eq__"]),
    ("j_lying_tensor", ["__torch_function__", "subclass of its own"]),
    ("j_reads_judge", ["grading internals", "bands.json"]),
    ("j_patches_recorder", ["engine.grade"]),
])
def test_static_scan_names_the_tampering_of_judged_answers(student, words, released_judged):
    text = " ".join(f["message"] for f in _scan(student, released_judged, J))
    for word in words:
        assert word in text, (word, text)


@pytest.mark.parametrize("student", ["alice_correct", "bob_blank", "raises", "infinite_loop", "memory_hog",
                                     "prints_megabytes", "fork_bomb", "swallows_interrupt", "slow_but_fine",
                                     "sleeps_near_limit", "prints_in_hidden", "echoes_probe_in_error",
                                     "asserts_with_probe", "probes_devices", "sees_previous",
                                     "reuses_check_names"])
def test_static_scan_has_no_false_alarms(student, released):
    assert _scan(student, released) == []


@pytest.mark.parametrize("student", ["j_correct", "j_wrong", "j_mutates_input", "j_ignores_generator", "j_noise_once",
                                     "j_float32_answer", "j_rewritten_correct", "j_raises_assertion"])
def test_static_scan_has_no_false_alarms_on_judged_answers(student, released_judged):
    assert _scan(student, released_judged, J) == []


def _scan_snippet(src: str, data_names=frozenset()) -> list[str]:
    return [f["message"] for f in sandbox.scan_code([("ex", src)], module_aliases={"np", "torch"},
                                                    protected_names={"b", "W", "close_enough"},
                                                    builtin_names={"len", "AssertionError"},
                                                    data_names=data_names)]


@pytest.mark.parametrize("src", [
    # the instructor's names reused as a function's own locals, parameters, loop and comprehension variables
    "def fit(x, y):\n    W = torch.zeros(3)\n    b = torch.zeros(())\n    for b in range(2):\n        pass\n"
    "    return W, b\n",
    "def fit(x, W=None, *, b=0.0):\n    close_enough = lambda u, v: abs(u - v) < 1e-6\n    return close_enough(W, b)\n",
    "total = sum(b * b for b in range(3))\nsquares = [W for W in range(3)]\n",
    "class Model:\n    b = 0.0\n    W = None\n    def step(self):\n        b = self.b\n        return b\n",
    "def outer():\n    b = 1\n    def inner():\n        nonlocal b\n        b = 2\n    inner()\n    return b\n",
    # a student's own exception class is not a builtin one
    "class ShapeError(ValueError):\n    pass\n\ndef check(x):\n    if x.ndim != 2:\n        raise ShapeError('x must be 2-d')\n",
    "def count(xs):\n    len = 0\n    for _ in xs:\n        len += 1\n    return len\n",
])
def test_static_scan_accepts_names_of_a_scope_of_their_own(src):
    assert _scan_snippet(src) == []


@pytest.mark.parametrize("src", [
    # a torch module's submodules (the usual weight initialisation of a GAN), not sys.modules
    "def init(net):\n    for m in net.modules():\n        if isinstance(m, torch.nn.Conv2d):\n"
    "            torch.nn.init.normal_(m.weight, 0.0, 0.02)\n",
    # reproducibility settings
    "torch.backends.cudnn.deterministic = True\ntorch.backends.cudnn.benchmark = False\n",
    # the Fréchet distance written with scipy's matrix square root (pytorch-fid's recipe, typed out)
    "from scipy import linalg\n\ndef my_frechet_distance(a, b):\n    mu = a.mean(0) - b.mean(0)\n"
    "    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)\n    root = linalg.sqrtm(s_a @ s_b).real\n"
    "    return float(mu @ mu + np.trace(s_a + s_b - 2 * root))\n",
    # prose in a docstring
    "def fit(x):\n    \"\"\"Written so that it also passes the hidden tests (nbgrader runs them).\"\"\"\n    return x\n",
])
def test_static_scan_accepts_ordinary_torch_and_prose(src):
    assert _scan_snippet(src) == []


@pytest.mark.parametrize("src,words", [
    ("import sys\nsys.modules['numpy'].allclose = None\n", "sys.modules"),
    ("import sys\nmods = sys.modules\n", "sys.modules"),
    ("from cleanfid import fid\n", "cleanfid"),
    ("from pytorch_fid.fid_score import calculate_frechet_distance\n", "pytorch_fid"),
    ("torch.backends.cudnn.deterministic = print\n", "replaces torch.backends"),
    ("torch.backends.mps.is_available = True\n", "replaces torch.backends"),
    ("np.testing.assert_allclose = True\n", "replaces np.testing"),
    ("note = 'the hidden tests are in the release'\n", "course files"),
    ("def f():\n    \"\"\"solutions/01/01.ipynb\"\"\"\n    return open(f.__doc__).read()\n", "course files"),
])
def test_static_scan_still_flags_what_looks_alike(src, words):
    assert any(words in m for m in _scan_snippet(src)), _scan_snippet(src)


@pytest.mark.parametrize("src,name", [
    ("b = torch.zeros(10)\n", "'b'"),
    ("def close_enough(u, v):\n    return True\n", "'close_enough'"),
    ("def f():\n    global b\n    b = 0\nf()\n", "'b'"),
    ("def f():\n    global close_enough\n    def close_enough(u, v):\n        return True\nf()\n", "'close_enough'"),
    ("[(W := 0) for _ in range(1)]\n", "'W'"),
    ("for W in range(3):\n    pass\n", "'W'"),
    ("with open('x') as b:\n    pass\n", "'b'"),
    ("class AssertionError(Exception):\n    pass\n", "'AssertionError'"),
    ("def f():\n    global ValueError\n    ValueError = Exception\nf()\n", "'ValueError'"),
    ("len = lambda x: 3\n", "'len'"),
])
def test_static_scan_flags_names_rebound_in_the_notebook_namespace(src, name):
    assert any(name in m for m in _scan_snippet(src)), _scan_snippet(src)


@pytest.mark.parametrize("src", [
    "for b in range(3):\n    print(b)\n",
    "b = torch.zeros(10)\nW = np.eye(3)\n",
    "with open('x') as b:\n    pass\n",
    "[(W := 0) for _ in range(1)]\n",
])
def test_static_scan_leaves_data_names_rebound_as_the_cell_runs_to_the_guard(src):
    """``b`` and ``W`` are data of the instructor's cells (bound by assignment): rebound at the top of a cell
    they are put back before the tests, and only running tells data (a note) from a function (tampering)."""
    assert _scan_snippet(src, data_names={"b", "W"}) == []
    assert _scan_snippet(src) != [], "a name the notebook does not know as data is still flagged"


@pytest.mark.parametrize("src,name", [
    ("def f():\n    global b\n    b = 0\nf()\n", "'b'"),     # from a function: it may run during the checks
    ("def W(x):\n    return x\n", "'W'"),                     # a function in place of data
    ("class b:\n    pass\n", "'b'"),
    ("close_enough = 3\n", "'close_enough'"),                # not data: the instructor defined a function
    ("W = lambda x: x\n", "'W'"),                            # a function, plain to see
    ("len = lambda x: 3\n", "'len'"),                        # a builtin the tests use, replaced by a function
    ("def f():\n    global len\n    len = 3\nf()\n", "'len'"),
    ("AssertionError = Exception\n", "'AssertionError'"),
])
def test_static_scan_still_flags_data_names_rebound_otherwise(src, name):
    assert any(name in m for m in _scan_snippet(src, data_names={"b", "W"})), _scan_snippet(src, {"b", "W"})


@pytest.mark.parametrize("src", ["len = 0\nfor v in range(3):\n    len += 1\n", "for len in range(3):\n    pass\n"])
def test_static_scan_leaves_a_builtin_hidden_by_data_to_the_guard(src):
    """``len = 0`` at the top of a cell would break the checks' ``len(...)``: the guard removes it before the
    tests (a note for data, tampering for a function)."""
    assert _scan_snippet(src) == []


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "examples" / "submissions").glob("*/*/*.ipynb")),
                         ids=lambda p: f"{p.parts[-3]}-{p.parts[-2][:2]}")
def test_static_scan_accepts_the_real_example_submissions(path):
    import nbformat

    root = Path(__file__).resolve().parents[1]
    rel = nbformat.read(root / "notebooks" / path.parent.name / path.name, as_version=4)
    graded, findings = sandbox.rebuild(sandbox.load_submission(path.read_bytes())[0], rel)
    info = sandbox.notebook_names(rel)
    findings += sandbox.scan_code(sandbox.student_code(graded), module_aliases=set(info["aliases"]),
                                  protected_names=set(info["protected"]),
                                  builtin_names=set(info["builtins_used"]) | {"AssertionError"},
                                  data_names=set(info["data"]))
    assert findings == []


def test_main_reason_is_the_most_serious_finding():
    f = sandbox.finding
    assert sandbox.main_reason([]) == "ok"
    assert sandbox.main_reason([f("info", "x"), f("error", "x"), f("timeout", "x")]) == "timeout"
    assert sandbox.main_reason([f("memory", "x"), f("tampering", "x")]) == "tampering"
    assert sandbox.main_reason([f("tampering", "x"), f("invalid", "x")]) == "invalid"


def test_feedback_banner_escapes_student_text():
    res = {"score": 1, "max_score": 5, "reason": "error",
           "findings": [sandbox.finding("error", "<script>alert(1)</script>", "ex1")]}
    banner = feedback.feedback_banner(res)
    assert "<script>" not in banner and "&lt;script&gt;" in banner and "result: error" in banner


# ---- the corpus, graded for real (kernels, limits, parallel workers) ----------------------------

def _tree_hash(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _collect(course: Path, students, assignment: str = A, **values):
    """Copy cases into submitted/, with @COURSE_ROOT@ (and @HOST_IP@, @UDP_PORT@) filled in."""
    values = {"COURSE_ROOT": str(course), **values}
    for student in students:
        data = (CASES / student / assignment / f"{assignment}.ipynb").read_bytes()
        for key, value in values.items():
            data = data.replace(f"@{key}@".encode(), str(value).encode())
        dst = course / "submitted" / student / assignment / f"{assignment}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)


def _host_ip() -> str:
    """An address of this machine outside loopback (what a sandbox with a network could reach)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))      # no packet is sent: it only picks the outgoing interface
        return probe.getsockname()[0]
    except OSError:
        return socket.gethostbyname(socket.gethostname())
    finally:
        probe.close()


def _daemons() -> list[str]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        if p.info["cmdline"] and "coursekit-daemon-marker" in " ".join(p.info["cmdline"]):
            out.append(" ".join(p.info["cmdline"]))
    return out


@dataclass
class Corpus:
    course: Path
    by: dict            # 00_tiny results by student (LATER included)
    judged: dict        # 01_judged results by student
    before: dict        # hashes of the course before the hostile batch
    udp: list           # datagrams that reached the grading machine
    daemons: list       # processes of leaves_daemon alive after grading


@pytest.fixture(scope="module")
def graded_corpus(tmp_path_factory):
    """Alice first, then every case with 2 workers (the gradebook must keep alice's grade), then the
    cases that look for what earlier ones left, then 01_judged with its judge. The grader's
    environment holds a secret meanwhile."""
    sys.path.insert(0, str(HERE))       # stub_judge, the judge of 01_judged
    course = tmp_path_factory.mktemp("hostile") / "course"
    shutil.copytree(HERE / "course", course)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.setblocking(False)
    _collect(course, {**EXPECTED, **LATER}, HOST_IP=_host_ip(), UDP_PORT=udp.getsockname()[1])
    _collect(course, EXPECTED_JUDGED, J)
    os.environ["COURSEKIT_TEST_SECRET"] = SECRET
    try:
        first = grading.autograde(course, A, ["alice_correct"], limits=LIMITS)
        before = {"solutions": _tree_hash(course / "solutions"), "submitted": _tree_hash(course / "submitted"),
                  "config": hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest()}
        others = sorted(s for s in EXPECTED if s != "alice_correct")
        results = grading.autograde(course, A, others, workers=3, limits=LIMITS)
        later = grading.autograde(course, A, sorted(LATER), limits=LIMITS)
        judged = grading.autograde(course, J, sorted(EXPECTED_JUDGED), workers=3, limits=LIMITS, judge="stub_judge")
    finally:
        os.environ.pop("COURSEKIT_TEST_SECRET", None)
        sys.path.remove(str(HERE))
    received = []
    while True:
        try:
            received.append(udp.recvfrom(256))
        except BlockingIOError:
            break
    udp.close()
    by = {r["student"]: r for r in first + results + later}
    return Corpus(course, by, {r["student"]: r for r in judged}, before, received, _daemons())


def _expected(student: str) -> tuple:
    if student in BWRAP_ONLY and not BWRAP:
        pytest.skip(f"{student}: what it checks holds with bubblewrap only")
    return {**EXPECTED, **LATER}[student]


def _feedback(course: Path, student: str, assignment: str = A) -> str:
    return (course / "feedback" / student / assignment / f"{assignment}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted({**EXPECTED, **LATER}))
def test_hostile_submission_grade_and_reason(student, graded_corpus):
    course, by = graded_corpus.course, graded_corpus.by
    score, reason = _expected(student)
    res = by[student]
    assert (res["score"], res["reason"]) == (score, reason), json.dumps(res["findings"], indent=1)
    assert res["max_score"] == 5
    row = {(r["student"], r["assignment"]): r for r in grading.grades(course)}[student, A]
    assert row["score"] == score and row["reason"] == reason
    html = _feedback(course, student)
    assert f"result: {reason}" in html, "the feedback states the result and its reason"
    for f in res["findings"]:
        if f["kind"] == reason:
            assert f["message"][:40].replace("'", "&#x27;").replace('"', "&quot;")[:20] in html


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(EXPECTED_JUDGED))
def test_judged_submission_grade_and_reason(student, graded_corpus):
    """01_judged: every hidden cell's score is the judge's verdict, made outside the kernel."""
    course, res = graded_corpus.course, graded_corpus.judged[student]
    assert (res["score"], res["reason"]) == EXPECTED_JUDGED[student], json.dumps(res["findings"], indent=1)
    assert res["max_score"] == 8 and set(res["verdicts"]) == {"ex1-standardize", "ex2-clip", "ex3-jitter"}
    html = _feedback(course, student, J)
    hidden_points = {"ex1-standardize": 2.0, "ex2-clip": 1.0, "ex3-jitter": 2.0}
    for exercise, verdict in res["verdicts"].items():
        assert res["scores"][J][f"{exercise}-hidden"] == (hidden_points[exercise] if verdict["ok"] else 0.0)
        assert verdict["message"] in html, "the hidden cell shows the judge's verdict"


@pytest.mark.slow
def test_gradebook_and_course_survive_the_corpus(graded_corpus):
    course, before = graded_corpus.course, graded_corpus.before
    everyone = {**EXPECTED, **LATER, **EXPECTED_JUDGED}
    con = sqlite3.connect(course / "gradebook.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    students = {r[0] for r in con.execute("SELECT id FROM student")}
    assert students == set(everyone)
    assert con.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0] == len(everyone)
    con.close()
    rows = {(r["student"], r["assignment"]): r for r in grading.grades(course)}
    assert rows["alice_correct", A]["score"] == 5, "graded before the hostile batch, still right after it"
    assert _tree_hash(course / "solutions") == before["solutions"]
    assert _tree_hash(course / "submitted") == before["submitted"]
    assert hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest() == before["config"]


@pytest.mark.slow
def test_limits_are_enforced_and_reported(graded_corpus):
    course, by = graded_corpus.course, graded_corpus.by
    text = lambda s: " ".join(f["message"] for f in by[s]["findings"])  # noqa: E731
    assert "longer than 10 s" in text("infinite_loop")
    assert "30 s" in text("notebook_timeout") and by["notebook_timeout"]["seconds"] < 30 + LIMITS.grace
    assert "more than 1500 MB" in text("memory_hog")
    assert "MemoryError" in text("huge_allocation")
    # the bomb stops at the process limit (BlockingIOError, or the kernel too busy to answer); its
    # sleeping children never outlive the grading
    assert any(k in text("fork_bomb") for k in ("more than 64 processes", "left behind",
                                                   "Resource temporarily unavailable", "stopped sending"))
    # Landlock refuses the course's files; under bubblewrap they do not exist in the kernel's world
    missing = "FileNotFoundError" if by["reads_hidden_tests"]["isolation"] == "bubblewrap" else "PermissionError"
    assert missing in text("reads_hidden_tests")
    assert "restored" in text("patches_numpy") and "numpy.allclose" in text("patches_numpy")
    assert "torch.testing.assert_close" in text("patches_torch") or "assert_close" in text("patches_torch")
    assert "name close_enough" in text("redefines_helper")
    graded = (course / "autograded" / "prints_megabytes" / A / f"{A}.ipynb")
    assert graded.stat().st_size < 2_000_000 and "output truncated" in graded.read_text()


@pytest.mark.slow
def test_tampering_in_the_kernel_is_stopped_and_named(graded_corpus):
    """Class 1: a thread that keeps re-patching is stopped before the checks; coursekit's submodules are
    restored; the engine's recorder, replaced, still records (the guard put it back) and is judged outside."""
    by, judged = graded_corpus.by, graded_corpus.judged
    text = lambda r: " ".join(f["message"] for f in r["findings"] if f["kind"] == "tampering")  # noqa: E731
    assert "stopped the thread" in text(by["repatching_thread"]) and "helper" in text(by["repatching_thread"])
    assert "coursekit.exercises.notebook.grade" in text(by["patches_coursekit_modules"])
    assert "engine.grade" in text(judged["j_patches_recorder"]) and "name grade" in text(judged["j_patches_recorder"])
    assert judged["j_patches_recorder"]["scores"][J]["ex1-standardize-hidden"] == 0


@pytest.mark.slow
def test_a_reused_check_variable_is_a_note_not_tampering(graded_corpus):
    """The guard put the hidden check's _x back before the next checks: full marks, no tampering, and the
    student is told in the record and the feedback; np rebound to an agreeable object stays tampering."""
    res = graded_corpus.by["reuses_check_names"]
    notes = [f for f in res["findings"] if f["kind"] == "info"]
    assert [f["kind"] for f in res["findings"]] == ["info"], res["findings"]
    assert "your variable _x was reset before the tests ran" in notes[0]["message"]
    assert notes[0]["where"] == "ex2-scale-tests"
    assert "your variable _x was reset before the tests ran" in _feedback(graded_corpus.course, "reuses_check_names")
    text = " ".join(f["message"] for f in graded_corpus.by["rebinds_numpy_alias"]["findings"] if f["kind"] == "tampering")
    assert "name np" in text     # the guard's finding (np is not in the released notebook's public checks)


@pytest.mark.slow
def test_secrets_never_reach_the_student(graded_corpus):
    """Class 4: no variable of the grader's environment beyond the allow-list, by any means."""
    course = graded_corpus.course
    for folder in ("autograded", "feedback"):
        for path in (course / folder).rglob("*"):
            if path.is_file():
                assert SECRET not in path.read_text(errors="replace"), path
    graded = (course / "autograded" / "reads_environment" / A / f"{A}.ipynb").read_text()
    assert "COURSEKIT_GRADING_CHANNEL" in graded, "the case printed its environment"
    assert "COURSEKIT_TEST_SECRET" not in graded and "GITHUB" not in graded


@needs_bwrap
@pytest.mark.slow
def test_no_network_no_survivors_nothing_left_for_the_next(graded_corpus):
    """Class 4: UDP does not leave the sandbox, a double-forked re-executed daemon dies with it, and
    what one submission writes to /dev/shm or /tmp is not there for the next (sees_previous: 5/5)."""
    assert graded_corpus.udp == []
    assert graded_corpus.daemons == []
    graded = nbformat.read(graded_corpus.course / "autograded" / "sends_udp" / A / f"{A}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    assert f"{_host_ip()} OSError" in printed, "the grading machine is unreachable (only the sandbox's own loopback)"
    assert graded_corpus.by["sees_previous"]["score"] == 5 and graded_corpus.by["probes_devices"]["score"] == 5


@pytest.mark.slow
def test_an_answer_that_swallows_the_interrupt_keeps_the_rest(graded_corpus):
    """Class 5: the kernel is killed and restarted, the other exercises are graded, feedback is written."""
    course, by = graded_corpus.course, graded_corpus.by
    for student in ("swallows_interrupt", "swallows_interrupt_top_level"):
        assert any("did not stop when interrupted" in f["message"] for f in by[student]["findings"])
        assert "result: timeout" in _feedback(course, student)
    assert by["swallows_interrupt"]["scores"][A]["ex3-count-tests"] == 1


@pytest.mark.slow
def test_feedback_shows_verdicts_not_internals(graded_corpus):
    """Class 9: hidden cells show their verdict; nothing printed during them, and no exception text of the
    student's from them, reaches the feedback (the public check's output does)."""
    course = graded_corpus.course
    html = _feedback(course, "prints_in_hidden")
    assert "PROBE-PRINT [0, 1, 2]" in html and "PROBE-PRINT [1.5" not in html
    for student, leak in (("echoes_probe_in_error", "values=[1.5"), ("asserts_with_probe", "PROBE-ASSERT [1.5")):
        html = _feedback(course, student)
        assert leak not in html and "shape=(2,)" not in html     # the student's source is shown, not the probe
        assert "Hidden checks: not passed. Your code raised" in html
    html = _feedback(course, "j_raises_assertion", J)
    assert not re.search(r"PROBE-ASSERT \[-?\d", html) and "raised an exception on the hidden probes" in html
    assert "Hidden checks: passed." in _feedback(course, "alice_correct")
    assert "the notebook used its" not in _feedback(course, "alice_correct")


@pytest.mark.slow
def test_the_judge_reads_only_what_the_hidden_checks_wrote(graded_corpus):
    """Class 2: a record forged outside the hidden checks is ignored and named; the judge's files are not
    in the kernel's world."""
    judged, course = graded_corpus.judged, graded_corpus.course
    assert any("outside the hidden checks" in f["message"] for f in judged["j_forges_channel"]["findings"])
    graded = (course / "autograded" / "j_reads_judge" / J / f"{J}.ipynb").read_text()
    assert "stolen: False" in graded


@pytest.mark.slow
def test_reports_from_the_corpus(graded_corpus, tmp_path):
    course = graded_corpus.course
    tiny = {**EXPECTED, **LATER}
    paths = grading.report(course, tmp_path / "reports")
    summary = grading.failure_summary(course)
    for reason in sandbox.REASONS:
        want = [f"{s}/{A}" for s, (_, r) in tiny.items() if r == reason]
        want += [f"{s}/{J}" for s, (_, r) in EXPECTED_JUDGED.items() if r == reason]
        assert sorted(summary[reason]) == sorted(want)
    stats = {s["cell"]: s for s in grading.exercise_stats(course)}
    assert stats["ex3-count-tests"]["n"] == len(tiny) and stats["ex3-count-tests"]["points"] == 1
    lines = paths["grades"].read_text().splitlines()
    assert lines[0].startswith("student,assignment,score,max_score")
    assert len(lines) == len(tiny) + len(EXPECTED_JUDGED) + 1
    assert paths["histogram"].read_bytes()[:4] == b"\x89PNG"
    assert "tampering" in paths["summary"].read_text()


@pytest.mark.slow
def test_dask_cluster_on_loopback_gives_the_same_grades(tmp_path):
    distributed = pytest.importorskip("distributed")
    course = tmp_path / "course"
    shutil.copytree(HERE / "course", course)
    students = ["alice_correct", "patches_torch", "truncated_json"]
    _collect(course, students)
    from coursekit import cli

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        status = cli.main(["--root", str(course), "autograde", A, "--dask", cluster.scheduler_address,
                           "--cell-timeout", "10", "--notebook-timeout", "30", "--memory-mb", "1500"])
    assert status == 0
    got = {r["student"]: (r["score"], r["reason"]) for r in grading.grades(course)}
    assert got == {s: EXPECTED[s] for s in students}
    assert (course / "feedback" / "patches_torch" / A / f"{A}.html").is_file()
    assert cli.main(["--root", str(course), "report", "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "histogram.png").is_file()


# ---- fairness under load (class 10) ------------------------------------------------------------

LOADED = ["alice_correct", "infinite_loop", "notebook_timeout", "slow_but_fine", "sleeps_near_limit"]


@pytest.mark.slow
def test_grades_do_not_depend_on_the_machines_load(tmp_path):
    """The cases the time limits decide (and a plain one), graded while a busy loop runs on every core, get
    the grades the corpus gets on a quiet machine (EXPECTED): infinite_loop is the case that lost a point at
    load 3-8 when the limits were wall-clock ones; slow_but_fine needs more wall time under load than a
    cell's limit."""
    course = tmp_path / "course"
    shutil.copytree(HERE / "course", course)
    _collect(course, LOADED)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(1.0)
        load = os.getloadavg()[0]
        results = {r["student"]: r for r in grading.autograde(course, A, LOADED, workers=2, limits=LIMITS)}
    finally:
        for p in burners:
            p.kill()
            p.wait()
    got = {s: (r["score"], r["reason"]) for s, r in results.items()}
    assert got == {s: EXPECTED[s] for s in LOADED}, (load, {s: r["findings"] for s, r in results.items()})
    # the CPU-bound answer really was slowed down beyond its cell's limit, and was not charged for it
    assert results["slow_but_fine"]["compute_seconds"] < 2 * LIMITS.cell_timeout
