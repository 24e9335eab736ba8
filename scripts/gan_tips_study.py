"""Write the stored result of lecture 05's tip studies (coursekit/assets/gan_tips_study.json).

Every study of ``coursekit.gan.study.STUDIES`` at the learner's budget (``STUDY_STEPS`` generator
steps, seeds ``STUDY_SEEDS``), on the CPU with one torch thread: exactly what the notebook computes
live without ``COURSEKIT_FAST``. With the fast budgets (grading, CI, the quick site build) the
notebook reads this file instead and says so. Re-run after changing a study's definition
(``stored_study`` refuses a stale file):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/gan_tips_study.py
"""
from __future__ import annotations

import json
import platform
import time

import torch

from coursekit.gan import study


def main() -> None:
    torch.set_num_threads(1)
    start = time.time()
    studies = {}
    for name, settings in study.STUDIES.items():
        result = study.compare(settings, seeds=study.STUDY_SEEDS, steps=study.STUDY_STEPS)
        result.pop("source")
        studies[name] = result
        print(f"{name}: done ({time.time() - start:.0f} s)", flush=True)
    stored = {
        "made_by": f"scripts/gan_tips_study.py, torch {torch.__version__}, CPU ({platform.machine()}), 1 thread",
        "seconds": round(time.time() - start),
        "studies": studies,
    }
    study.STORED.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"wrote {study.STORED} ({study.STORED.stat().st_size / 1e3:.0f} kB) in {stored['seconds']} s")


if __name__ == "__main__":
    main()
