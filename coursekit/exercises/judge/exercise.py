"""How an exercise is declared: :class:`Exercise` and its parts (all built with keyword arguments).

An exercise names the function the student writes, a ``reference`` with the same signature, the
probes its answer is run on, and what is known about wrong answers. The probes are built here, on
the trusted side; the answer runs on them wherever the student's code runs
(:mod:`coursekit.exercises.runner`), and every check below is a function of what it recorded (an
:class:`Answer`), never of the answer's function itself: so the same checks judge in self-study and,
in grading, outside the student's process.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from coursekit.exercises.runner import Call, Record, Run


@dataclass(frozen=True, kw_only=True)
class Probe:
    """A named extra run of the answer, for checks of behaviour (``answer.on(name)``).

    ``args()`` builds the arguments; ``harness`` defaults to the exercise's; ``global_seed`` seeds
    torch's global generator just before the call (e.g. two probes with the same arguments and two
    global seeds show whether the answer's randomness comes from its arguments)."""

    args: Callable[[], tuple]
    harness: Callable | None = None
    global_seed: int | None = None


@dataclass(frozen=True, kw_only=True)
class Misconception:
    """A known-wrong answer and the hint that names the mistake.

    ``wrong`` is the wrong implementation (the answer is matched to it output for output on the
    cases); ``detect(answer) -> bool`` recognises a mistake that cannot be matched that way (e.g.
    randomness that ignores the generator). ``depth``: the lower, the more fundamental; when several
    checks fail, the most fundamental mistake is named first."""

    name: str
    hint: str
    wrong: Callable | None = None
    detect: Callable[["Answer"], bool] | None = None
    depth: int = 1


@dataclass(frozen=True, kw_only=True)
class Property:
    """A property every correct answer has (``holds(answer) -> bool``) and the message when it fails."""

    holds: Callable[["Answer"], bool]
    message: str
    depth: int = 1


@dataclass(frozen=True, kw_only=True)
class Bands:
    """Statistics of a stochastic answer, graded against bands of the reference over many seeds.

    ``args(seed)`` builds one seeded probe, ``stats(output, args) -> {name: float}`` summarises the
    output; the reference's [min, max] over ``seeds`` seeds, widened by a quarter of the range and at
    least ``min_margin`` (``min_margins[stat]`` for a statistic that varies little), is stored in ``solutions/<assignment>/bands.json``
    (``scripts/calibrate_bands.py``); an answer's statistics on ``graded_seeds`` must stay inside."""

    args: Callable[[int], tuple]
    stats: Callable[[Any, tuple], dict]
    seeds: int = 40
    min_margin: float = 0.02
    min_margins: dict[str, float] = field(default_factory=dict)    # per statistic, where it varies little
    harness: Callable | None = None
    global_seed: bool = False               # also seed torch's global generator with the seed
    graded_seeds: tuple[int, ...] = (1000, 1001, 1002)


@dataclass(kw_only=True)
class Exercise:
    """A graded exercise: keyed by ``(assignment, exercise_id)``, the grade id of its solution cell."""

    assignment: str
    exercise_id: str
    function: str                                   # the name the student defines
    title: str
    reference: Callable
    cases: Callable[..., list[tuple]]               # () or (seed) -> probe arguments, compared output for output
    misconceptions: list[Misconception]
    hints: tuple[str, str, str]                     # hint, stronger hint, the solution as code
    fallback: str                                   # the message when no known mistake matches
    forbidden: tuple[str, ...] = ()                 # dotted names the answer may not call
    returns: str = "tensor"                         # tensor | scalar | float | any
    atol: float = 1e-5
    rtol: float = 1e-4
    shape: str = "the same shape as its input"      # said when a tensor's shape is wrong
    harness: Callable | None = None                 # for answers that act on state (harnesses.py)
    probes: dict[str, Probe] = field(default_factory=dict)
    properties: list[Property] = field(default_factory=list)
    bands: Bands | None = None                      # stochastic answers: graded by bands, not equality
    gradient: bool = False                          # losses: the gradient must flow back to the inputs
    _calls: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.assignment, self.exercise_id

    def calls(self, seed: int = 0) -> list[Call]:
        """Every run of the answer the checks need: the cases, the named probes, the band probes (built
        once per ``seed``: the probes are deterministic). ``seed`` is the per-submission probe seed (0 in
        self-study); ``cases`` that take an argument draw their random inputs from it."""
        if seed not in self._calls:
            self._calls[seed] = self._build_calls(seed)
        return self._calls[seed]

    def _build_calls(self, seed: int) -> list[Call]:
        cases = self.cases(seed) if inspect.signature(self.cases).parameters else self.cases()
        calls = [Call(name=f"case-{i}", args=args, harness=self.harness, grad=self.gradient)
                 for i, args in enumerate(cases)]
        for name, probe in self.probes.items():
            calls.append(Call(name=name, args=probe.args(), harness=probe.harness or self.harness,
                              global_seed=probe.global_seed))
        if self.bands is not None:
            calls += [self.band_call(seed) for seed in self.bands.graded_seeds]
        return calls

    def band_call(self, seed: int) -> Call:
        return Call(name=f"band-{seed}", args=self.bands.args(seed), harness=self.bands.harness or self.harness,
                    global_seed=seed if self.bands.global_seed else None)


class ProbeFailed(Exception):
    """A check asked for the output of a probe on which the answer raised (or did not run)."""


def to_torch(data, form: dict):
    """Plain data from the runner back into what the checks compare: tensors for tensors."""
    kind = form.get("type")
    if kind == "tensor":
        return torch.from_numpy(data)
    if kind in ("list", "tuple"):
        items = [to_torch(d, f) for d, f in zip(data, form["items"])]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {k: to_torch(data[k], form["items"][k]) for k in data}
    return data


class Answer:
    """What the answer did on its probes, as the checks see it (outputs as tensors and numbers)."""

    def __init__(self, exercise: Exercise, record: Record, seed: int = 0):
        self.exercise, self.record, self.seed = exercise, record, seed
        self._cache: dict[str, Any] = {}

    def run(self, name: str) -> Run | None:
        return self.record.run(name)

    def args(self, name: str) -> tuple:
        """The arguments probe ``name`` was run on (built on the trusted side)."""
        return next(c.args for c in self.exercise.calls(self.seed) if c.name == name)

    @property
    def case_args(self) -> list[tuple]:
        return [c.args for c in self.exercise.calls(self.seed) if c.name.startswith("case-")]

    def on(self, name: str):
        """The output of probe ``name`` (``case-<i>`` for the cases); :class:`ProbeFailed` if it raised."""
        if name not in self._cache:
            run = self.record.run(name)
            if run is None or run.status != "ok":
                raise ProbeFailed(name)
            self._cache[name] = to_torch(run.output, run.form)
        return self._cache[name]

    @property
    def cases(self) -> list:
        return [self.on(r.name) for r in self.record.runs if r.name.startswith("case-")]

    def same(self, first: str, second: str) -> bool:
        """Whether two probes gave exactly the same output (False when either raised)."""
        try:
            a, b = self.on(first), self.on(second)
        except ProbeFailed:
            return False
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a.shape == b.shape and bool(torch.equal(a, b))
        return a == b


@dataclass
class Diagnosis:
    ok: bool
    kind: str         # ok | missing | not-answered | shortcut | error | type | mutated | misconception | wrong
    message: str
    misconception: str | None = None
    printed: bool = field(default=False, repr=False, compare=False)   # check() already printed it

    def __bool__(self) -> bool:
        return self.ok

    def _ipython_display_(self) -> None:
        """In a notebook, a check's result is shown once (check() printed it)."""
        if not self.printed:
            print(self.message)
