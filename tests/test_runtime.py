"""Device selection and budget modes (coursekit.runtime), with the hardware faked."""
import pytest
import torch

from coursekit import runtime
from coursekit.checks import CourseKitError


@pytest.fixture()
def clean_env(monkeypatch):
    for name in ("COURSEKIT_DEVICE", "COURSEKIT_FULL", "COURSEKIT_FAST", "NBGRADER_EXECUTION",
                 "COURSEKIT_LIVE_WIDGETS", "COURSEKIT_STATIC_WIDGETS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def fake_hardware(monkeypatch, cuda=False, mps=False, count=1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    monkeypatch.setattr(runtime, "mps_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_device_prefers_cuda_then_mps_then_cpu(clean_env, cuda, mps, expected):
    fake_hardware(clean_env, cuda=cuda, mps=mps)
    assert runtime.device() == torch.device(expected)
    assert runtime.available_devices()[0] == expected and runtime.available_devices()[-1] == "cpu"


def test_env_override_picks_an_available_device(clean_env):
    fake_hardware(clean_env, cuda=True, mps=False, count=2)
    clean_env.setenv("COURSEKIT_DEVICE", "cpu")
    assert runtime.device() == torch.device("cpu")
    clean_env.setenv("COURSEKIT_DEVICE", "CUDA:1")
    assert runtime.device() == torch.device("cuda", 1)
    clean_env.setenv("COURSEKIT_DEVICE", "auto")
    assert runtime.device() == torch.device("cuda")


@pytest.mark.parametrize("value, message", [
    ("mps", "no MPS device"), ("cuda", "no CUDA device"), ("gpu0", "not a device name"),
])
def test_env_override_to_a_missing_device_says_what_to_do(clean_env, value, message):
    fake_hardware(clean_env, cuda=False, mps=False)
    clean_env.setenv("COURSEKIT_DEVICE", value)
    with pytest.raises(CourseKitError, match=message):
        runtime.device()


def test_cuda_index_beyond_the_visible_devices_is_refused(clean_env):
    fake_hardware(clean_env, cuda=True, count=1)
    clean_env.setenv("COURSEKIT_DEVICE", "cuda:3")
    with pytest.raises(CourseKitError, match="only 1 CUDA"):
        runtime.device()


def test_full_size_defaults_on_with_a_gpu_only(clean_env):
    fake_hardware(clean_env, cuda=True)
    assert runtime.full_size() and runtime.mode() == "large"
    assert runtime.budget(full=10, fast=1, large=100) == 100
    fake_hardware(clean_env, cuda=False, mps=True)  # a laptop GPU keeps the default budgets
    assert not runtime.full_size() and runtime.mode() == "default"
    assert runtime.budget(full=10, fast=1, large=100) == 10
    fake_hardware(clean_env, cuda=False)
    assert not runtime.full_size()


def test_full_size_switch_overrides_the_hardware(clean_env):
    fake_hardware(clean_env, cuda=False)
    clean_env.setenv("COURSEKIT_FULL", "1")
    assert runtime.full_size() and runtime.budget(full=10, fast=1, large=100) == 100
    fake_hardware(clean_env, cuda=True)
    clean_env.setenv("COURSEKIT_FULL", "0")
    assert not runtime.full_size() and runtime.budget(full=10, fast=1, large=100) == 10
    clean_env.setenv("COURSEKIT_FULL", "1")
    clean_env.setenv("COURSEKIT_DEVICE", "cpu")
    assert runtime.full_size(), "the explicit switch wins, also on the CPU"


def test_cpu_forced_on_a_gpu_machine_keeps_default_budgets(clean_env):
    fake_hardware(clean_env, cuda=True)
    clean_env.setenv("COURSEKIT_DEVICE", "cpu")
    assert not runtime.full_size()


@pytest.mark.parametrize("variable, value", [("COURSEKIT_FAST", "1"), ("NBGRADER_EXECUTION", "autograde")])
def test_grading_always_takes_the_fast_path(clean_env, variable, value):
    fake_hardware(clean_env, cuda=True)
    clean_env.setenv("COURSEKIT_FULL", "1")
    clean_env.setenv(variable, value)
    assert runtime.is_grading() and not runtime.full_size() and runtime.mode() == "fast"
    assert runtime.budget(full=10, fast=1, large=100) == 1


def test_budget_without_a_large_value_falls_back_to_full(clean_env):
    fake_hardware(clean_env, cuda=True)
    assert runtime.budget(full=10, fast=1) == 10
    clean_env.setenv("COURSEKIT_FAST", "0")
    assert not runtime.is_grading()


def test_describe_names_the_device_and_the_mode(clean_env):
    fake_hardware(clean_env, cuda=False)
    line = runtime.describe()
    assert line.startswith("device cpu (") and line.endswith("budgets: default")
    clean_env.setenv("COURSEKIT_FAST", "1")
    assert runtime.describe().endswith("budgets: fast")


def test_live_widgets_with_fast_budgets_but_never_under_nbgrader(clean_env):
    fake_hardware(clean_env, cuda=False)
    clean_env.setenv("COURSEKIT_FAST", "1")
    clean_env.setenv("COURSEKIT_LIVE_WIDGETS", "1")
    assert not runtime.is_grading(), "the browser test sees live widgets"
    assert runtime.fast_budgets() and runtime.budget(full=10, fast=1) == 1 and runtime.mode() == "fast"
    clean_env.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.is_grading(), "nbgrader always gets the static figures"


def test_static_widgets_with_any_budget(clean_env):
    fake_hardware(clean_env, cuda=False)
    assert not runtime.is_grading()
    clean_env.setenv("COURSEKIT_STATIC_WIDGETS", "1")
    assert runtime.is_grading() and runtime.budget(full=10, fast=1) == 10, "the site: full budgets, static figures"


# ---------------------------------------------------------------- the one device / eval-mode helper

def test_model_device_reads_parameters_then_buffers_else_cpu():
    assert runtime.model_device(torch.nn.Linear(2, 2).to("meta")) == torch.device("meta")
    buffers_only = torch.nn.BatchNorm1d(3, affine=False).to("meta")
    assert list(buffers_only.parameters()) == [] and runtime.model_device(buffers_only) == torch.device("meta")
    assert runtime.model_device(torch.nn.ReLU()) == torch.device("cpu")


def test_evaluating_restores_every_submodule_mode_even_after_an_error():
    frozen = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.5))
    model = torch.nn.Sequential(frozen, torch.nn.Dropout(0.5))
    other = torch.nn.Dropout(0.5).eval()
    model.train()
    frozen.eval()                     # a part kept in eval mode inside a model that trains
    with pytest.raises(RuntimeError, match="inside"):
        with runtime.evaluating(model, other):
            assert not any(m.training for m in (*model.modules(), other))
            raise RuntimeError("inside")
    assert model.training and model[1].training
    assert not frozen.training and not frozen[1].training, "model.train(previous) would have flipped these"
    assert not other.training


def test_evaluating_leaves_gradients_to_the_caller_and_attacks_turn_them_on():
    from coursekit import attacks

    model = torch.nn.Linear(2, 2)
    with torch.no_grad(), runtime.evaluating(model):
        assert not torch.is_grad_enabled()
    with torch.no_grad(), attacks.evaluating(model) as same:
        assert torch.is_grad_enabled() and same is model and not model.training
    assert model.training
