"""Regenerate the grading bands of the stochastic exercises: ``solutions/<assignment>/bands.json``.

A stochastic exercise (a random start, a GAN step) cannot be graded by equality with one reference
output: a correct answer that draws its random numbers differently must pass. Its grader
(``coursekit.exercises.judge``) instead checks statistics of the answer's output against bands: the
[min, max] of the same statistics over the reference run under many fixed seeds, widened by a margin.
This script computes them, with the same seeds every time (so regenerating gives the same file).

    .venv/bin/python scripts/calibrate_bands.py                  # every assignment with a stochastic exercise
    .venv/bin/python scripts/calibrate_bands.py 03_defenses_transferability
    .venv/bin/python scripts/calibrate_bands.py --check          # exit 1 when a stored file is stale
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("COURSEKIT_OFFLINE", "1")


def render(bands: dict) -> str:
    return json.dumps(bands, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from coursekit import exercises

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--check", action="store_true", help="compare with the stored files, write nothing")
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)           # the same summation order on every machine size
    stochastic = sorted({e.assignment for e in exercises.EXERCISES.values() if e.bands is not None})
    stale = []
    for assignment in args.assignments or stochastic:
        text = render(exercises.calibrate_assignment(assignment))
        path = exercises.bands_path(assignment, args.root)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.write_text(text)
        print(f"wrote {path.relative_to(args.root) if path.is_relative_to(args.root) else path}")
    for path in stale:
        print(f"stale: {path} (run scripts/calibrate_bands.py)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
