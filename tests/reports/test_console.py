"""The console tables of `rbl run` say what the report page says (same eps, attack, AUROC)."""

from __future__ import annotations

import math
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest

from reports import console_report
from reports.formatting import auroc, fmt_eps, pct, three
from reports.headline import DETECTION_SCORES, headline
from robustbench_local.cli import _print_table
from robustbench_local.results.records import Summary

LARGEST, CHOSEN = 0.3, 0.05  # the chosen eps is the largest in (0, 0.1], not the largest


def _row(model: str, attack: str, eps: float, accuracy: float, epistemic: float, **extra: Any):
    return {
        "model": model,
        "attack": attack,
        "eps": eps,
        "kind": extra.pop("kind", "gradient"),
        "clean_accuracy": 0.9,
        "accuracy": accuracy,
        "mean_confidence": 0.8,
        "ece": 0.2 + eps,
        "clean_ece": 0.05,
        "auroc_confidence": 0.6 + eps,
        "auroc_total": 0.65 + eps,
        "auroc_epistemic": epistemic,
        **extra,
    }


def _summary() -> Summary:
    """Two models, a gradient and an adaptive attack, eps 0, 0.05 and 0.3; AUROC varies by eps."""
    results: list[dict[str, Any]] = []
    for model, base in (("a", 0.7), ("b", 0.5)):
        for eps in (0.0, CHOSEN, LARGEST):
            results.append(_row(model, "pgd", eps, base - eps, 0.5 + eps))
            # The adaptive attack is the strongest at the chosen eps only.
            adaptive = base - eps - (0.1 if eps == CHOSEN else -0.1)
            results.append(_row(model, "evade", eps, adaptive, 0.4 + eps / 2, kind="adaptive"))
    worst = [
        {
            "model": m,
            "eps": e,
            "accuracy": min(r["accuracy"] for r in results if (r["model"], r["eps"]) == (m, e)),
        }
        for m in ("a", "b")
        for e in (0.0, CHOSEN, LARGEST)
    ]
    return Summary.from_dict(
        {
            "run": {
                "name": "crafted",
                "dataset": "digits",
                "n_examples": 10,
                "norm": "linf",
                "config": {
                    "models": [{"name": "a"}, {"name": "b"}],
                    "attacks": [{"label": "pgd"}, {"label": "evade"}],
                },
            },
            "results": results,
            "worst_case": worst,
            "notes": ["evade: a note"],
            "warnings": ["a [bold]warning[/bold]"],
        }
    )


def _lines(text: str, start: str) -> list[list[str]]:
    """The body rows of the rich table whose title starts with ``start``, as cells."""
    block = text[text.index(start) :]
    rows = []
    for line in block.splitlines()[1:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    return rows  # the header row is drawn with "┃"


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")


def test_console_headline_is_the_pages_headline_not_the_largest_eps() -> None:
    summary = _summary()
    head = headline(summary)
    report = console_report(summary)
    assert head.chosen_eps == report.chosen_eps == CHOSEN
    assert f"at eps {fmt_eps(CHOSEN)}" in report.headline.title
    for row, cells in zip(head.rows, report.headline.rows, strict=True):
        assert row.attack == "evade"  # the strongest at the chosen eps, not at the largest
        assert cells[:2] == [row.model, "evade (detection-evasion)"]
        assert cells[-3:] == [auroc(row.auroc[s]) for s in DETECTION_SCORES]
        assert cells[-1] == auroc(0.4 + CHOSEN / 2) != auroc(0.5 + LARGEST)


def test_console_accuracy_rows_mark_adaptive_attacks() -> None:
    report = console_report(_summary())
    assert report.accuracy.headers == ["model", "attack", "0", "0.05", "0.3"]
    labels = [(r[0], r[1]) for r in report.accuracy.rows]
    assert labels == [(m, a) for m in "ab" for a in ("pgd", "evade *", "worst")]
    assert report.accuracy.rows[0][2:] == [pct(0.7), pct(0.65), pct(0.4)]
    assert report.notes == ["evade: a note"] and report.warnings == ["a [bold]warning[/bold]"]


def test_print_table_prints_notes_warnings_verbatim(wide: None, capsys) -> None:
    _print_table(_summary())
    out = capsys.readouterr().out
    assert "note: evade: a note" in out
    assert "warning: a [bold]warning[/bold]" in out  # text, not rich markup
    assert ["a", "evade *", pct(0.8), pct(0.55), pct(0.5)] in _lines(out, "robust accuracy")


def _page_headline(page: str) -> tuple[str, dict[str, list[str]]]:
    """(the header of the strongest-attack column, model -> its row's cells) of report.html."""
    section = page[page.index("<h2>Headline</h2>") :]
    section = section[: section.index("</table>")]
    headers = [unescape(h) for h in re.findall(r"<th>(.*?)</th>", section)]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", section)[1:]:
        cells = [
            unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)
        ]
        rows[cells[0]] = cells
    attack_header = next(h for h in headers if h.startswith("strongest attack at"))
    return attack_header, rows


def test_console_and_page_agree(built_run: tuple[Path, Summary], wide: None, capsys) -> None:
    run_dir, summary = built_run
    _print_table(summary)
    out = capsys.readouterr().out
    attack_header, page_rows = _page_headline((run_dir / "report.html").read_text("utf-8"))
    head = headline(summary)
    assert attack_header == f"strongest attack at eps {fmt_eps(head.chosen_eps)}"
    assert f"headline at eps {fmt_eps(head.chosen_eps)}" in out
    console_rows = {r[0]: r for r in _lines(out, "headline at")}
    assert set(console_rows) == set(page_rows) == {r.model for r in head.rows}
    for row in head.rows:
        console, page = console_rows[row.model], page_rows[row.model]
        expected = [auroc(row.auroc.get(s, math.nan)) for s in DETECTION_SCORES]
        assert console[-3:] == page[-3:] == expected
        assert console[-5:-3] == page[-5:-3] == [three(row.ece_clean), three(row.ece_adv)]
        assert console[1] == page[-6]  # the strongest attack
