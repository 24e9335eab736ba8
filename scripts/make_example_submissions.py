"""Regenerate the bundled example submissions from the released notebooks.

For every assignment in notebooks/ (the student versions):
- ``alice_correct``: each solution cell holds the instructor's solution (markers removed);
- ``bob_blank``: the notebook exactly as released (nothing answered);
- ``carol_wrong``: the correct answers with the typical mistakes in ``MISTAKES`` applied,
  so that public checks pass but hidden ones fail (a partial grade).

Run after ``coursekit release``: ``python scripts/make_example_submissions.py``.
tests/test_pipeline.py checks that the bundled files equal what this script makes.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "examples" / "submissions"

# assignment -> [(grade_id of a solution cell, text in the solution, wrong replacement)]
MISTAKES = {
    "01_adversarial_examples": [
        # FGSM that steps *down* the loss gradient: bounded and in range, but helps the model.
        ("ex2-fgsm", "x + eps * grad.sign()", "x - eps * grad.sign()"),
        # Projection onto the eps-ball only, forgetting the image range [0, 1].
        ("ex3-projection", "return (x + delta).clamp(0, 1)", "return x + delta"),
        # The fooling loop keeps moving images that are already confident (no torch.where): they still end
        # confident, so the public checks pass, but the images differ from the loop's.
        ("ex-fooling-loop", "x = torch.where(done.view(-1, 1, 1, 1), x, stepped).detach()", "x = stepped.detach()"),
        # PGD's random start not clipped to [0, 1]: the first gradient is taken outside the image range.
        ("ex-pgd-loop", "x_adv = (x + delta).clamp(0, 1)", "x_adv = x + delta"),
    ],
    "02_linear_explanation": [
        # Forgot the clip to [0, 1].
        ("ex2-fgsm-logistic", "return (x + eps * direction * torch.sign(w)).clamp(0, 1)",
         "return x + eps * direction * torch.sign(w)"),
        # Margin without the biases.
        ("ex3-min-flip", "margin = (W[y] - W[t]) @ x + (b[y] - b[t])", "margin = (W[y] - W[t]) @ x"),
        # The L2 norm of w in the robust margin: an L-infinity attack lowers it by eps * ||w||_1.
        ("ex-robust-logistic", "margin = s * (x @ w + b) - eps * w.abs().sum()", "margin = s * (x @ w + b) - eps * w.norm()"),
    ],
    "03_defenses_transferability": [
        # The bypass loss with the wrong sign on the classifier term (it helps the classifier).
        ("ex1-bypass-loss", "leave_class = -F.cross_entropy(", "leave_class = F.cross_entropy("),
        # Divides by all examples, counting the target's own mistakes as successes.
        ("ex3-transfer", "return float((fooled & correct).sum() / correct.sum())",
         "return float(fooled.float().mean())"),
        # No optimizer.zero_grad() in the adversarial-training epoch: every batch's gradients add up.
        ("ex-at-epoch", "        optimizer.zero_grad()\n", ""),
    ],
    "04_gan_game": [
        # log(sigmoid(.)) instead of softplus: right on moderate logits, -inf / inf for confident ones.
        ("ex1-d-loss", "return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()",
         "return -torch.log(torch.sigmoid(real_logits)).mean() - torch.log(1 - torch.sigmoid(fake_logits)).mean()"),
        # The saturating (minimax) cost mean log(1 - D(G(z))) instead of -mean log D(G(z)).
        ("ex3-ns-loss", "return F.softplus(-fake_logits).mean()", "return -F.softplus(fake_logits).mean()"),
        # ReLU between D's layers instead of LeakyReLU(0.2): right shapes and logits, another discriminator.
        ("ex4-ring-networks", "nn.LeakyReLU(0.2)", "nn.ReLU()"),
    ],
    "05_gan_training_tips": [
        # Fakes not detached in the discriminator steps: D's loss sends gradients into G.
        ("ex1-training-step", "fake = G(z).detach()", "fake = G(z)"),
        # Two-sided smoothing: the fake targets become 1 - smooth instead of 0.
        ("ex2-smoothing", "torch.zeros_like(fake_logits)", "torch.full_like(fake_logits, 1 - smooth)"),
        # The generator step reuses the last discriminator noise batch instead of drawing a fresh one.
        ("ex4-training-loop", "        z = torch.randn(batch_size, G.z_dim, generator=gen)\n        g_loss",
         "        g_loss"),
    ],
    "06_gan_applications": [
        # The discriminator called D(source, candidate) instead of D(candidate, source): the losses look as
        # they should at the start (public checks pass), but D judges the wrong pairs.
        ("ex-pix2pix-step", "return discriminator(candidate, source)", "return discriminator(source, candidate)"),
        # A squared error instead of the L1 round-trip error of CycleGAN.
        ("ex1-cycle-loss", "return (x_reconstructed - x).abs().mean()", "return (x_reconstructed - x).pow(2).mean()"),
        # 20 log10 (the amplitude form) applied to the MSE: every PSNR doubles.
        ("ex2-psnr", "return 10 * torch.log10(1.0 / mse)", "return 20 * torch.log10(1.0 / mse)"),
        # Squared distances: the right neighbour, the wrong distance.
        ("ex3-nearest-neighbour", "d = torch.cdist(queries.flatten(1), references.flatten(1))",
         "d = torch.cdist(queries.flatten(1), references.flatten(1)) ** 2"),
    ],
    "07_evaluating_gans": [
        # The textbook (Wald) interval p +- z sqrt(p(1-p)/n) instead of Wilson's: plausible in the middle.
        ("ex-annotation-accuracy", "result[name] = (p, max(0.0, centre - half), min(1.0, centre + half))",
         "result[name] = (p, max(0.0, p - z * (p * (1 - p) / n) ** 0.5), min(1.0, p + z * (p * (1 - p) / n) ** 0.5))"),
        # Wilson bound without the z^2/(4n^2) term: fine in the middle, wrong at k = 0 or n.
        ("ex1-wilson", "(p * (1 - p) / n + z**2 / (4 * n**2)) ** 0.5", "(p * (1 - p) / n) ** 0.5"),
        # p(y) as the softmax of the mean logit instead of the mean of the softmax probabilities.
        ("ex2-inception-score", "log_p_y = p_yx.mean(0).log()",
         "log_p_y = torch.log_softmax(logits.double().mean(0), dim=0)"),
        # Covariance over the wrong axis: (N, N) between images instead of (d, d) between features.
        ("ex3-frechet", "torch.cov(a.T), torch.cov(b.T)", "torch.cov(a), torch.cov(b)"),
    ],
}

_SOLUTION = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.MULTILINE)


def solution_sources(source_nb) -> dict[str, str]:
    """grade_id -> solution cell source without the BEGIN/END SOLUTION marker lines."""
    return {c.metadata["nbgrader"]["grade_id"]: _SOLUTION.sub("", c.source)
            for c in source_nb.cells if c.metadata.get("nbgrader", {}).get("solution")}


def fill(released_nb, answers: dict[str, str]):
    nb = nbformat.from_dict(released_nb)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def make(root: Path = ROOT, out: Path = OUT) -> list[Path]:
    written = []
    for released in sorted((root / "notebooks").glob("*/*.ipynb")):
        assignment = released.parent.name
        source = nbformat.read(root / "solutions" / assignment / released.name, as_version=4)
        if not any(c.metadata.get("nbgrader", {}).get("grade") for c in source.cells):
            continue  # no exercises (00_start_here): nothing to submit or grade
        student_nb = nbformat.read(released, as_version=4)
        correct = solution_sources(source)
        wrong = dict(correct)
        for grade_id, good, bad in MISTAKES.get(assignment, []):
            if good not in wrong[grade_id]:
                raise SystemExit(f"{assignment}/{grade_id}: the text {good!r} to break is not in the solution")
            wrong[grade_id] = wrong[grade_id].replace(good, bad)
        for student, nb in (("alice_correct", fill(student_nb, correct)),
                            ("bob_blank", student_nb),
                            ("carol_wrong", fill(student_nb, wrong))):
            path = out / student / assignment / released.name
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            written.append(path)
    return written


if __name__ == "__main__":
    for p in make(ROOT, Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}")
