"""The run report's page: headline, warnings, figures with captions, the table of the attacks
over random transformations, the distribution-shift tables, config and environment."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from reports.formatting import auroc, fmt_eps, num, pct, three
from reports.headline import (
    DETECTION_SCORES,
    SHORT,
    Headline,
    attack_label,
    shift_comparison,
    transform_sentence,
    worst_class_sentence,
)
from reports.html import Html, data_uri, esc, join, page, swatch, table
from reports.palette import Palette
from reports.selection import chosen_eps_rule
from reports.shift_tables import (
    ShiftTable,
    class_corruption_html,
    corruption_table,
    ood_table,
)
from reports.transform_tables import TITLE as TRANSFORM_TITLE
from reports.transform_tables import transform_table
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
SHIFT_COLUMNS = (
    ("model", "model"),
    ("corruption", "corruption"),
    ("severity", "severity"),
    ("accuracy", "accuracy"),
    ("ece", "ECE"),
    ("nll", "NLL"),
    ("brier", "Brier"),
    ("mean_confidence", "mean conf."),
    ("mean_total", "total (nats)"),
    ("mean_epistemic", "epistemic (nats)"),
    ("auroc_confidence", "AUROC conf."),
    ("auroc_total", "AUROC total"),
    ("auroc_epistemic", "AUROC epi."),
)
DOT = " \u00b7 "
PERCENT = {"clean_accuracy", "accuracy", "attack_success_rate", "mean_confidence"}


def _expected_jobs(run: RunInfo) -> tuple[int | None, int | None]:
    """(attack jobs, shift jobs) the config plans; None where it cannot tell (a shift
    section that says "all" instead of listing names)."""
    config = run.config
    try:
        attack = len(config["models"]) * len(config["attacks"]) * len(config["sweep"]["eps"])
    except (KeyError, TypeError):
        return None, None
    section = config.get("shift")
    if not isinstance(section, Mapping):
        return attack, 0
    lists = [section.get(key, []) for key in ("corruptions", "severities", "ood")]
    if not all(isinstance(v, list) for v in lists):
        return attack, None
    corruptions, levels, ood = lists
    return attack, len(config["models"]) * (len(corruptions) * len(levels) + len(ood))


def _facts(summary: Summary) -> Html:
    run = summary.run
    attack_done = len(summary.results)
    shift_done = len(summary.shift) + len(summary.ood)
    attack_expected, shift_expected = _expected_jobs(run)
    done = attack_done + shift_done
    expected = (
        None if None in (attack_expected, shift_expected) else attack_expected + shift_expected
    )
    split = f" ({attack_done} attack, {shift_done} shift)" if shift_done or shift_expected else ""
    if run.complete:
        status = Html(f'<span class="status">complete: {done} jobs{split}</span>')
    else:
        of = f" of {expected}" if expected else ""
        status = Html(
            f'<span class="status partial">in progress: {done}{of} jobs stored{split}</span>'
        )
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


def _shift_headline(summary: Summary, head: Headline) -> Html:
    text = shift_comparison(summary, head)
    return Html(f'<p class="note">{esc(text)}</p>') if text else Html("")


def _class_headline(summary: Summary, head: Headline) -> Html:
    """Each model's worst class (its name may come from the dataset's files: escaped)."""
    text = worst_class_sentence(summary, head)
    return Html(f'<p class="note">{esc(text)}</p>') if text else Html("")


def _transform_headline(summary: Summary, head: Headline) -> Html:
    """How often each model's EOT examples survive random transformations (escaped)."""
    text = transform_sentence(summary, head)
    return Html(f'<p class="note">{esc(text)}</p>') if text else Html("")


def _transform_section(summary: Summary, palette: Palette) -> Html:
    """The EOT jobs' table (model and attack labels escaped); nothing without EOT jobs."""
    found = transform_table(summary)
    if found is None:
        return Html("")
    rows = [[Html(swatch(palette.colour(r[0])) + esc(r[0])), *r[1:]] for r in found.rows]
    return Html(
        f"<h2>{esc(TRANSFORM_TITLE)}</h2>"
        + table(found.headers, rows, numeric_from=found.text_columns)
        + f'<p class="note">{esc(found.note)}</p>'
    )


def _shift_table(shift: ShiftTable, palette: Palette, label: str) -> Html:
    if shift.missing:
        return Html(f'<p class="note">{esc(label)}: {esc(shift.missing)}.</p>')
    rows = [[Html(swatch(palette.colour(r[0])) + esc(r[0])), *r[1:]] for r in shift.rows]
    return Html(
        table(shift.headers, rows, numeric_from=shift.text_columns)
        + f'<p class="note">{esc(shift.note)}</p>'
    )


def _shift_section(summary: Summary, palette: Palette) -> Html:
    """Per-model corruption summary, accuracy by class under corruption, every corruption
    row, and the OOD table (escaped)."""
    if "shift" not in summary.run.config and not summary.shift and not summary.ood:
        return Html("")  # a run without a [shift] section: nothing to say
    parts = [
        Html("<h2>Distribution shift</h2>"),
        _shift_table(corruption_table(summary), palette, "Corruptions"),
        class_corruption_html(summary, palette),
    ]
    if summary.shift:
        all_rows = table(
            [label for _, label in SHIFT_COLUMNS],
            ([_cell(k, _shift_value(r, k)) for k, _ in SHIFT_COLUMNS] for r in summary.shift),
            numeric_from=2,
        )
        parts.append(
            Html(
                f"<details><summary>{len(summary.shift)} corruption jobs, one row each"
                f"</summary>{all_rows}</details>"
            )
        )
    parts.append(_shift_table(ood_table(summary), palette, "Out-of-distribution sets"))
    return join(parts)


def _shift_value(row: Any, key: str) -> Any:
    return getattr(row, key) if key in ("model", "corruption", "severity") else row.metric(key)


def _cell(key: str, value: Any) -> str:
    if key in PERCENT:
        return pct(value)
    if key == "eps":
        return fmt_eps(value)
    if key == "severity":
        return str(value)
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
        f"{_class_headline(summary, head)}"
        f"{_shift_headline(summary, head)}"
        f"{_transform_headline(summary, head)}"
        f"<nav><ol>{nav}</ol></nav>"
        "<h2>Figures</h2>"
        f"{_figures(summary.figures, pngs)}"
        f"{_transform_section(summary, palette)}"
        f"{_shift_section(summary, palette)}"
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
