"""[transform_gallery] Adversarial examples under random transformations (EOT attacks).

One block per model, from its EOT attack at the chosen eps (`selection.transform_attack`:
the one whose examples survive the transformations most often; the largest eps with a job
where the chosen one has none). Each row is a stored sample (the job's first ones, not
picked), each column pair one random transformation drawn afresh after the attack: the
transformed clean image and the transformed adversarial image under the same draw, each
titled with the model's prediction (class names where the run stored them) and confidence.
A prediction that differs from the sample's label is framed in vermillion and marked with a
cross; a robust adversarial example stays wrong under every draw.

Only a run with an EOT attack (kind "eot", pgd-eot) has this figure (`shown`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from reports.captions import sentence
from reports.figures._common import FigureUnavailable, new_figure, show_image
from reports.formatting import fmt_eps, pct
from reports.run_data import RunData
from reports.selection import (
    EOT_KIND,
    result,
    transform_attack,
    transform_attacks,
    transform_params,
)
from robustbench_local.results.schema import META_ATTACKS
from robustbench_local.results.store import JobKey, TransformExample

__all__ = ["ID", "PER_MODEL", "TITLE", "Sample", "caption", "draw", "samples", "shown"]

ID = "transform_gallery"
TITLE = "Adversarial examples under random transformations"

PER_MODEL = 4  # stored samples shown per model (the runner stores 4, 3 draws each)
WRONG = "#D55E00"  # Okabe-Ito vermillion: a prediction that is not the label
RIGHT_MARK, WRONG_MARK = "\u2713", "\u2717"  # check and cross: the frame is not colour alone
NAME_CHARS = 12  # a longer class name is cut, so a title stays within its tile
TILE = 1.15  # inches per image
MIN_WIDTH = 6.0  # inches: room for the block titles however few draws are stored
LABEL_WIDTH = 0.9  # inches for the row labels


@dataclass(frozen=True)
class Sample:
    """One stored sample of an EOT job: its label and its images under each draw."""

    key: JobKey
    idx: int
    label: int
    draws: list[TransformExample]  # by draw

    @property
    def adv_wrong(self) -> int:
        """The draws on which the adversarial image is not classified as the label."""
        return sum(d.adv_pred != self.label for d in self.draws)


def _eot_labels(run: RunData) -> list[str]:
    """The run's EOT attacks: with a stored job, or (a run in progress) configured."""
    stored = transform_attacks(run.summary)
    meta = run.store.get_meta(META_ATTACKS) or {}
    configured = [
        str(label)
        for label, info in meta.items()
        if isinstance(info, dict) and info.get("kind") == EOT_KIND
    ]
    return list(dict.fromkeys([*stored, *configured]))


def shown(run: RunData) -> bool:
    """Only a run with an EOT attack has this figure."""
    return bool(_eot_labels(run))


def _job(run: RunData, model: str) -> JobKey | None:
    """The model's EOT job to show: at the chosen eps, else at its largest eps > 0."""
    stored = sorted({r.eps for r in run.summary.rows_of(model) if r.kind == EOT_KIND and r.eps > 0})
    if not stored:
        return None
    eps = run.chosen_eps if run.chosen_eps in stored else stored[-1]
    attack = transform_attack(run.summary, model, eps)
    return None if attack is None else JobKey(model, attack, eps)


def samples(run: RunData, key: JobKey, count: int = PER_MODEL) -> list[Sample]:
    """Up to ``count`` of the job's stored samples under their draws, in stored order;
    a sample whose label is not stored is left out."""
    columns = run.samples(key)
    label_of = {int(i): int(y) for i, y in zip(columns["idx"], columns["label"], strict=True)}
    by_idx: dict[int, list[TransformExample]] = {}
    for t in run.store.transform_examples(key):
        by_idx.setdefault(t.idx, []).append(t)
    out = [
        Sample(key, idx, label_of[idx], sorted(draws, key=lambda d: d.draw))
        for idx, draws in by_idx.items()
        if idx in label_of
    ]
    return out[:count]


def _rows(run: RunData) -> list[list[Sample]]:
    rows = []
    for model in run.models:
        key = _job(run, model)
        shown_samples = [] if key is None else samples(run, key)
        if shown_samples:
            rows.append(shown_samples)
    return rows


def _name(run: RunData, index: int) -> str:
    name = run.summary.run.class_name(index)
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1].rstrip() + "\u2026"


def _tile(
    ax: Axes, run: RunData, image: np.ndarray, what: str, pred: int, conf: float, label: int
) -> None:
    wrong = pred != label
    mark = WRONG_MARK if wrong else RIGHT_MARK
    show_image(ax, image, f"{what}\n{mark} {_name(run, pred)} ({pct(conf)})")
    if wrong:
        ax.title.set_color(WRONG)
        for spine in ax.spines.values():
            spine.set_color(WRONG)
            spine.set_linewidth(2.5)


def _block_title(run: RunData, key: JobKey, chars: int) -> str:
    """The block's job and its robust success rate, wrapped to ``chars`` a line."""
    p = transform_params(run.summary, key.attack)
    row = result(run.summary, key.model, key.attack, key.eps)
    rate = pct(row.metric("transform_success_rate")) if row is not None else "n/a"
    lines = (
        f"{key.model}: {key.attack} at eps {fmt_eps(key.eps)} ({p.described})",
        f"fools on \u2265 {pct(p.robust_fraction)} of {p.eval_draws} fresh draws for {rate} "
        "of the correctly classified inputs",
    )
    return "\n".join(part for line in lines for part in textwrap.wrap(line, chars))


def draw(run: RunData) -> Figure:
    labels = _eot_labels(run)
    rows = _rows(run)
    if not rows:
        stored = [r for r in run.summary.results if r.kind == EOT_KIND and r.eps > 0]
        what = " or ".join(labels) or "an EOT attack"
        if not stored:
            raise FigureUnavailable(f"no job of {what} at eps > 0 is stored yet")
        raise FigureUnavailable(f"the jobs of {what} store no images under transformations")
    draws = max(len(s.draws) for block in rows for s in block)
    heights = [len(block) * (TILE + 0.4) + 0.95 for block in rows]
    width = max(MIN_WIDTH, LABEL_WIDTH + 2 * draws * TILE + 0.3)
    fig = new_figure(width, sum(heights))
    blocks = np.atleast_1d(
        fig.subfigures(len(rows), 1, squeeze=False, height_ratios=heights)
    ).ravel()
    for sub, block in zip(blocks, rows, strict=True):
        key = block[0].key
        colour = run.palette.colour(key.model)
        title = _block_title(run, key, chars=int(width * 11))
        sub.suptitle(title, fontsize=9.5, color=colour, weight="bold")
        # A narrow column of row labels, then one tinted panel per draw: clean, adversarial.
        panels = np.atleast_1d(
            sub.subfigures(
                1,
                draws + 1,
                squeeze=False,
                wspace=0.0,
                width_ratios=[LABEL_WIDTH, *[2 * TILE] * draws],
            )
        ).ravel()
        _row_labels(panels[0], run, block)
        for d, panel in enumerate(panels[1:]):
            panel.set_facecolor("#F3F3F3" if d % 2 == 0 else "white")
            panel.suptitle(f"random draw {d + 1}", fontsize=8.5, color="#444444")
            axes = panel.subplots(len(block), 2, squeeze=False)
            for s, (clean_ax, adv_ax) in zip(block, axes, strict=True):
                if d >= len(s.draws):
                    clean_ax.set_visible(False)
                    adv_ax.set_visible(False)
                    continue
                t = s.draws[d]
                _tile(clean_ax, run, t.clean, "clean", t.clean_pred, t.clean_confidence, s.label)
                _tile(adv_ax, run, t.adv, "adversarial", t.adv_pred, t.adv_confidence, s.label)
    return fig


def _row_labels(panel: SubFigure, run: RunData, block: list[Sample]) -> None:
    """Each row's sample, label and count of wrong adversarial draws, level with its images
    (the same title and suptitle space as the draw panels, left blank)."""
    panel.suptitle(" ", fontsize=8.5)
    for s, ax in zip(block, panel.subplots(len(block), 1, squeeze=False)[:, 0], strict=True):
        ax.set_title("\n", fontsize=7.5)
        ax.axis("off")
        ax.text(
            1.0,
            0.5,
            f"#{s.idx}\nlabel {_name(run, s.label)}\n\nadversarial\nwrong on\n"
            f"{s.adv_wrong} of {len(s.draws)}",
            ha="right",
            va="center",
            fontsize=7.5,
            transform=ax.transAxes,
        )


def _where(run: RunData) -> str:
    """The eps the figure shows, as its caption names it."""
    fallback = "the model's largest eps with an EOT job"
    if run.chosen_eps is None:
        return fallback
    return (
        f"eps {fmt_eps(run.chosen_eps)}, the eps of the example gallery (for a model without "
        f"an EOT job there: {fallback})"
    )


def caption(run: RunData) -> str:
    text = (
        "Clean vs adversarial under the same random transformation: each row is one of the "
        "first stored samples of the model's EOT attack job (expectation over "
        "transformation: the attack averaged its gradients over random transformations), "
        "each pair of columns one transformation drawn afresh after the attack, applied to "
        "the clean and to the adversarial image alike. Each image is titled with the "
        f"model's prediction and confidence; a cross ({WRONG_MARK}) and a vermillion frame "
        "mark a prediction that is not the sample's label (on a clean image: the "
        "transformation alone fools the model). A robust adversarial example stays wrong "
        "under every draw. Each model is shown under the EOT attack whose examples survive "
        f"the transformations most often (the highest robust success rate), at "
        f"{_where(run)}."
    )
    parts = []
    for block in _rows(run):
        key = block[0].key
        p = transform_params(run.summary, key.attack)
        row = result(run.summary, key.model, key.attack, key.eps)
        if row is None:
            continue
        steady = sum(s.adv_wrong == len(s.draws) for s in block)
        parts.append(
            f"under {key.attack} at eps {fmt_eps(key.eps)}, {key.model}'s examples fool it on "
            f"\u2265 {pct(p.robust_fraction)} of {p.eval_draws} fresh draws for "
            f"{pct(row.metric('transform_success_rate'))} of its correctly classified inputs "
            f"(the transformations alone: {pct(row.metric('transform_clean_error_rate'))}); "
            f"{steady} of the {len(block)} samples shown stay wrong under every draw shown"
        )
    if parts:
        text += " " + sentence(parts)
    return text
