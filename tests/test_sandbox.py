"""The grading sandbox's parts, one at a time (fast: one short kernel at most).

The whole pipeline on hostile submissions is tests/test_hostile.py; here: which isolation runs and
what it lets through, the kernel's environment, the charged-time clock, the grading channel and the
verdicts, the student's view of a graded notebook.
"""
import json
import os
import time

import nbformat
import pytest

from coursekit import feedback, sandbox
from coursekit.sandbox import isolation, kernels, verdicts

BWRAP = sandbox.available_isolation() == "bubblewrap"
needs_bwrap = pytest.mark.skipif(not BWRAP, reason="needs bubblewrap (apt-get install bubblewrap)")


# ---- isolation -------------------------------------------------------------------------------------

def test_describe_names_the_isolation_for_doctor():
    info = sandbox.describe()
    assert info["isolation"] in isolation.ISOLATIONS and info["isolation"] == sandbox.available_isolation()
    assert info["note"] and isinstance(info["landlock_abi"], int)
    assert (info["bubblewrap"] is not None) == (isolation.bwrap_path() is not None)


def test_the_kernels_environment_is_an_allow_list(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "do-not-leak")
    monkeypatch.setenv("PYTHONPATH", "/some/checkout")
    box = isolation.Box(tmp_path, os.geteuid())
    env = isolation.kernel_env(box, threads=1, private_tmp=True, extra={"COURSEKIT_PROBE_SEED": "7"})
    assert "do-not-leak" not in json.dumps(env)
    assert env["PYTHONPATH"] == "/some/checkout", "a development checkout grades its own code"
    assert env["HOME"] == str(box.home) and env["NBGRADER_EXECUTION"] == "autograde"
    assert env["COURSEKIT_PROBE_SEED"] == "7" and env["OMP_NUM_THREADS"] == "1"
    assert set(env) - set(isolation.ENV_PASSED) <= {
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED",
        "MPLBACKEND", "MPLCONFIGDIR", "IPYTHONDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "NBGRADER_EXECUTION", "COURSEKIT_FAST", "COURSEKIT_OFFLINE",
        "COURSEKIT_DEVICE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "COURSEKIT_PROBE_SEED"}


def test_a_development_checkout_is_never_mounted_whole(monkeypatch, tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "coursekit").mkdir(parents=True)
    (checkout / "solutions").mkdir()
    (checkout / "nbgrader_config.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(checkout))
    readable = isolation.readable_paths()
    assert str(checkout / "coursekit") in readable and str(checkout) not in readable


def test_landlock_rules_are_carved_around_the_judge(tmp_path):
    pkg = tmp_path / "coursekit"
    (pkg / "exercises" / "judge").mkdir(parents=True)
    for name in ("__init__.py", "attacks.py", "exercises/__init__.py", "exercises/runner.py", "exercises/judge/ref.py"):
        (pkg / name).write_text("")
    readable, listable = isolation.carve([str(tmp_path)], [str(pkg / "exercises" / "judge")])
    assert str(pkg / "exercises" / "runner.py") in readable and str(pkg / "attacks.py") in readable
    assert not any("judge" in p for p in readable)
    assert listable == sorted([str(tmp_path), str(pkg), str(pkg / "exercises")])


@needs_bwrap
def test_bubblewrap_leaves_out_network_processes_and_the_course(tmp_path):
    box = isolation.Box.create("bubblewrap")
    try:
        args = isolation.bwrap_args(box, {"PATH": "/usr/bin"}, tmp_mb=16, hide_judge=True)
        for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "--clearenv"):
            assert flag in args or (flag in ("--unshare-net", "--unshare-pid") and "--unshare-all" in args)
        for hidden in isolation.hidden_paths():     # the engine's judge: an empty folder in the kernel's world
            assert args[args.index(hidden) - 1] == "--tmpfs"
        bound = {args[i + 1] for i, a in enumerate(args) if a in ("--bind", "--ro-bind")}
        assert set(box.writable()) <= bound and "/" not in bound and str(os.getcwd()) not in bound
    finally:
        box.remove()


# ---- the kernel, for real: its uid, environment, network, clock ------------------------------------

@pytest.mark.slow
def test_a_sandboxed_kernel_runs_unprivileged_without_network_and_is_charged_fairly(monkeypatch):
    """One kernel: what student code sees of itself, and the clock that charges it."""
    import asyncio

    monkeypatch.setenv("COURSEKIT_TEST_SECRET", "do-not-leak")
    kind = sandbox.available_isolation()
    code = ("import os, socket, time, json\nfacts = {'uid': os.getuid(), 'env': open('/proc/self/environ').read()}\n"
            "try:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n    facts['net'] = 'open'\n"
            "except OSError as exc:\n    facts['net'] = type(exc).__name__\n"
            "time.sleep(1.0)\nprint(json.dumps(facts))")

    async def run():
        box = isolation.Box.create(kind)
        kernel = kernels.SandboxKernel(box, limits=sandbox.Limits(), isolation_kind=kind, preload=[],
                                       env=isolation.kernel_env(box, threads=1, private_tmp=kind == "bubblewrap"))
        try:
            await kernel.start()
            kc = kernel.client()
            kc.start_channels()
            await kc.wait_for_ready(timeout=120)
            out = []
            start = kernels.kernel_clock(kernel.kernel_pid())
            await kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(m["content"].get("text", "")))
            charged = kernels.kernel_clock(kernel.kernel_pid()) - start
            kc.stop_channels()
            return json.loads("".join(out)), charged
        finally:
            await kernel.stop()
            box.remove()

    facts, charged = asyncio.run(run())
    assert "do-not-leak" not in facts["env"] and "COURSEKIT_TEST_SECRET" not in facts["env"]
    assert facts["net"] != "open"
    if kind == "bubblewrap" and os.geteuid() == 0:
        assert facts["uid"] >= isolation.UID_BASE, "a uid of its own, not root"
    assert 1.0 <= charged < 10.0, "a second of sleep is charged in full"


def test_the_clock_does_not_charge_waiting_for_a_cpu():
    pid = os.getpid()
    start_clock, start_cpu = kernels.kernel_clock(pid), time.process_time()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        pass
    charged, cpu = kernels.kernel_clock(pid) - start_clock, time.process_time() - start_cpu
    # on an idle machine charged ~= cpu; on a busy one cpu < wall but charged stays near cpu
    assert charged == pytest.approx(cpu, abs=0.15)


# ---- the grading channel and the verdicts ----------------------------------------------------------

def _hidden_cell(exercise: str, points: float = 2):
    cell = nbformat.v4.new_code_cell(f"### BEGIN HIDDEN TESTS\ngrade('01_judged', '{exercise}', globals())\n"
                                     "### END HIDDEN TESTS")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": points,
                                 "grade_id": f"{exercise}-hidden"}
    return cell


def test_the_channel_keeps_only_what_a_hidden_cell_wrote_for_its_own_exercise(tmp_path):
    folder, trusted = tmp_path / "channel", tmp_path / "trusted"
    folder.mkdir()
    (folder / "probes.json").write_text("{}")                      # the grader's own, before the kernel
    channel = verdicts.Channel(folder, trusted)
    records = folder / "records.jsonl"
    records.write_text(json.dumps({"exercise": "ex1", "outputs": "forged"}) + "\n")   # a student cell
    snapshot = channel.before()
    with open(records, "a") as f:       # during ex1's hidden cell: its record and one forged for ex2
        f.write(json.dumps({"exercise": "ex2", "outputs": "forged"}) + "\n")
        f.write(json.dumps({"exercise": "ex1", "outputs": [1.0]}) + "\n")
    (folder / "records").mkdir()
    (folder / "records" / "0.npz").write_bytes(b"arrays")
    assert channel.after(snapshot, _hidden_cell("ex1"), "ex1-hidden") == []
    kept = [json.loads(line) for line in (trusted / "records.jsonl").read_text().splitlines()]
    assert kept == [{"exercise": "ex1", "outputs": [1.0]}]
    assert (trusted / "records" / "0.npz").read_bytes() == b"arrays"
    assert not (trusted / "probes.json").exists()
    stray = channel.stray()
    assert len(stray) == 1 and stray[0]["kind"] == "tampering" and "records.jsonl" in stray[0]["message"]


def test_verdicts_set_scores_and_fail_closed():
    nb = nbformat.v4.new_notebook(cells=[_hidden_cell("ex1-standardize"), _hidden_cell("ex3-jitter")])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="DEBUG probe [1.5, -2.0]\n")]
    scores = verdicts.apply_verdicts(nb, {"ex1-standardize": verdicts.Verdict(True, "standardize: correct.")})
    assert scores == {"ex1-standardize-hidden": 2.0, "ex3-jitter-hidden": 0.0}
    assert [o["text"] for o in nb.cells[0].outputs] == ["Hidden checks: passed. standardize: correct.\n"]
    assert "no answer was recorded" in nb.cells[1].outputs[0]["text"]
    assert verdicts.Verdict.of({"ok": True, "points_fraction": 0.5, "message": "half"}).points(4) == 2.0
    assert verdicts.Verdict.of(verdicts.Verdict(False, "no")).points(4) == 0.0


def test_a_failing_judge_is_an_error_and_judges_nothing(tmp_path):
    def broken(channel, seed, *, assignment, course_root):
        raise KeyError("bands")

    judged, problems = verdicts.run_judge(verdicts.Judge(broken), tmp_path, 1, assignment="a", course_root=tmp_path)
    assert judged == {} and problems[0]["kind"] == "error" and "KeyError" in problems[0]["message"]


def test_probe_seeds_are_per_submission_and_reproducible():
    a = verdicts.probe_seed("secret", "01_x", "alice")
    assert a == verdicts.probe_seed("secret", "01_x", "alice")
    assert a != verdicts.probe_seed("secret", "01_x", "bob") and a != verdicts.probe_seed("other", "01_x", "alice")
    assert 0 <= a < 2**31


def test_there_is_no_judge_where_the_engine_has_none():
    assert verdicts.find_judge("coursekit.no_such_module") is None


# ---- the student's view -------------------------------------------------------------------------------

def _graded_cell(source: str, outputs, count: int):
    cell = nbformat.v4.new_code_cell(source)
    cell.execution_count = count
    cell.outputs = outputs
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1, "grade_id": f"cell{count}"}
    return cell


def test_hidden_cells_show_a_verdict_and_only_the_checks_own_words():
    own = nbformat.v4.new_output("error", ename="AssertionError", evalue="double must work for negative numbers",
                                 traceback=["\x1b[31mAssertionError\x1b[39m", "Cell \x1b[32mIn[7]\x1b[39m, line 3",
                                            "AssertionError: double must work for negative numbers"])
    students = nbformat.v4.new_output("error", ename="AssertionError", evalue="PROBE [1.5, -2.0]",
                                      traceback=["Cell In[7], line 2", "Cell In[3], line 4, in double(x)",
                                                 "AssertionError: PROBE [1.5, -2.0]"])
    printed = nbformat.v4.new_output("stream", name="stdout", text="PROBE [1.5, -2.0]\n")
    hidden = "x = 1\n### BEGIN HIDDEN TESTS\nassert double(_x) == 3\n### END HIDDEN TESTS"
    nb = nbformat.v4.new_notebook(cells=[_graded_cell(hidden, [printed, own], 7), _graded_cell(hidden, [printed, students], 7),
                                         _graded_cell("assert double(2) == 4", [students], 9)])
    view = feedback.student_view(nb, {"cell7": 0.0, "cell9": 0.0})
    first, second, public = (c.outputs for c in view.cells)
    assert [o["text"] for o in first] == ["Hidden checks: not passed. AssertionError: double must work for negative numbers\n"]
    assert "PROBE" not in json.dumps(second) and "Your code raised AssertionError" in second[0]["text"]
    assert public == [students], "a public cell shows the student's own error"
    assert "assert double(_x)" not in view.cells[0].source and nb.cells[0].source == hidden
