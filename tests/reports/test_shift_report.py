"""The distribution-shift part of a report: captions, tables and the headline sentence say
the stored numbers, recomputed here from the store's per-sample rows."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import numpy as np
import pytest
import torch

from reports import console_report
from reports.formatting import auroc, pct, three
from robustbench_local.results.records import Summary
from robustbench_local.results.store import ResultsStore, ShiftKey
from tests.reports.conftest import CORRUPTIONS, MODELS, OOD_SETS, SEVERITIES
from uncertainty import metrics

N = 80  # the fixture run's samples


def _captions(summary: Summary) -> dict[str, str]:
    return {f.id: f.caption for f in summary.figures}


def _accuracy(run_dir: Path) -> dict[tuple[str, str, int], float]:
    """(model, corruption, severity) -> accuracy, from the stored per-sample rows."""
    out = {}
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        for model in MODELS:
            for corruption in CORRUPTIONS:
                for severity in SEVERITIES:
                    s = store.shift_samples(
                        ShiftKey(model.name, "corruption", corruption, severity)
                    )
                    out[(model.name, corruption, severity)] = float(
                        np.mean(s["pred"] == s["label"])
                    )
    return out


def test_the_severity_captions_state_the_stored_numbers(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    captions = _captions(summary)
    accuracy = _accuracy(run_dir)
    for model in MODELS:
        at = {s: np.mean([accuracy[(model.name, c, s)] for c in CORRUPTIONS]) for s in (1, 5)}
        assert (
            f"{pct(at[1])} at severity 1, {pct(at[5])} at severity 5"
            in (captions["accuracy_vs_severity"])
        )
    # mCE, recomputed by its definition: summed errors per corruption over the baseline's.
    base = MODELS[0].name
    for model in MODELS:
        ratios = [
            sum(1 - accuracy[(model.name, c, s)] for s in SEVERITIES)
            / sum(1 - accuracy[(base, c, s)] for s in SEVERITIES)
            for c in CORRUPTIONS
        ]
        row = next(r for r in summary.shift_summary if r.model == model.name)
        assert row.mce == pytest.approx(np.mean(ratios))
        assert f"{model.name}: accuracy" in captions["accuracy_vs_severity"]
        assert f"mCE {row.mce:.2f}" in captions["accuracy_vs_severity"]
    assert (
        f"divided by those of {base} (the run's first model, mCE 1)"
        in (captions["accuracy_vs_severity"])
    )


def test_the_calibration_caption_states_median_eces(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    caption = _captions(summary)["calibration_under_shift"]
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        for model in MODELS:
            eces = []
            for corruption in CORRUPTIONS:
                s = store.shift_samples(ShiftKey(model.name, "corruption", corruption, 5))
                eces.append(
                    metrics.reliability_bins(
                        torch.from_numpy(s["confidence"]),
                        torch.from_numpy(s["pred"] == s["label"]),
                        15,
                    ).ece
                )
            assert f"{three(float(np.median(eces)))} at severity 5" in caption
    assert "Ovadia et al. (2019), Figure 2" in caption


def _page_table(html: str, header: str) -> list[list[str]]:
    """The body rows (cells as text) of the page's table whose header row holds ``header``."""
    for block in re.findall(r"<table>(.*?)</table>", html, flags=re.S):
        if f"<th>{header}</th>" in block:
            rows = re.findall(r"<tr>(.*?)</tr>", block)[1:]
            return [
                [
                    unescape(re.sub(r"<[^>]+>", "", c))
                    for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)
                ]
                for tr in rows
            ]
    raise AssertionError(f"no table with the header {header!r}")


def test_the_ood_caption_and_table_state_the_best_auroc(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    caption = _captions(summary)["ood_detection"]
    table = _page_table((run_dir / "report.html").read_text("utf-8"), "OOD set")
    scores = ("confidence", "total", "epistemic")
    for model in MODELS:
        rows = [r for r in summary.ood if r.model == model.name]
        assert [r.ood for r in rows] == list(OOD_SETS)
        best = max(r.metric(f"auroc_{s}") for r in rows for s in scores)
        assert f"{model.name}: best AUROC {auroc(best)} (" in caption
        for r in rows:
            cells = [model.name, r.ood, str(N), *(auroc(r.metric(f"auroc_{s}")) for s in scores)]
            assert cells in [row[: len(cells)] for row in table], cells
    # The ensemble's epistemic score flags the uniform noise; a deterministic model's cannot.
    ensemble = next(r for r in summary.ood if r.model == MODELS[2].name and r.ood == "uniform")
    standard = next(r for r in summary.ood if r.model == "standard" and r.ood == "uniform")
    assert ensemble.metric("auroc_epistemic") > 0.9
    assert standard.metric("auroc_epistemic") == pytest.approx(0.5)


def test_the_headline_sentence_compares_attack_and_corruption(
    built_run: tuple[Path, Summary],
) -> None:
    run_dir, summary = built_run
    html = (run_dir / "report.html").read_text("utf-8")
    page = unescape(html)
    accuracy = _accuracy(run_dir)
    sentence = page[page.index("Adversarial against natural shift") :].split("</p>")[0]
    assert "0.5 is chance" in sentence and "flags" not in sentence  # AUROC is no share
    for model in MODELS:
        shifted = [r for r in summary.shift if r.model == model.name and r.severity == 3]
        score = "epistemic" if model.epistemic_share else "total"
        natural = np.mean([r.metric(f"auroc_{score}") for r in shifted])
        mean = np.mean([accuracy[(model.name, c, 3)] for c in CORRUPTIONS])
        assert (
            f"{model.name}: robust accuracy" in sentence
            and f"against {pct(mean)} on severity-3 corruptions; {score}-uncertainty AUROC"
            in sentence
            and f"against {auroc(natural)} on the corrupted ones" in sentence
        ), model.name
    # near the headline table, before the figures
    assert (
        html.index("<h2>Headline</h2>")
        < html.index("Adversarial against")
        < html.index("<h2>Figures</h2>")
    )


def test_the_console_prints_the_pages_shift_tables(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    report = console_report(summary)
    assert report.shift is not None and report.ood is not None
    assert report.tables == [report.accuracy, report.headline, report.shift, report.ood]
    assert report.shift.headers[-1] == f"mCE (vs {MODELS[0].name})"
    html = (run_dir / "report.html").read_text("utf-8")
    assert report.shift.rows == _page_table(html, "mean corruption acc.")
    assert report.ood.rows == _page_table(html, "OOD set")
    assert report.shift_comparison is not None and report.shift_comparison in unescape(html)
    standard = next(r for r in report.shift.rows if r[0] == "standard")
    assert standard[-1] == "1.00"  # the baseline's own mCE


def test_a_run_without_shift_jobs_has_no_shift_tables() -> None:
    summary = Summary.from_dict({"run": {"name": "x"}, "results": []})
    report = console_report(summary)
    assert report.shift is None and report.ood is None and report.shift_comparison is None
    assert report.tables == [report.accuracy, report.headline]
