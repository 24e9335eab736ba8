"""Lecture 02 (the linear explanation): the worst-case perturbation, FGSM in closed form for logistic
regression, the smallest flipping eps.

How an exercise is declared and judged: :mod:`coursekit.exercises.judge.exercise` and
docs/CONVENTIONS.md ("Exercise registry"). Listed in :data:`coursekit.exercises.judge.registry.LECTURES`.
"""
from __future__ import annotations

import torch

from coursekit.exercises import probes
from coursekit.exercises.judge.exercise import Exercise, Misconception

ASSIGNMENT = "02_linear_explanation"
EXERCISES: list[Exercise] = []


# ---- 02 exercise 1: the worst-case perturbation

def _worst_cases(seed: int = 0):
    g = torch.Generator().manual_seed(4 + 1000 * seed)      # seed: the per-submission probe seed
    return [(torch.randn(1000, generator=g, dtype=torch.float64), 0.05),
            (torch.randn(50, generator=g), 0.3), (torch.tensor([0.5, -2.0, 3.0]), 0.1)]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex1-worst-perturbation", function="worst_perturbation",
    title="Exercise 1 (the worst-case perturbation)", reference=lambda w, eps: eps * torch.sign(w), cases=_worst_cases,
    misconceptions=[
        Misconception(name="decreases the score", wrong=lambda w, eps: -eps * torch.sign(w),
                      hint="Your eta LOWERS w^T x: move every entry in the direction of the sign of its weight."),
        Misconception(name="scaled weights", wrong=lambda w, eps: eps * w,
                      hint="eps * w does not use the budget: entries with small weights barely move. Use eps * sign(w): every entry moves by eps."),
        Misconception(name="normalised weights", wrong=lambda w, eps: eps * w / w.abs().max(),
                      hint="Scaling w so that its largest entry is eps leaves the other entries below eps: use eps * sign(w)."),
    ],
    hints=("Maximise w^T eta = sum_i w_i eta_i with |eta_i| <= eps: each term on its own.",
           "The best eta_i is +eps when w_i > 0 and -eps when w_i < 0: torch.sign does that.",
           "def worst_perturbation(w, eps):\n    return eps * torch.sign(w)"),
    fallback="w^T eta must reach its maximum eps * ||w||_1: every entry moves by eps in the direction of its weight's sign.",
    forbidden=("coursekit.linear.fgsm_linear",),
    atol=1e-9,
))


# ---- 02 exercise 2: FGSM in closed form for logistic regression

def _logit_ref(w, x, y, eps):
    direction = (1 - 2 * y.to(x.dtype)).view(-1, 1)            # sign(p - y), y in {0, 1} of any dtype
    return (x + eps * direction * torch.sign(w)).clamp(0, 1)


def _logit_cases(seed: int = 0):
    g = torch.Generator().manual_seed(5 + 1000 * seed)
    w = 0.01 * torch.randn(784, generator=g)
    x = torch.rand(16, 784, generator=g)
    y = torch.randint(0, 2, (16,), generator=g)
    w2 = torch.tensor([1.0, -1.0, 2.0])
    return [(w, x, y, 0.2), (w2, torch.full((2, 3), 0.5), torch.tensor([1, 0]), 0.1),
            (w2, torch.tensor([[0.95, 0.05, 0.5], [0.02, 0.99, 0.5]]), torch.tensor([0.0, 1.0]), 0.3)]


def _logit_wrong(direction_of_y, clip=True):
    def wrong(w, x, y, eps):
        out = x + eps * direction_of_y(y.to(x.dtype)).view(-1, 1) * torch.sign(w)
        return out.clamp(0, 1) if clip else out
    return wrong


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex2-fgsm-logistic", function="fgsm_logistic",
    title="Exercise 2 (FGSM in closed form)", reference=_logit_ref, cases=_logit_cases,
    misconceptions=[
        Misconception(name="no clip", wrong=_logit_wrong(lambda y: 1 - 2 * y, clip=False),
                      hint="Clip x_adv to [0, 1] (.clamp(0, 1)): inputs are pixel values."),
        Misconception(name="direction flipped", wrong=_logit_wrong(lambda y: 2 * y - 1),
                      hint="Wrong direction: for y = 1 the attack must LOWER the score w^T x, so the step is (1 - 2y) * sign(w)."),
        Misconception(name="label ignored", wrong=_logit_wrong(lambda y: torch.ones_like(y)),
                      hint="The direction depends on the label: (1 - 2y) is +1 for y = 0 and -1 for y = 1."),
    ],
    hints=("The gradient of the log-loss is (p - y) w and 0 < p < 1: what is the sign of p - y for y = 0 and for y = 1?",
           "sign(p - y) = 1 - 2y. Make it a column, (1 - 2y).view(-1, 1), so it broadcasts over the n inputs, multiply by "
           "eps * sign(w), add to x, clip to [0, 1].",
           "def fgsm_logistic(w, x, y, eps):\n"
           "    direction = (1 - 2 * y.to(x.dtype)).view(-1, 1)\n"
           "    return (x + eps * direction * torch.sign(w)).clamp(0, 1)"),
    fallback="x_adv = clip(x + eps * (1 - 2y) * sign(w)) to [0, 1].",
    forbidden=("coursekit.linear.fgsm_linear", "coursekit.attacks.fgsm"),
    atol=1e-6,
))


# ---- 02 exercise 3: the smallest flipping eps

def _flip_ref(W, b, x, y, t):
    margin = (W[y] - W[t]) @ x + (b[y] - b[t])
    return float(margin / (W[y] - W[t]).abs().sum())


def _flip_cases():
    logreg = probes.model("mnist_logreg")
    W, b = logreg.linear.weight.detach(), logreg.linear.bias.detach()
    x, y = probes.digits(64)
    cases = [(W, b, x[i].flatten(), int(y[i]), (int(y[i]) + k) % 10) for i, k in ((0, 1), (1, 3), (2, 5), (3, 7))]
    g = torch.Generator().manual_seed(7)
    W2, b2 = torch.randn(4, 20, generator=g), torch.randn(4, generator=g) * 3
    return cases + [(W2, b2, torch.rand(20, generator=g), 1, 2), (W2, b2, torch.rand(20, generator=g), 0, 3)]


EXERCISES.append(Exercise(
    assignment=ASSIGNMENT, exercise_id="ex3-min-flip", function="min_flip_eps",
    title="Exercise 3 (the smallest flipping eps)", reference=_flip_ref, cases=_flip_cases,
    misconceptions=[
        Misconception(name="no biases", wrong=lambda W, b, x, y, t: float((W[y] - W[t]) @ x / (W[y] - W[t]).abs().sum()),
                      hint="Include the biases in the margin: z_y - z_t = (w_y - w_t)^T x + (b_y - b_t)."),
        Misconception(name="L2 norm", wrong=lambda W, b, x, y, t: float(((W[y] - W[t]) @ x + b[y] - b[t]) / (W[y] - W[t]).norm()),
                      hint="Divide by the L1 norm of (w_y - w_t): an L-infinity budget eps lowers the margin by eps * ||w_y - w_t||_1, not the L2 norm."),
        Misconception(name="swapped classes", wrong=lambda W, b, x, y, t: float(((W[t] - W[y]) @ x + b[t] - b[y]) / (W[y] - W[t]).abs().sum()),
                      hint="The margin is z_y - z_t (true class minus target), positive while x is still classified as y."),
        Misconception(name="no absolute value", wrong=lambda W, b, x, y, t: float(((W[y] - W[t]) @ x + b[y] - b[t]) / (W[y] - W[t]).sum()),
                      hint="The norm needs absolute values: ||w_y - w_t||_1 = (w_y - w_t).abs().sum()."),
    ],
    hints=("eps* = margin / (how much one unit of eps lowers the margin). Write the margin z_y - z_t first.",
           "The margin is the difference of the two rows of W applied to x, plus the difference of the two biases; "
           "each unit of eps lowers it by the L1 norm of that row difference (the sum of its absolute values).",
           "def min_flip_eps(W, b, x, y, t):\n"
           "    margin = (W[y] - W[t]) @ x + (b[y] - b[t])\n"
           "    return float(margin / (W[y] - W[t]).abs().sum())"),
    fallback="eps* = (z_y - z_t) / ||w_y - w_t||_1, with the biases in the margin.",
    returns="float", atol=1e-5,
))


