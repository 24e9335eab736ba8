"""Running an answer on its probes: the one place where a student's function is called.

The same code runs in self-study (``check``, in the student's process) and in grading (in the
student's kernel, :mod:`coursekit.exercises.channel`); it returns a :class:`Record` of plain data
(numpy arrays, floats, flags) that :mod:`coursekit.exercises.judge` compares with the reference.
Nothing here knows a reference, an expected value or a band.

What is recorded for each probe (:class:`Call`): the output, converted by :func:`plain` along a path
that strips tensor subclasses and never calls a method the answer's objects could override; its
form (type, shape, dtype, whether it needs a gradient); the error the answer raised, if any; whether
it changed a tensor it was handed (the caller's tensors themselves, not copies). For the whole run:
whether a forbidden function (the one the exercise asks to write, an attack library, the grading
internals) executed while the answer ran: a profiler hook sees it under any import alias.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np
import torch

# Third-party libraries that implement the attacks: executing their code is always a shortcut.
ATTACK_LIBRARIES = ("torchattacks", "art", "foolbox", "cleverhans", "advertorch")

# The trusted half of the exercise engine (references, misconception banks, bands): calling into it
# from an answer is a shortcut too.
JUDGE_DIR = Path(__file__).resolve().parent / "judge"
# The engine's own files that call trusted code directly (and the answer): this one and the harnesses.
_ENGINE_FILES = {Path(__file__).resolve(), Path(__file__).resolve().parent / "harnesses.py"}

def _inside(path: Path, place: Path) -> bool:
    return path == place or place in path.parents


# Taken when this module is imported (the sandbox imports it before any student code runs), so that
# converting an output does not go through methods a submission patched later.
_DETACH, _CPU, _CLONE, _NUMPY = torch.Tensor.detach, torch.Tensor.cpu, torch.Tensor.clone, torch.Tensor.numpy
_AS_SUBCLASS, _EQUAL = torch.Tensor.as_subclass, torch.equal
_NO_SUBCLASS_DISPATCH = torch._C.DisableTorchFunctionSubclass
_FLOAT, _INT, _STR = float.__float__, int.__int__, str.__str__


class AnswerFormError(Exception):
    """Raised by a harness when the answer returns the wrong kind of result (the message says what to return)."""


@dataclass(frozen=True, kw_only=True)
class Call:
    """One probe: call the answer on ``args`` (through ``harness`` for answers that act on state:
    ``harness(answer, *args)`` builds fresh state, runs the answer and returns what changed)."""

    name: str
    args: tuple
    harness: Callable | None = None
    global_seed: int | None = None          # torch.manual_seed(global_seed) just before the call
    grad: bool = False                      # hand over floating tensors that need a gradient (losses)


@dataclass(kw_only=True)
class Run:
    """What one probe gave: ``output`` is plain data (see :func:`plain`), ``form`` describes it."""

    name: str
    output: Any = None
    form: dict = field(default_factory=dict)
    error: str | None = None                # "TypeName: message" of what the answer raised
    status: str = "ok"                      # ok | not-answered | form | error
    mutated: bool = False                   # the answer changed a tensor it was handed
    grads: list | None = None               # Call.grad: d sum(output) / d each floating input (None: no path)


@dataclass(kw_only=True)
class Record:
    """What the answer did on every probe of one exercise."""

    function: str
    defined: str = "ok"                     # ok | missing | not callable: <type name>
    shortcut: str | None = None
    runs: list[Run] = field(default_factory=list)

    def run(self, name: str) -> Run | None:
        return next((r for r in self.runs if r.name == name), None)


# ---------------------------------------------------------------- plain data from any output

def base_tensor(value: torch.Tensor) -> torch.Tensor:
    """``value``'s data as a plain, detached CPU ``torch.Tensor`` (a subclass's ``__torch_function__``
    and overridden methods are not called)."""
    with _NO_SUBCLASS_DISPATCH():
        out = _CPU(_DETACH(_AS_SUBCLASS(value, torch.Tensor)))
    if type(out) is not torch.Tensor:
        raise TypeError("not a plain tensor")
    return out


def plain(value, depth: int = 0):
    """``(data, form)``: tensors become numpy arrays, numbers Python numbers, containers lists/dicts of
    those; ``form`` says what the answer returned (``{"type": "tensor", "shape": [...], ...}``)."""
    if depth > 4:
        return None, {"type": "other", "name": "nested too deeply"}
    if isinstance(value, torch.Tensor):
        subclass = type(value) is not torch.Tensor and type(value) is not torch.nn.Parameter
        base = base_tensor(value)
        form = {"type": "tensor", "shape": list(base.shape), "dtype": str(base.dtype).replace("torch.", ""),
                "requires_grad": bool(torch.Tensor.requires_grad.__get__(value)),
                "subclass": type(value).__name__ if subclass else None}
        return np.array(_NUMPY(_CLONE(base)), copy=True), form
    if isinstance(value, bool):
        return bool(_INT(value)), {"type": "bool"}
    if isinstance(value, float):                      # numpy's float64 too
        return _FLOAT(value), {"type": "float"}
    if isinstance(value, int):
        return _INT(value), {"type": "int"}
    if isinstance(value, str):
        return _STR(value), {"type": "str"}
    if value is None:
        return None, {"type": "none"}
    if type(value) is np.ndarray:
        return np.array(value, copy=True), {"type": "ndarray", "shape": list(value.shape)}
    if type(value) in (list, tuple):
        items = [plain(item, depth + 1) for item in (list.__iter__ if type(value) is list else tuple.__iter__)(value)]
        return [d for d, _ in items], {"type": type(value).__name__, "items": [f for _, f in items]}
    if type(value) is dict:
        data, forms = {}, {}
        for key, item in dict.items(value):
            if type(key) is not str:
                return None, {"type": "other", "name": "dict with non-string keys"}
            data[key], forms[key] = plain(item, depth + 1)
        return data, {"type": "dict", "items": forms}
    return None, {"type": "other", "name": type(value).__name__}


# ---------------------------------------------------------------- shortcuts

def _resolve(dotted: str):
    """A coursekit name: the function, method, class or module it names (imported: coursekit is loaded
    anyway). None when it does not exist."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):         # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)      # also methods: coursekit.gan.vbn.VirtualBatchNorm.forward
        return obj
    return None


@lru_cache(maxsize=None)
def library_place(dotted: str) -> Path | None:
    """Where a third-party module or package lives (``"pytorch_fid"``, ``"torchmetrics.image.fid"``),
    found WITHOUT importing it (an answer that imports it while it runs is still seen); None when it is
    not installed."""
    top, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    base = Path(spec.origin).resolve()
    base = base.parent if base.name == "__init__.py" else base
    if not rest:
        return base
    target = base.joinpath(*rest)
    for candidate in (target, target.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def _module_path(module: ModuleType) -> Path | None:
    origin = getattr(module, "__file__", None)
    if not origin:
        return None
    path = Path(origin).resolve()
    return path.parent if path.name == "__init__.py" else path


class ShortcutWatch:
    """Record whether a forbidden function, module or library runs while the answer runs.

    ``forbidden`` holds dotted names: a coursekit function or method (its code object), class (all its
    methods) or module; a third-party module or package (all code in its files: ``"pytorch_fid"``,
    ``"scipy.stats._binomtest"``). Attack libraries and the grading internals are always forbidden."""

    def __init__(self, forbidden: Sequence[str] = ()):
        self.codes: dict = {}
        self.places: list[tuple[Path, str]] = []
        for dotted in forbidden:
            if not dotted.startswith("coursekit."):          # a third-party module: by where it lives
                place = library_place(dotted)
                if place is not None:
                    self.places.append((place, dotted))
                continue
            obj = _resolve(dotted)
            if isinstance(obj, ModuleType):
                path = _module_path(obj)
                if path:
                    self.places.append((path, dotted))
            elif isinstance(obj, type):
                for member in vars(obj).values():
                    code = getattr(getattr(member, "__func__", member), "__code__", None)
                    if code is not None:
                        self.codes[code] = dotted
            else:
                code = getattr(getattr(obj, "__func__", obj), "__code__", None)
                if code is not None:
                    self.codes[code] = dotted
        self.hit: str | None = None
        self._seen: dict = {}
        self._previous = None

    def _judge(self, code, caller) -> str | None:
        if code in self.codes:
            return self.codes[code]
        path = Path(code.co_filename)
        parts = path.parts
        if "site-packages" in parts or "dist-packages" in parts:
            for lib in ATTACK_LIBRARIES:
                if lib in parts:
                    return f"the {lib} library"
        if not path.is_absolute():
            return None
        path = path.resolve()
        if _inside(path, JUDGE_DIR):
            # the grading internals, entered from the answer's own code (the runner may call a trusted
            # implementation directly: that is how the references and the known mistakes are run)
            entered_from = Path(caller.co_filename).resolve() if caller is not None else None
            if entered_from is None or not (_inside(entered_from, JUDGE_DIR) or entered_from in _ENGINE_FILES):
                return "the grading internals (coursekit.exercises.judge)"
            return None
        for place, name in self.places:
            if _inside(path, place):
                return name
        return None

    def _profile(self, frame, event, arg):
        if event == "call" and self.hit is None:
            code = frame.f_code
            caller = frame.f_back.f_code if frame.f_back is not None else None
            key = (code, caller)
            if key not in self._seen:
                self._seen[key] = self._judge(code, caller)
            self.hit = self._seen[key]

    def __enter__(self):
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self._previous)
        return False


# ---------------------------------------------------------------- running

def _copy_arg(value):
    """A fresh copy of a probe argument for one call (the probe itself is reused)."""
    if isinstance(value, torch.Tensor):
        return _CLONE(base_tensor(value))
    if isinstance(value, torch.Generator):
        g = torch.Generator()
        g.set_state(value.get_state())
        return g
    if type(value) in (list, tuple):
        return type(value)(_copy_arg(v) for v in value)
    return value


def _tensors(value, found: list) -> list:
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif type(value) in (list, tuple):
        for item in value:
            _tensors(item, found)
    return found


def call_once(fn: Callable, call: Call, watch: ShortcutWatch | None = None) -> Run:
    """Run the answer on one probe; never raises for what the answer does."""
    args = tuple(_copy_arg(a) for a in call.args)
    handed = _tensors(args, [])
    before = [_CLONE(base_tensor(t)) for t in handed]
    leaves = [t.requires_grad_(True) for t in handed if t.is_floating_point()] if call.grad else []
    modes = [(m, m.training) for m in args if isinstance(m, torch.nn.Module)]
    run = Run(name=call.name)
    try:
        if call.global_seed is not None:
            torch.manual_seed(call.global_seed)
        if watch is None:
            out = call.harness(fn, *args) if call.harness else fn(*args)
        else:
            with watch:
                out = call.harness(fn, *args) if call.harness else fn(*args)
        run.output, run.form = plain(out)
        if call.grad:
            run.grads = _gradients(out, leaves)
    except AnswerFormError as err:
        run.status, run.error = "form", str(err)
    except NotImplementedError:
        run.status, run.error = "not-answered", "NotImplementedError"
    except Exception as err:  # noqa: BLE001  (the answer's own error: recorded, judged later)
        run.status, run.error = "error", f"{type(err).__name__}: {_safe_text(err)}"
    finally:
        for m, training in modes:    # an answer that calls model.eval() must not leak into the notebook
            m.train(training)
    run.mutated = any(not _same_data(t, b) for t, b in zip(handed, before))
    return run


def _gradients(out, leaves: list[torch.Tensor]) -> list | None:
    """The gradient of the output's sum with respect to each leaf (zeros where it does not reach one);
    None when the output carries no gradient at all (computed in numpy, detached, rebuilt from floats)."""
    if not isinstance(out, torch.Tensor):
        return None
    try:
        with _NO_SUBCLASS_DISPATCH():
            total = torch.Tensor.sum(_AS_SUBCLASS(out, torch.Tensor))
            if not torch.Tensor.requires_grad.__get__(total):
                return None
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
    except Exception:  # noqa: BLE001  (a broken graph is no gradient)
        return None
    return [np.zeros(list(leaf.shape), dtype=np.float32) if g is None else plain(g)[0]
            for leaf, g in zip(leaves, grads)]


def _safe_text(err: BaseException) -> str:
    try:
        return _STR(str(err)).split("\n")[0][:300]
    except Exception:  # noqa: BLE001  (a hostile __str__)
        return "(no message)"


def _same_data(tensor: torch.Tensor, before: torch.Tensor) -> bool:
    try:
        now = base_tensor(tensor)
        return now.shape == before.shape and bool(_EQUAL(now, before) or (now.isnan() & before.isnan()).all())
    except Exception:  # noqa: BLE001
        return False


def run_answer(function: str, fn, calls: Sequence[Call], forbidden: Sequence[str] = (), watch: bool = True) -> Record:
    """Run the answer ``fn`` (the student's ``function``) on every probe, in order.

    ``watch=False`` runs trusted code (a reference, a known mistake) without the shortcut watch.
    Stops at the first shortcut or at an unanswered stub. The notebook's random state is restored
    afterwards, so running the checks does not change what the next cells draw."""
    record = Record(function=function)
    if fn is None:
        record.defined = "missing"
        return record
    if not callable(fn):
        record.defined = f"not callable: {type(fn).__name__}"
        return record
    shortcut = ShortcutWatch(forbidden) if watch else None
    with torch.random.fork_rng(devices=[]):
        for call in calls:
            run = call_once(fn, call, shortcut)
            record.runs.append(run)
            if shortcut is not None and shortcut.hit:
                record.shortcut = shortcut.hit
                break
            if run.status == "not-answered":
                break
    return record
