"""[uncertainty_vs_eps] Mean aleatoric and epistemic uncertainty on the attacked inputs."""

from __future__ import annotations

from matplotlib.figure import Figure

from reports.captions import at_chosen
from reports.figures._common import (
    FigureUnavailable,
    attack_handles,
    eps_axis,
    model_handles,
    new_figure,
    outside_legend,
    with_note,
)
from reports.formatting import nats
from reports.run_data import RunData

__all__ = ["ID", "PANELS", "TITLE", "caption", "draw"]

ID = "uncertainty_vs_eps"
TITLE = "Aleatoric and epistemic uncertainty vs eps"

PANELS = (
    ("mean_aleatoric", "aleatoric (expected entropy)"),
    ("mean_epistemic", "epistemic (mutual information)"),
)


def draw(run: RunData) -> Figure:
    if not run.summary.results:
        raise FigureUnavailable("no job is stored yet")
    fig = new_figure(10, 4.2)
    axes = fig.subplots(1, len(PANELS), sharex=True)
    drawn = False
    for ax, (metric, title) in zip(axes, PANELS, strict=True):
        highest = 0.0
        for model in run.models:
            for attack in run.attacks:
                eps, values = run.curve(model, attack, metric)
                if len(eps) == 0:
                    continue
                drawn = True
                highest = max(highest, float(values.max()))
                ax.plot(
                    eps,
                    values,
                    color=run.palette.colour(model),
                    marker=run.palette.marker(model),
                    linestyle=run.palette.linestyle(attack),
                    ms=4,
                )
        flat = run.deterministic_models() if metric == "mean_epistemic" else []
        note = f"0 at every eps for {', '.join(flat)} (deterministic)" if flat else ""
        ax.set_title(with_note(title, note))
        eps_axis(ax, run)
        ax.set_ylabel("mean uncertainty (nats)")
        # A little room below 0, so the deterministic models' zero line stays visible.
        top = max(1.08 * highest, 0.05)
        ax.set_ylim(-0.03 * top, top)
    if not drawn:
        raise FigureUnavailable("no job stores mean aleatoric or epistemic uncertainty")
    outside_legend(fig, [*model_handles(run, run.models), *attack_handles(run, run.attacks)])
    return fig


def caption(run: RunData) -> str:
    text = (
        "Mean aleatoric (expected entropy of the members' predictions) and epistemic (mutual "
        "information between prediction and member) uncertainty, in nats, on the attacked "
        "inputs against eps; line style = attack."
    )
    parts = []
    for model in run.models:
        key = run.strongest(model)
        if key is None:
            continue
        s = run.samples(key)
        parts.append(
            f"{model}: aleatoric {nats(s['clean_aleatoric'].mean())} clean vs "
            f"{nats(s['adv_aleatoric'].mean())} under {key.attack}, epistemic "
            f"{nats(s['clean_epistemic'].mean())} vs {nats(s['adv_epistemic'].mean())}"
        )
    if parts:
        text += f" At {at_chosen(run)}: " + "; ".join(parts) + "."
    deterministic = run.deterministic_models()
    if deterministic:
        text += (
            f" Epistemic uncertainty is 0 at every eps for {', '.join(deterministic)}: "
            "a single deterministic network has no disagreement to measure."
        )
    return text
