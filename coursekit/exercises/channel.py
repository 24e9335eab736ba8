"""The grading channel: the probes go into the student's kernel, plain records come out.

In grading, the sandbox makes a folder, has the grader write the probes into it
(:func:`coursekit.exercises.judge.grading.prepare_channel`), and starts the kernel with
``COURSEKIT_GRADING_CHANNEL=<folder>`` (and ``COURSEKIT_PROBE_SEED``). A hidden test cell's
``grade(assignment, exercise_id, globals())`` then only :func:`record`\\ s: it runs the answer on the
probes (:mod:`coursekit.exercises.runner`) and appends what happened, as plain data, to the folder.
The verdict is made afterwards by the grader, outside the kernel, on probes it rebuilds itself
(:func:`coursekit.exercises.judge.grading.judge_records`): nothing the kernel writes is trusted but
the answer's outputs, which are compared there.

Folder layout::

    probes.json, probes.npz      written by the grader: per exercise, the function's name, the forbidden
                                 names and each probe's arguments (tensors in the .npz, models by name)
    records.jsonl                one line per grade() call, appended by the kernel
    records/<n>.npz              the arrays of record n (read back with allow_pickle=False)

This module runs in the kernel: it imports no reference, no misconception and no band.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from coursekit.exercises import probes as _probes
from coursekit.exercises.runner import Call, Record, Run, base_tensor, run_answer

CHANNEL_ENV = "COURSEKIT_GRADING_CHANNEL"
SEED_ENV = "COURSEKIT_PROBE_SEED"
PROBES_JSON, PROBES_NPZ, RECORDS, RECORD_ARRAYS = "probes.json", "probes.npz", "records.jsonl", "records"
HARNESS_MODULES = ("coursekit.exercises.harnesses",)      # where a harness named in the probes may live
_ARRAY_NAME = re.compile(r"^[0-9]{1,6}-[0-9a-f]{32}\.npz$")
_FORM_TYPES = {"tensor", "float", "int", "bool", "str", "none", "ndarray", "list", "tuple", "dict", "other"}


class ChannelError(Exception):
    """A channel file that is not what this module writes (a record is then not judged)."""


# ---------------------------------------------------------------- probe arguments (grader -> kernel)

def encode_args(value, arrays: dict) -> Any:
    """A probe argument as JSON, its tensors and generator states put into ``arrays``."""
    if isinstance(value, torch.Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = base_tensor(value).numpy()
        return {"tensor": key}
    if isinstance(value, torch.Generator):
        key = f"a{len(arrays)}"
        arrays[key] = value.get_state().numpy()
        return {"generator": key}
    if isinstance(value, torch.nn.Module):
        return {"model": _probes.model_name(value)}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [encode_args(v, arrays) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"v": value}
    raise TypeError(f"a probe argument of type {type(value).__name__} cannot be sent to the kernel")


def decode_args(data, arrays) -> Any:
    (kind, value), = data.items()
    if kind == "tensor":
        return torch.from_numpy(np.array(arrays[value]))
    if kind == "generator":
        g = torch.Generator()
        g.set_state(torch.from_numpy(np.array(arrays[value], dtype=np.uint8)))
        return g
    if kind == "model":
        return _probes.model(value)
    if kind in ("tuple", "list"):
        items = [decode_args(v, arrays) for v in value]
        return tuple(items) if kind == "tuple" else items
    if kind == "v":
        return value
    raise ChannelError(f"unknown probe argument {kind!r}")


def harness_name(harness) -> str | None:
    if harness is None:
        return None
    name = f"{harness.__module__}:{harness.__qualname__}"
    if harness.__module__ not in HARNESS_MODULES:
        raise TypeError(f"the harness {name} must live in {' or '.join(HARNESS_MODULES)} (the kernel runs it)")
    return name


def _harness(name: str | None):
    if name is None:
        return None
    module, _, attr = name.partition(":")
    if module not in HARNESS_MODULES or not attr.isidentifier():
        raise ChannelError(f"unknown harness {name!r}")
    return getattr(importlib.import_module(module), attr)


def encode_calls(calls: list[Call], arrays: dict) -> list[dict]:
    return [{"name": c.name, "args": encode_args(tuple(c.args), arrays), "harness": harness_name(c.harness),
             "global_seed": c.global_seed, "grad": c.grad} for c in calls]


def decode_calls(data: list[dict], arrays) -> list[Call]:
    return [Call(name=c["name"], args=decode_args(c["args"], arrays), harness=_harness(c["harness"]),
                 global_seed=c["global_seed"], grad=bool(c["grad"])) for c in data]


# ---------------------------------------------------------------- records (kernel -> grader)

def _encode_data(value, arrays: dict) -> Any:
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"a": key}
    if isinstance(value, list):
        return {"l": [_encode_data(v, arrays) for v in value]}
    if isinstance(value, dict):
        return {"d": {k: _encode_data(v, arrays) for k, v in value.items()}}
    return {"v": value}


def _decode_data(data, arrays) -> Any:
    if not isinstance(data, dict) or len(data) != 1:
        raise ChannelError("malformed value")
    (kind, value), = data.items()
    if kind == "a":
        array = arrays[value]
        if array.dtype.kind not in "biuf":
            raise ChannelError("an array that is not numeric")
        return np.array(array)
    if kind == "l" and isinstance(value, list):
        return [_decode_data(v, arrays) for v in value]
    if kind == "d" and isinstance(value, dict):
        return {str(k): _decode_data(v, arrays) for k, v in value.items()}
    if kind == "v" and (value is None or isinstance(value, (bool, int, float, str))):
        return value
    raise ChannelError(f"malformed value {kind!r}")


def encode_record(record: Record, arrays: dict) -> dict:
    return {"function": record.function, "defined": record.defined, "shortcut": record.shortcut,
            "runs": [{"name": r.name, "output": _encode_data(r.output, arrays), "form": r.form, "error": r.error,
                      "status": r.status, "mutated": r.mutated,
                      "grads": None if r.grads is None else _encode_data(list(r.grads), arrays)}
                     for r in record.runs]}


def _valid_form(form) -> dict:
    if not isinstance(form, dict) or form.get("type", "none") not in _FORM_TYPES:
        raise ChannelError("malformed form")
    shape = form.get("shape")
    if shape is not None and not (isinstance(shape, list) and all(isinstance(n, int) for n in shape)):
        raise ChannelError("malformed shape")
    return form


def _consistent(data, form: dict) -> bool:
    """Whether the data is what its form says (a forged record may claim a tensor and hold a number)."""
    kind = form.get("type")
    if kind in ("tensor", "ndarray"):
        return isinstance(data, np.ndarray) and list(data.shape) == form.get("shape")
    if kind in ("list", "tuple"):
        items = form.get("items")
        return (isinstance(data, list) and isinstance(items, list) and len(items) == len(data)
                and all(_consistent(d, _valid_form(f)) for d, f in zip(data, items)))
    if kind == "dict":
        items = form.get("items")
        return (isinstance(data, dict) and isinstance(items, dict) and items.keys() == data.keys()
                and all(_consistent(data[k], _valid_form(items[k])) for k in data))
    expected = {"float": float, "int": int, "bool": bool, "str": str}.get(kind)
    if expected is not None:
        return type(data) is expected or (expected is float and type(data) is int)
    return data is None                                       # none, other


def decode_record(data: dict, arrays) -> Record:
    """A record read back on the grader's side; :class:`ChannelError` if it is not well formed."""
    try:
        runs = []
        for r in data["runs"]:
            grads = None if r["grads"] is None else _decode_data(r["grads"], arrays)
            if grads is not None and not (isinstance(grads, list) and all(isinstance(g, np.ndarray) for g in grads)):
                raise ChannelError("malformed gradients")
            error = r["error"]
            output, form = _decode_data(r["output"], arrays), _valid_form(r["form"])
            if r["status"] == "ok" and not _consistent(output, form):
                raise ChannelError("an output that is not what its form says")
            runs.append(Run(name=str(r["name"]), output=output, form=form,
                            error=None if error is None else str(error)[:400],
                            status=r["status"] if r["status"] in ("ok", "not-answered", "form", "error") else "error",
                            mutated=bool(r["mutated"]), grads=grads))
        shortcut = data["shortcut"]
        return Record(function=str(data["function"]), defined=str(data["defined"]),
                      shortcut=None if shortcut is None else str(shortcut)[:200], runs=runs)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ChannelError(f"malformed record: {type(err).__name__}") from None


# ---------------------------------------------------------------- the kernel side of grade()

def _matches(assignment: str, wanted: str) -> bool:
    return assignment == wanted or assignment.split("_")[0] == wanted


def record(assignment: str, exercise_id: str, answer) -> None:
    """Run the answer on the channel's probes for this exercise and append what it did (never raises
    for what the answer does; writes nothing when the channel holds no probes for the exercise)."""
    folder = Path(os.environ[CHANNEL_ENV])
    try:
        specs = json.loads((folder / PROBES_JSON).read_text())
        with np.load(folder / PROBES_NPZ, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
        spec = next(s for s in specs if _matches(s["assignment"], assignment) and s["exercise_id"] == exercise_id)
        calls = decode_calls(spec["calls"], arrays)
    except (OSError, ValueError, StopIteration, KeyError, ChannelError):
        return
    function = spec["function"]
    fn = answer.get(function) if isinstance(answer, Mapping) else answer
    result = run_answer(function, fn, calls, tuple(spec["forbidden"]))
    out_arrays: dict = {}
    line = {"assignment": spec["assignment"], "exercise_id": exercise_id,
            "record": encode_record(result, out_arrays)}
    (folder / RECORD_ARRAYS).mkdir(exist_ok=True)
    name = f"{sum(1 for _ in (folder / RECORD_ARRAYS).iterdir()) % 1000000}-{uuid.uuid4().hex}.npz"
    np.savez(folder / RECORD_ARRAYS / name, **out_arrays)
    line["arrays"] = name
    with open(folder / RECORDS, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def read_records(folder: Path, assignment: str, max_bytes: int = 512 * 2**20) -> dict[str, list[Record | str]]:
    """The records of ``assignment`` in the channel, by exercise id, in the order written; a record that
    cannot be read is the string saying why. For the grader (the arrays are read without pickles)."""
    found: dict[str, list] = {}
    path = Path(folder) / RECORDS
    if not path.is_file() or path.stat().st_size > max_bytes:
        return found
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            line = json.loads(text)
            if not (isinstance(line, dict) and _matches(str(line.get("assignment")), assignment)):
                continue
            exercise_id, name = str(line["exercise_id"]), str(line["arrays"])
        except (ValueError, KeyError):
            continue
        try:
            if not _ARRAY_NAME.match(name):
                raise ChannelError("an arrays file outside the channel")
            with np.load(Path(folder) / RECORD_ARRAYS / name, allow_pickle=False) as stored:
                found.setdefault(exercise_id, []).append(decode_record(line["record"], stored))
        except (OSError, ValueError, ChannelError) as err:
            found.setdefault(exercise_id, []).append(f"unreadable record ({err})")
    return found
