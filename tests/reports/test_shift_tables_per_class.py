"""The report's accuracy-by-class tables under corruption: known answers on a crafted store,
escaped class and model names, the worst classes only for many classes, and the fixture
run's cells recomputed from its stored per-sample rows."""

from __future__ import annotations

import re
from html import escape, unescape
from pathlib import Path

import numpy as np
import pytest

from reports.formatting import pct
from reports.page import render_report
from reports.palette import Palette
from reports.run_data import RunData
from reports.shift_tables import (
    MAX_CLASS_COLUMNS,
    WORST_SHOWN,
    class_corruption_html,
    class_corruption_tables,
)
from robustbench_local.results.records import Summary
from robustbench_local.results.schema import META_CLASS_NAMES, SHIFT_SAMPLE_COLUMNS
from robustbench_local.results.store import ResultsStore, ShiftKey
from robustbench_local.results.summary import summarize
from tests.reports.conftest import CORRUPTIONS, MODELS, SEVERITIES

MODEL = "<i>m</i>"
NAMES = ["<b>cat", "dog", "bird"]
# 12 samples, 3 classes of 4. (corruption, severity) -> the samples predicted wrong.
WRONG = {
    ("fog", 1): [4, 5],  # per class 1.0, 0.5, 1.0
    ("fog", 2): [0, 4, 5, 6],  # 0.75, 0.25, 1.0 -> over both: 0.875, 0.375, 1.0
    ("contrast", 1): [0, 4],  # 0.75, 0.75, 1.0
    ("contrast", 2): [],  # 1.0, 1.0, 1.0 -> over both: 0.875, 0.875, 1.0 (a tie)
    ("rotate", 1): [0, 4, 8],  # 0.75 each -> every class equal
    ("rotate", 2): [1, 5, 9],
}


def _columns(label: np.ndarray, wrong: list[int]) -> dict[str, np.ndarray]:
    n = len(label)
    columns = {"idx": np.arange(n)} | {c: np.full(n, 0.5) for c in SHIFT_SAMPLE_COLUMNS}
    columns["label"] = label
    columns["pred"] = np.where(np.isin(np.arange(n), wrong), (label + 1) % (label.max() + 1), label)
    return columns


def _summary(
    path: Path,
    wrong: dict[tuple[str, int], list[int]],
    label: np.ndarray,
    names: list[str] | None = None,
) -> Summary:
    with ResultsStore(path) as store:
        store.set_meta(
            "config",
            {
                "run": {"name": "classes"},
                "models": [{"name": MODEL}],
                "shift": {"corruptions": ["fog", "contrast", "rotate"], "severities": [1, 2]},
            },
        )
        if names is not None:
            store.set_meta(META_CLASS_NAMES, names)
        for (corruption, severity), samples in wrong.items():
            columns = _columns(label, samples)
            metrics = {"accuracy": float(np.mean(columns["pred"] == label))}
            key = ShiftKey(MODEL, "corruption", corruption, severity)
            store.write_shift_job(key, metrics, columns)
        return summarize(store)


def test_one_column_per_class_with_the_worst_marked(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "r.sqlite", WRONG, np.repeat([0, 1, 2], 4), NAMES)
    tables = class_corruption_tables(summary)
    assert tables.missing is None
    (table,) = tables.tables
    assert table.model == MODEL and not table.ranked
    assert table.headers == ["corruption", *NAMES, "worst class", "gap to best class"]
    assert table.rows == [
        ["fog", "87.5%", "37.5%", "100.0%", "dog", "62.5 pts"],
        ["contrast", "87.5%", "87.5%", "100.0%", "<b>cat, tied with dog", "12.5 pts"],
        ["rotate", "75.0%", "75.0%", "75.0%", "every class equal", "0.0 pts"],
    ]
    # Columns 1..3 are the classes; nothing singled out where every class is equal.
    assert table.marked == [frozenset({2}), frozenset({1, 2}), frozenset()]
    assert "over its stored severities (1, 2)" in tables.note
    assert "Each class has 4 test inputs per severity" in tables.note
    assert "only its" not in tables.note


def test_the_page_escapes_class_and_model_names(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "r.sqlite", WRONG, np.repeat([0, 1, 2], 4), NAMES)
    with ResultsStore(tmp_path / "r.sqlite", readonly=True) as store:
        run = RunData(summary, store)
        page = render_report(summary, run.headline, run.palette, {})
    assert "<b>cat" not in page and "<i>m</i>" not in page
    section = page[page.index("<h3>Accuracy by class under corruption</h3>") :]
    assert "<th>&lt;b&gt;cat</th>" in section
    assert "&lt;b&gt;cat, tied with dog" in section
    assert f"{escape(MODEL)}</h4>" in section
    # The worst class's cells are bold: fog's dog, contrast's tied cat and dog.
    fog = re.search(r"<tr><td>fog</td>(.*?)</tr>", section)
    assert fog is not None
    assert re.findall(r"<strong>(.*?)</strong>", fog.group(1)) == ["37.5%"]
    contrast = re.search(r"<tr><td>contrast</td>(.*?)</tr>", section)
    assert contrast is not None
    assert re.findall(r"<strong>(.*?)</strong>", contrast.group(1)) == ["87.5%", "87.5%"]
    rotate = re.search(r"<tr><td>rotate</td>(.*?)</tr>", section)
    assert rotate is not None and "<strong>" not in rotate.group(1)
    # Between the corruption summary and the per-job rows.
    assert (
        page.index("mean corruption acc.")
        < page.index("Accuracy by class under corruption")
        < page.index("corruption jobs, one row each")
    )


def test_many_classes_show_only_the_lowest_per_corruption(tmp_path: Path) -> None:
    k = MAX_CLASS_COLUMNS + 5
    label = np.repeat(np.arange(k), 4)
    # Class 7 all wrong, class 3 three of four, classes 10 and 12 two, class 20 one.
    wrong = [28, 29, 30, 31, 12, 13, 14, 40, 41, 48, 49, 80]
    summary = _summary(tmp_path / "r.sqlite", {("fog", 1): wrong}, label)
    (table,) = class_corruption_tables(summary).tables
    assert table.ranked
    assert WORST_SHOWN == 5 and table.headers == [
        "corruption",
        "lowest",
        "2nd lowest",
        "3rd lowest",
        "4th lowest",
        "5th lowest",
        "worst class",
        "gap to best class",
    ]
    assert table.rows == [
        ["fog", "7 0.0%", "3 25.0%", "10 50.0%", "12 50.0%", "20 75.0%", "7", "100.0 pts"]
    ]
    assert table.marked == [frozenset({1})]
    note = class_corruption_tables(summary).note
    assert f"With {k} classes (more than {MAX_CLASS_COLUMNS})" in note
    assert f"shows only its {WORST_SHOWN} classes of lowest accuracy" in note
    html = class_corruption_html(summary, Palette([MODEL]))
    assert "<strong>7 0.0%</strong>" in html and "only its 5 classes" in html


def test_a_run_without_per_class_numbers_says_so() -> None:
    summary = Summary.from_dict(
        {
            "run": {},
            "results": [],
            "shift": [{"model": "m", "corruption": "fog", "severity": 1, "accuracy": 0.5}],
        }
    )
    tables = class_corruption_tables(summary)
    assert tables.tables == [] and tables.missing is not None
    assert "no per-class numbers" in class_corruption_html(summary, Palette(["m"]))
    empty = Summary.from_dict({"run": {}, "results": []})
    assert class_corruption_html(empty, Palette([])) == ""


def _model_table(page: str, model: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows as text) of the model's accuracy-by-class table on the page."""
    section = page[page.index("<h3>Accuracy by class under corruption</h3>") :]
    start = section.index(f"{escape(model)}</h4>")
    block = re.search(r"<table>(.*?)</table>", section[start:], flags=re.S)
    assert block is not None
    headers = [unescape(h) for h in re.findall(r"<th>(.*?)</th>", block.group(1))]
    rows = [
        [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", block.group(1))[1:]
    ]
    return headers, rows


def test_the_fixture_pages_cells_are_the_stored_samples(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    page = (run_dir / "report.html").read_text("utf-8")
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        for model in MODELS:
            headers, rows = _model_table(page, model.name)
            assert headers[-2:] == ["worst class", "gap to best class"]
            classes = [int(h) for h in headers[1:-2]]  # the fixture stores no class names
            assert [r[0] for r in rows] == list(CORRUPTIONS)
            for row in rows:
                hits = dict.fromkeys(classes, 0)
                counts = dict.fromkeys(classes, 0)
                for severity in SEVERITIES:
                    s = store.shift_samples(ShiftKey(model.name, "corruption", row[0], severity))
                    for c in classes:
                        hits[c] += int(np.sum((s["pred"] == s["label"]) & (s["label"] == c)))
                        counts[c] += int(np.sum(s["label"] == c))
                accuracy = {c: hits[c] / counts[c] for c in classes}
                assert row[1:-2] == [pct(accuracy[c]) for c in classes]
                lowest = min(accuracy.values())
                worst = next(c for c in classes if accuracy[c] == lowest)
                assert row[-2].split(",")[0] in (str(worst), "every class equal")
                gap = max(accuracy.values()) - lowest
                assert row[-1] == f"{100 * gap:.1f} pts"
                # The mean of the per-severity accuracies the summary stores.
                stored = [
                    r.accuracy
                    for r in summary.shift_per_class
                    if (r.model, r.corruption, r.class_index) == (model.name, row[0], worst)
                ]
                assert len(stored) == len(SEVERITIES)
                assert accuracy[worst] == pytest.approx(np.mean(stored))
