"""The per-class figure and headline sentence on the fixture run, checked against the
stored per-sample columns; class names from the store's meta, escaped on the page."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import numpy as np
import pytest

from reports import build_report
from reports.run_data import RunData
from robustbench_local.results.records import Summary
from robustbench_local.results.schema import META_CLASS_NAMES
from robustbench_local.results.store import JobKey, ResultsStore
from tests.reports.conftest import ATTACKS, MODELS, write_run

CHOSEN = 0.1  # the fixture's chosen eps


def _robust_by_class(store: ResultsStore, model: str, eps: float) -> dict[int, float]:
    """Class -> worst-case robust accuracy, recomputed here from the raw columns."""
    robust, label = None, None
    for attack in ATTACKS:
        s = store.samples(JobKey(model, attack, eps))
        ok = (s["clean_pred"] == s["label"]) & (s["adv_pred"] == s["label"])
        robust, label = (ok if robust is None else robust & ok), s["label"]
    return {int(c): float(robust[label == c].mean()) for c in np.unique(label)}


def test_the_worst_class_is_the_lowest_class_of_the_per_sample_worst_case(
    built_run: tuple[Path, Summary],
) -> None:
    run_dir, summary = built_run
    caption = next(f.caption for f in summary.figures if f.id == "per_class")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        run = RunData(summary, store)
        for model in (m.name for m in MODELS):
            by_class = _robust_by_class(store, model, CHOSEN)
            lowest = min(by_class.values())
            tied = [str(c) for c, a in by_class.items() if a == lowest]
            worst = next(w for w in summary.worst_case if (w.model, w.eps) == (model, CHOSEN))
            assert (worst.worst_class, *worst.worst_class_ties) == tuple(tied)
            assert worst.worst_class_accuracy == lowest
            assert worst.class_accuracy_gap == pytest.approx(max(by_class.values()) - lowest)
            classes, eps, grid, _ = run.class_worst_case(model)
            column = grid[:, eps.tolist().index(CHOSEN)]
            assert dict(zip(classes.tolist(), column.tolist(), strict=True)) == by_class
            assert f"{model} {100 * lowest:.1f}% (worst class {tied[0]}" in caption
            assert f"gap to the best class {100 * worst.class_accuracy_gap:.1f} points" in caption
            sentence = f"{model}: worst class {tied[0]}"
            assert escape(sentence) in page
    assert "Worst class at eps 0.1, under all attacks at once" in page
    # Every attack row carries the two disparity numbers, from its own per-class rows.
    for row in summary.results:
        accuracies = [
            c.accuracy
            for c in summary.per_class
            if (c.model, c.attack, c.eps) == (row.model, row.attack, row.eps)
        ]
        assert row.metric("worst_class_accuracy") == min(accuracies)
        assert row.metric("class_accuracy_gap") == pytest.approx(max(accuracies) - min(accuracies))


def test_stored_class_names_label_the_figure_and_are_escaped(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "run", models=MODELS[:1], eps=(0.0, 0.1), n=40, examples=0, explain=False
    )
    names = [f"digit {i}" for i in range(10)]
    names[0] = "<script>zero</script>"
    with ResultsStore(run_dir / "results.sqlite") as store:
        store.set_meta(META_CLASS_NAMES, names)
    summary = build_report(run_dir)
    figure = next(f for f in summary.figures if f.id == "per_class")
    assert not figure.caption.startswith("Not drawn")
    assert (run_dir / figure.path).stat().st_size > 10_000
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert {r["class_name"] for r in on_disk["per_class"]} <= set(names)
    assert on_disk["run"]["class_names"] == names
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>zero" not in page
    worst = next(w for w in summary.worst_case if w.eps == CHOSEN)
    assert worst.worst_class in names
    assert escape(f"standard: worst class {worst.worst_class}") in page
