"""The human real-vs-fake game: people as the discriminator.

A GAN is good when a person cannot tell its samples from real ones. The game
shows a shuffled mix of real and generated images one at a time; the player
clicks "Real" or "Fake". Each answer is appended as a row
``annotator, image_id, truth, answer, seconds`` to a CSV file, so several
players (or sessions) can be merged and summarised:

- accuracy ``k / n`` with a Wilson 95% confidence interval (chance is 0.5: an
  interval that contains 0.5 means "cannot tell real from fake");
- the fooling rate: the fraction of *fake* images judged real.

The core is plain functions (:func:`record_answer`, :func:`read_annotations`,
:func:`annotation_summary`, :func:`wilson_interval`); :class:`RealFakeGame` is a
small ipywidgets front end whose buttons call :meth:`RealFakeGame.answer`, so it
can be driven from code and tested without a browser.
"""
from __future__ import annotations

import csv
import html
import io
import math
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from coursekit.checks import CourseKitError, check_images

__all__ = [
    "COLUMNS", "ANSWERS", "RealFakeGame", "annotation_summary", "plot_summary",
    "accuracy_per_annotator", "read_annotations", "record_answer", "wilson_interval", "wilson_lower",
]

COLUMNS = ("annotator", "image_id", "truth", "answer", "seconds")
ANSWERS = ("real", "fake")

PathLike = str | os.PathLike


# ====================================================================== statistics

def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (z = 1.96: 95%).

    ``p = k/n``;  centre ``= (p + z^2/(2n)) / (1 + z^2/n)``;
    half width ``= z / (1 + z^2/n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))``.

    Unlike the textbook ``p +- z sqrt(p(1-p)/n)`` it stays inside [0, 1] and is
    not of width 0 at ``k = 0`` or ``k = n``: the right interval for 20 clicks.
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise CourseKitError(f"k and n must be whole numbers, got k={k!r}, n={n!r}.")
    k, n = int(k), int(n)
    if n < 1:
        raise CourseKitError(f"A proportion needs n >= 1 trials, got n={n}.")
    if not 0 <= k <= n:
        raise CourseKitError(f"k must be between 0 and n={n}, got k={k}.")
    try:
        z = float(z)
    except (TypeError, ValueError):
        raise CourseKitError(f"z must be a number, got {z!r}.") from None
    if not z > 0 or math.isinf(z):
        raise CourseKitError(f"z must be a finite number > 0 (1.96 for 95%), got {z!r}.")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends: the formula gives 0 and 1 there
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def wilson_lower(k: int, n: int, z: float = 1.96) -> float:
    """The lower end of :func:`wilson_interval`: "better than chance" means ``wilson_lower(k, n) > 0.5``."""
    return wilson_interval(k, n, z)[0]


def _proportion(k: int, n: int, z: float) -> tuple[float, tuple[float, float]]:
    if n == 0:
        return math.nan, (math.nan, math.nan)
    return k / n, wilson_interval(k, n, z)


def _summarise(rows: Sequence[dict], z: float) -> dict:
    n = len(rows)
    correct = sum(r["truth"] == r["answer"] for r in rows)
    fakes = [r for r in rows if r["truth"] == "fake"]
    reals = [r for r in rows if r["truth"] == "real"]
    fooled = sum(r["answer"] == "real" for r in fakes)
    accuracy, accuracy_ci = _proportion(correct, n, z)
    fooling_rate, fooling_ci = _proportion(fooled, len(fakes), z)
    return {
        "n": n,
        "correct": correct,
        "accuracy": accuracy,
        "accuracy_ci": accuracy_ci,
        "n_real": len(reals),
        "n_fake": len(fakes),
        "fakes_judged_real": fooled,
        "fooling_rate": fooling_rate,
        "fooling_rate_ci": fooling_ci,
        "real_accuracy": _proportion(sum(r["answer"] == "real" for r in reals), len(reals), z)[0],
        "mean_seconds": sum(r["seconds"] for r in rows) / n if n else math.nan,
    }


def annotation_summary(rows: Iterable[dict], z: float = 1.96) -> dict:
    """Accuracy (with Wilson CI) and fooling rate, overall and per annotator.

    ``accuracy = #(answer == truth) / n``; ``fooling_rate = #(fake judged real) / #fake``.
    Returns ``{"overall": {...}, "per_annotator": {name: {...}}}`` where each
    ``{...}`` has ``n, correct, accuracy, accuracy_ci, n_real, n_fake,
    fakes_judged_real, fooling_rate, fooling_rate_ci, real_accuracy, mean_seconds``
    (NaN where a count is 0, e.g. no fakes shown).
    """
    rows = [_validated_row(r, where=f"row {i}") for i, r in enumerate(rows)]
    if not rows:
        raise CourseKitError("No annotations to summarise: play the game (or read a CSV) first.")
    names = sorted({r["annotator"] for r in rows})
    return {
        "overall": _summarise(rows, z),
        "per_annotator": {name: _summarise([r for r in rows if r["annotator"] == name], z) for name in names},
    }


# ====================================================================== CSV

def _normalise_label(value, name: str) -> str:
    label = str(value).strip().lower() if isinstance(value, str) else value
    if label not in ANSWERS:
        raise CourseKitError(f"{name} must be 'real' or 'fake', got {value!r}.")
    return label


def _validated_row(row: dict, where: str = "row") -> dict:
    if not isinstance(row, dict):
        raise CourseKitError(f"{where}: an annotation is a dict with keys {', '.join(COLUMNS)}, got {type(row).__name__}.")
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise CourseKitError(f"{where} lacks the column(s) {', '.join(missing)}.")
    annotator = str(row["annotator"]).strip()
    if not annotator:
        raise CourseKitError(f"{where}: the annotator name is empty.")
    try:
        seconds = float(row["seconds"])
    except (TypeError, ValueError):
        raise CourseKitError(f"{where}: seconds must be a number, got {row['seconds']!r}.") from None
    if not seconds >= 0 or math.isinf(seconds):
        raise CourseKitError(f"{where}: seconds must be a finite number >= 0, got {row['seconds']!r}.")
    return {
        "annotator": annotator,
        "image_id": str(row["image_id"]),
        "truth": _normalise_label(row["truth"], f"{where}: truth"),
        "answer": _normalise_label(row["answer"], f"{where}: answer"),
        "seconds": seconds,
    }


def record_answer(csv_path: PathLike, annotator: str, image_id: str, truth: str, answer: str,
                  seconds: float) -> dict:
    """Append one answer as a CSV row ``annotator, image_id, truth, answer, seconds``.

    Creates the file with a header when it is new or empty; never rewrites
    existing rows. Each row goes out in a single append-mode write and is flushed
    to disk, so a crash loses at most the row being written and several
    processes may append to the same file. Returns the row as a dict.
    """
    if not isinstance(annotator, str) or not annotator.strip():
        raise CourseKitError(f"annotator must be a non-empty name (a string), got {annotator!r}.")
    row = _validated_row({"annotator": annotator, "image_id": image_id, "truth": truth,
                          "answer": answer, "seconds": seconds}, where="answer")
    path = Path(csv_path)
    if path.is_dir():
        raise CourseKitError(f"csv_path {path} is a folder; give a file name such as {path / 'answers.csv'}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    with open(path, "a+", newline="", encoding="utf-8") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            writer.writerow(COLUMNS)
        else:
            f.seek(0)
            header = f.readline().strip()
            if header != ",".join(COLUMNS):
                raise CourseKitError(
                    f"{path} is not an annotation file (its header is {header[:80]!r}, expected "
                    f"{','.join(COLUMNS)!r}). Choose another csv_path; the file was not changed."
                )
            f.seek(f.seek(0, os.SEEK_END) - 1)
            if f.read(1) != "\n":  # an interrupted write left half a line: end it first
                buffer.write("\n")
        writer.writerow([row["annotator"], row["image_id"], row["truth"], row["answer"],
                         f"{row['seconds']:.3f}"])
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    return row


def read_annotations(paths_or_path: PathLike | Iterable[PathLike]) -> list[dict]:
    """Read one or several annotation CSVs into a list of row dicts (merged in the order given).

    Each row: ``{"annotator": str, "image_id": str, "truth": "real"|"fake",
    "answer": "real"|"fake", "seconds": float}``. Rows with the wrong number of
    values (half-written by an interrupted session) are skipped with a warning;
    a row with a bad value is an error that names the file and line.
    """
    if isinstance(paths_or_path, (str, os.PathLike)):
        paths = [paths_or_path]
    else:
        try:
            paths = list(paths_or_path)
        except TypeError:
            raise CourseKitError(
                f"Give a CSV path or a list of paths, got {type(paths_or_path).__name__}."
            ) from None
    rows: list[dict] = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise CourseKitError(f"No annotation file at {path}.")
        with open(path, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines()
        if not lines:
            continue
        reader = csv.reader(lines)
        header = next(reader)
        if tuple(h.strip() for h in header) != COLUMNS:
            raise CourseKitError(f"{path} is not an annotation file: header {header}, expected {list(COLUMNS)}.")
        for number, values in enumerate(reader, start=2):
            if not values:
                continue
            if len(values) != len(COLUMNS):  # half a line from an interrupted write
                warnings.warn(f"{path}, line {number}: skipped an incomplete row {values}.", stacklevel=2)
                continue
            rows.append(_validated_row(dict(zip(COLUMNS, values)), where=f"{path}, line {number}"))
    return rows


def accuracy_per_annotator(paths: PathLike | Iterable[PathLike], z: float = 1.96) -> dict[str, tuple[float, float, float]]:
    """Each annotator's real-vs-fake accuracy with its Wilson interval, from annotation CSVs.

    ``paths``: one CSV or several (:func:`read_annotations`: merged, labels normalised, half-written rows
    skipped). Returns ``{annotator: (accuracy, low, high)}`` with ``accuracy = #(answer == truth) / n``
    and ``(low, high) = wilson_interval(#right, n, z)``, annotators in alphabetical order.
    """
    per_annotator = annotation_summary(read_annotations(paths), z)["per_annotator"]
    return {name: (s["accuracy"], *s["accuracy_ci"]) for name, s in per_annotator.items()}


# ====================================================================== plots

def plot_summary(summary: dict, ax=None):
    """Bar chart of accuracy per annotator (and overall) with Wilson 95% error bars; chance at 0.5."""
    import matplotlib.pyplot as plt

    groups = dict(summary["per_annotator"])
    if len(groups) > 1:
        groups["overall"] = summary["overall"]
    names = list(groups)
    acc = [groups[n]["accuracy"] for n in names]
    low = [max(0.0, groups[n]["accuracy"] - groups[n]["accuracy_ci"][0]) for n in names]
    high = [max(0.0, groups[n]["accuracy_ci"][1] - groups[n]["accuracy"]) for n in names]
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(names), 3.2))
    else:
        fig = ax.figure
    ax.bar(range(len(names)), acc, yerr=[low, high], capsize=4, color="tab:blue", alpha=0.8)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(range(len(names)), [f"{n}\n(n={groups[n]['n']})" for n in names])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% Wilson CI)")
    fooling = summary["overall"]["fooling_rate"]
    ax.set_title(f"Real or fake? fooling rate {fooling:.0%}" if fooling == fooling else "Real or fake?")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


# ====================================================================== the game

def _png_bytes(image: torch.Tensor, scale: int) -> bytes:
    """A (C, H, W) image in [0, 1] as PNG bytes, upscaled by ``scale`` with nearest neighbours."""
    import matplotlib.pyplot as plt

    array = image.detach().cpu().float().clamp(0, 1)
    array = array.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    buffer = io.BytesIO()
    if array.shape[0] == 1:
        plt.imsave(buffer, array[0].numpy(), cmap="gray", vmin=0, vmax=1, format="png")
    else:
        plt.imsave(buffer, array.permute(1, 2, 0).numpy(), format="png")
    return buffer.getvalue()


# The game's image is shown this wide on screen (nearest-neighbour upscaling and CSS
# ``image-rendering: pixelated`` keep a 28x28 digit crisp), with the controls beside it, so that
# the whole game fits a 1366x768 laptop screen and 20 answers need no scrolling.
GAME_IMAGE_PX = 280
_PIXELATED = "coursekit-pixelated"
_KEYS = {"r": "real", "f": "fake"}


class RealFakeGame:
    """Show ``n`` shuffled real and generated images; record "Real"/"Fake" answers to a CSV.

    ``n // 2`` real and ``n - n // 2`` fake images are drawn without replacement
    (seeded) and shuffled. Image ids are ``"real-<index>"`` / ``"fake-<index>"``
    (indices into the given tensors). ``answer("real")`` does what clicking the
    button (or typing R / F in the game's key box) does; ``display(game)`` (or
    ``game.widget``) shows the widgets, ``game.show_static()`` a matplotlib grid for
    when widgets cannot render.

    ``feedback=True`` says after each answer whether it was right (for a learner playing alone);
    ``feedback=False`` only acknowledges it, for collecting a class's answers (feedback would teach
    the players during the game and bias the later answers). ``scale``: the upscaling factor of the
    shown image (default: what makes it about ``GAME_IMAGE_PX`` pixels wide).
    """

    def __init__(self, real_images: torch.Tensor, fake_images: torch.Tensor, annotator: str,
                 csv_path: PathLike, n: int = 20, seed: int = 0, *, scale: int | None = None,
                 feedback: bool = True, clock: Callable[[], float] = time.perf_counter):
        check_images(real_images, "real_images")
        check_images(fake_images, "fake_images")
        if real_images.shape[1:] != fake_images.shape[1:]:
            raise CourseKitError(
                f"Real and fake images must have the same shape (C, H, W) or the game is too easy: "
                f"got {tuple(real_images.shape[1:])} and {tuple(fake_images.shape[1:])}."
            )
        if not isinstance(annotator, str) or not annotator.strip():
            raise CourseKitError(f"annotator must be a non-empty name, got {annotator!r}.")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise CourseKitError(f"n must be a positive integer, got {n!r}.")
        n_real, n_fake = n // 2, n - n // 2
        if n_real > len(real_images) or n_fake > len(fake_images):
            raise CourseKitError(
                f"n={n} needs {n_real} real and {n_fake} fake images, got {len(real_images)} "
                f"and {len(fake_images)}."
            )
        self.annotator = annotator.strip()
        self.csv_path = Path(csv_path)
        self.n = n
        self.scale = scale if scale is not None else max(1, math.ceil(GAME_IMAGE_PX / real_images.shape[-1]))
        self.feedback = bool(feedback)
        self._clock = clock
        g = torch.Generator().manual_seed(seed)
        real_idx = torch.randperm(len(real_images), generator=g)[:n_real].tolist()
        fake_idx = torch.randperm(len(fake_images), generator=g)[:n_fake].tolist()
        items = [("real", i, real_images[i]) for i in real_idx] + [("fake", i, fake_images[i]) for i in fake_idx]
        order = torch.randperm(n, generator=g).tolist()
        self.items = [(f"{truth}-{index}", truth, image.detach().cpu()) for truth, index, image in
                      (items[j] for j in order)]
        self.position = 0
        self.rows: list[dict] = []
        self._widgets = None
        self._keys_seen = ""
        self._shown_at = self._clock()

    # ------------------------------------------------------------ core
    @property
    def done(self) -> bool:
        return self.position >= self.n

    @property
    def current_image(self) -> torch.Tensor | None:
        return None if self.done else self.items[self.position][2]

    def answer(self, label: str) -> dict:
        """Record ``"real"`` or ``"fake"`` for the image on show, append it to the CSV, show the next one."""
        label = _normalise_label(label, "answer")
        if self.done:
            raise CourseKitError(f"The game is over ({self.n} answers recorded): start a new RealFakeGame.")
        image_id, truth, _ = self.items[self.position]
        seconds = max(0.0, self._clock() - self._shown_at)
        row = record_answer(self.csv_path, self.annotator, image_id, truth, label, seconds)
        self.rows.append(row)
        self.position += 1
        self._shown_at = self._clock()
        self._refresh()
        return row

    def summary(self) -> dict:
        """:func:`annotation_summary` of this game's answers."""
        return annotation_summary(self.rows)

    def plot_summary(self):
        return plot_summary(self.summary())

    def result_text(self) -> str:
        s = self.summary()["overall"]
        lo, hi = s["accuracy_ci"]
        text = (f"{s['correct']}/{s['n']} correct: accuracy {s['accuracy']:.0%} "
                f"(95% CI {lo:.0%}-{hi:.0%}). ")
        if s["n_fake"]:
            text += f"Fakes judged real: {s['fakes_judged_real']}/{s['n_fake']} ({s['fooling_rate']:.0%}). "
        text += ("Your interval contains 50%: you could not reliably tell real from fake."
                 if lo <= 0.5 <= hi else
                 "Better than chance: you can tell them apart." if lo > 0.5 else
                 "Worse than chance: the fakes look more real to you than the real images!")
        return text

    # ------------------------------------------------------------ widgets
    @property
    def widget(self):
        """The ipywidgets UI (built on first use): the image with the controls beside it, and the result.

        Controls: Real / Fake buttons, a key box (click it once, then type R or F for each image), a
        progress bar, and the last answer's feedback. When the game is over, the image and the
        controls disappear and the result takes their place (no blank space is left).
        """
        if self._widgets is None:
            import ipywidgets as widgets

            px = f"{GAME_IMAGE_PX}px"
            image = widgets.Image(format="png", layout=widgets.Layout(width=px, height=px, object_fit="contain"))
            image.add_class(_PIXELATED)
            real = widgets.Button(description="Real (R)", button_style="success",
                                  layout=widgets.Layout(width="120px"))
            fake = widgets.Button(description="Fake (F)", button_style="danger",
                                  layout=widgets.Layout(width="120px"))
            real.on_click(lambda _button: self.answer("real"))
            fake.on_click(lambda _button: self.answer("fake"))
            keys = widgets.Text(placeholder="click, then type R or F", continuous_update=True,
                                layout=widgets.Layout(width="244px"))
            keys.observe(self._on_keys, names="value")
            progress = widgets.Label()
            bar = widgets.IntProgress(value=0, min=0, max=self.n, layout=widgets.Layout(width="244px"))
            said = widgets.HTML()
            result = widgets.HTML()
            style = widgets.HTML(f"<style>.{_PIXELATED}, .{_PIXELATED} img {{ image-rendering: pixelated; }}</style>")
            mode = "you are told after each answer" if self.feedback else "answers are collected without feedback"
            header = widgets.HTML(f"<b>Real or fake?</b> Player: {html.escape(self.annotator)} &middot; {mode}")
            controls = widgets.VBox([progress, bar, widgets.HBox([real, fake]), keys, said],
                                    layout=widgets.Layout(padding="0 0 0 16px"))
            play = widgets.HBox([image, controls], layout=widgets.Layout(align_items="flex-start"))
            box = widgets.VBox([style, header, play, result])
            self._widgets = {"box": box, "image": image, "real": real, "fake": fake, "keys": keys,
                             "progress": progress, "bar": bar, "said": said, "result": result,
                             "play": play}
            self._refresh()
            self._shown_at = self._clock()
        return self._widgets["box"]

    def _on_keys(self, change) -> None:
        """Answer for each R or F typed into the key box since the last call (other keys are ignored).

        The box is never cleared from here: a reset racing with the next keystroke could drop or
        repeat an answer. Only what was typed beyond the text already seen counts.
        """
        text = str(change["new"]).lower()
        fresh = text[len(self._keys_seen):] if text.startswith(self._keys_seen) else ""
        self._keys_seen = text
        for key in fresh:
            if key in _KEYS and not self.done:
                self.answer(_KEYS[key])

    @property
    def buttons(self) -> dict:
        """``{"real": Button, "fake": Button}`` (builds the widget)."""
        _ = self.widget
        return {"real": self._widgets["real"], "fake": self._widgets["fake"]}

    def _said(self) -> str:
        """The line after an answer: right or wrong (``feedback=True``) or just 'recorded'."""
        if not self.rows:
            return ""
        row = self.rows[-1]
        number = len(self.rows)
        if not self.feedback:
            return f"Answer {number} recorded."
        if row["answer"] == row["truth"]:
            return f"<span style='color:#1a7f37'>&#10003; Right: image {number} was {row['truth']}.</span>"
        return f"<span style='color:#cf222e'>&#10007; Image {number} was {row['truth']}.</span>"

    def _refresh(self) -> None:
        if self._widgets is None:
            return
        w = self._widgets
        w["bar"].value = self.position
        w["said"].value = self._said()
        if self.done:
            w["progress"].value = f"Done: {self.n}/{self.n} answered."
            w["result"].value = f"<p>{html.escape(self.result_text())}</p>"
            w["real"].disabled = w["fake"].disabled = w["keys"].disabled = True
            w["play"].layout.display = "none"     # the result takes the game's place: no blank gap
        else:
            w["image"].value = _png_bytes(self.items[self.position][2], self.scale)
            w["progress"].value = f"Image {self.position + 1} of {self.n}"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def show(self, columns: int = 10):
        """The widgets in a live session; the static figure (:meth:`show_static`) while grading.

        Like :func:`coursekit.widgets.show`: under nbgrader or ``COURSEKIT_FAST=1``
        (``runtime.is_grading()``) returns the matplotlib figure, else displays the
        game and returns None.
        """
        from coursekit import runtime

        if runtime.is_grading():
            return self.show_static(columns)
        from IPython.display import display

        display(self.widget)
        return None

    # ------------------------------------------------------------ static fallback
    def show_static(self, columns: int = 10):
        """A matplotlib figure of all ``n`` images, numbered in play order (no labels shown).

        For when widgets cannot render: write down "real"/"fake" per number and
        feed them in order with ``game.answer(...)``. After the game the figure of
        the summary is :meth:`plot_summary`.
        """
        import matplotlib.pyplot as plt

        columns = max(1, min(columns, self.n))
        rows = math.ceil(self.n / columns)
        fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.35 * rows), squeeze=False)
        for k, ax in enumerate(axes.flat):
            ax.axis("off")
            if k < self.n:
                image = self.items[k][2].float().clamp(0, 1)
                if image.shape[0] == 1:
                    ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(image.permute(1, 2, 0).numpy())
                ax.set_title(str(k + 1), fontsize=8)
        fig.suptitle("Real or fake? Answer in order with game.answer('real' / 'fake')", fontsize=9)
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        return (f"RealFakeGame(annotator={self.annotator!r}, n={self.n}, answered={self.position}, "
                f"csv_path={str(self.csv_path)!r})")
