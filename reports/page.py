"""The run report's page: headline, warnings, figures with captions, config and environment."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reports.formatting import auroc, fmt_eps, num, pct, three
from reports.headline import DETECTION_SCORES, SHORT, Headline, attack_label
from reports.html import Html, data_uri, esc, join, page, swatch, table
from reports.palette import Palette
from reports.selection import chosen_eps_rule
from robustbench_local.results.records import FigureEntry, RunInfo, Summary

__all__ = ["render_report"]

RESULT_COLUMNS = (
    ("model", "model"),
    ("attack", "attack"),
    ("eps", "eps"),
    ("clean_accuracy", "clean acc."),
    ("accuracy", "robust acc."),
    ("attack_success_rate", "attack success"),
    ("mean_confidence", "mean conf."),
    ("mean_aleatoric", "aleatoric (nats)"),
    ("mean_epistemic", "epistemic (nats)"),
    ("ece", "ECE"),
    ("clean_ece", "clean ECE"),
    ("nll", "NLL"),
    ("aurc", "AURC"),
    ("auroc_confidence", "AUROC conf."),
    ("auroc_total", "AUROC total"),
    ("auroc_epistemic", "AUROC epi."),
    ("seconds", "seconds"),
    ("notes", "notes"),
)
DOT = " \u00b7 "
PERCENT = {"clean_accuracy", "accuracy", "attack_success_rate", "mean_confidence"}


def _expected_jobs(run: RunInfo) -> int | None:
    config = run.config
    try:
        return len(config["models"]) * len(config["attacks"]) * len(config["sweep"]["eps"])
    except (KeyError, TypeError):
        return None


def _facts(summary: Summary) -> Html:
    run = summary.run
    done = len(summary.results)
    expected = _expected_jobs(run)
    if run.complete:
        status = Html(f'<span class="status">complete: {done} jobs</span>')
    else:
        of = f" of {expected}" if expected else ""
        status = Html(f'<span class="status partial">in progress: {done}{of} jobs stored</span>')
    facts = [
        text.format(getattr(run, key))
        for key, text in (
            ("dataset", "dataset {}"),
            ("n_examples", "{} examples"),
            ("norm", "norm {}"),
            ("seed", "seed {}"),
            ("digest", "config digest {}"),
        )
        if getattr(run, key) is not None
    ]
    return Html(f'<p class="facts">{join([*facts, status], DOT)}</p>')


def _warnings(summary: Summary) -> Html:
    warnings = summary.warnings
    if not warnings:
        return Html("")
    items = join(Html(f"<li>{esc(w)}</li>") for w in warnings)
    return Html(
        '<div class="warnings" role="alert"><strong>Warnings: these numbers may overstate '
        f"robustness.</strong><ul>{items}</ul></div>"
    )


def _notes(summary: Summary) -> Html:
    """What a reader needs to read some rows right (an adaptive attack's accuracy is not a
    bound; saturated samples re-attacked with the margin loss): not warnings."""
    notes = summary.notes
    if not notes:
        return Html("")
    items = join(Html(f"<li>{esc(n)}</li>") for n in notes)
    return Html(f'<div class="note"><strong>Notes on some rows:</strong><ul>{items}</ul></div>')


def _headline_table(head: Headline, palette: Palette, summary: Summary) -> Html:
    positive = [e for e in head.eps if e > 0]
    at = f"eps {fmt_eps(head.chosen_eps)}" if head.chosen_eps is not None else "(no eps > 0)"
    headers = [
        "model",
        "clean acc.",
        *(f"eps {fmt_eps(e)}" for e in positive),
        f"strongest attack at {at}",
        "ECE clean",
        "ECE attacked",
        *(f"AUROC {SHORT[s]}" for s in DETECTION_SCORES),
    ]
    rows = []
    for row in head.rows:
        rows.append(
            [
                Html(swatch(palette.colour(row.model)) + esc(row.model)),
                pct(row.clean_accuracy),
                *(pct(row.worst_accuracy.get(e, float("nan"))) for e in positive),
                attack_label(summary, row.attack),
                three(row.ece_clean),
                three(row.ece_adv),
                *(auroc(row.auroc.get(s, float("nan"))) for s in DETECTION_SCORES),
            ]
        )
    if not rows:
        return Html('<p class="note">No job is stored yet.</p>')
    note = (
        "The eps columns hold worst-case robust accuracy: a sample counts only if it is correct "
        "when clean and under every attack at that eps. ECE and detection AUROC (telling "
        f"attacked from clean inputs; 0.5 is chance) are under each model's strongest attack "
        f"at {at}: "
        f"{chosen_eps_rule()}."
    )
    attack_column = 2 + len(positive)
    return Html(
        table(headers, rows, text_columns={attack_column}) + f'<p class="note">{esc(note)}</p>'
    )


def _cell(key: str, value: Any) -> str:
    if key in PERCENT:
        return pct(value)
    if key == "eps":
        return fmt_eps(value)
    if key == "notes":
        return "; ".join(map(str, value or []))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return three(value) if key != "seconds" else f"{num(value):.1f}"
    return "n/a" if value is None else str(value)


def _figures(figures: Sequence[FigureEntry], pngs: Mapping[str, bytes]) -> Html:
    blocks = []
    for fig in figures:
        image = ""
        if fig.id in pngs:
            image = f'<img src="{data_uri(pngs[fig.id])}" alt="{esc(fig.title)}">'
        blocks.append(
            f'<figure id="{esc(fig.id)}">{image}<figcaption>'
            f'<span class="title">{esc(fig.title)}.</span> {esc(fig.caption)} '
            f'<span class="note">(<a href="{esc(fig.path)}">{esc(fig.path)}</a>)</span>'
            "</figcaption></figure>"
        )
    return Html("".join(blocks))


def render_report(
    summary: Summary, head: Headline, palette: Palette, pngs: Mapping[str, bytes]
) -> str:
    """The report page.

    Args:
        summary: the run's summary, with its figures filled.
        head: the run's headline numbers.
        palette: the run's model colours.
        pngs: figure id -> PNG bytes, embedded as data URIs.

    Returns:
        the HTML document.
    """
    run = summary.run
    name = run.name or "unnamed run"
    nav = join(Html(f'<li><a href="#{esc(f.id)}">{esc(f.title)}</a></li>') for f in summary.figures)
    results = table(
        [label for _, label in RESULT_COLUMNS],
        ([_cell(k, r.value(k)) for k, _ in RESULT_COLUMNS] for r in summary.results),
        numeric_from=2,
        text_columns={len(RESULT_COLUMNS) - 1},
    )
    environment = run.environment
    env_table = table(["package / setting", "value"], sorted(environment.items()), numeric_from=2)
    config = json.dumps(run.config, indent=2, sort_keys=False)
    body = Html(
        f"<h1>Robustness report: {esc(name)}</h1>"
        f"{_facts(summary)}"
        "<h2>Headline</h2>"
        f"{_warnings(summary)}{_notes(summary)}{_headline_table(head, palette, summary)}"
        f"<nav><ol>{nav}</ol></nav>"
        "<h2>Figures</h2>"
        f"{_figures(summary.figures, pngs)}"
        "<h2>All results</h2>"
        f"<details><summary>{len(summary.results)} jobs, one row each</summary>"
        f"{results}</details>"
        "<h2>Run</h2>"
        f"<p>Config source: <code>{esc(run.config_source)}</code></p>"
        f"<details open><summary>config</summary><pre>{esc(config)}</pre></details>"
        "<h3>Environment (package versions and device)</h3>"
        f"{env_table}"
        '<p class="note">Built by robustbench-local from results.sqlite alone; no model was '
        "run to make this page.</p>"
    )
    return page(f"Robustness report: {name}", body)
