"""Write the stored result of lecture 06's seed studies (coursekit/assets/applications_studies.json).

``coursekit.applications.studies``: CycleGAN over seeds, and the defect classifier trained on real,
oversampled and GAN-generated defects over seeds, at the learner's (default) budget, on the CPU with
one torch thread: exactly what the notebook computes live without ``COURSEKIT_FAST``. With the fast
budgets (grading, CI, the quick site build) the notebook reads this file instead and says so. Re-run
after changing a study's definition (a stale file is refused):

    OMP_NUM_THREADS=1 .venv/bin/python scripts/applications_studies.py
"""
from __future__ import annotations

import torch

from coursekit.applications import studies


def main() -> None:
    torch.set_num_threads(1)
    path = studies.write_stored()
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
