"""build_leaderboard: one row per (run, model) across the runs under a folder, escaped."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from reports import build_leaderboard
from robustbench_local.cli import main
from robustbench_local.results.records import Summary
from robustbench_local.results.store import ResultsStore
from robustbench_local.results.summary import summarize, write_summary
from tests.reports.conftest import MODELS, SCRIPT_MODEL, ModelKind, write_run

BOLD_MODEL = "wide-<b>net</b>"


@pytest.fixture(scope="module")
def runs(built_run: tuple[Path, Summary], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of runs: the fixture run with its report, a second digits run, a run known
    only by its summary.json (on another dataset), an unreadable one and a stray folder."""
    folder = tmp_path_factory.mktemp("leaderboard")
    shutil.copytree(built_run[0], folder / "a-fixture")
    write_run(
        folder / "b-second",
        name="second",
        models=(MODELS[0], ModelKind(BOLD_MODEL, 0.95, 8.0, 0.5, 0.0)),
        eps=(0.0, 0.05, 0.1),
        n=30,
    )
    only_json = write_run(folder / "c-json", name="json-only", models=MODELS[:1], n=30)
    with ResultsStore(only_json / "results.sqlite", readonly=True) as store:
        summary = summarize(store)
    summary = replace(summary, run=replace(summary.run, dataset="mnist"))
    write_summary(summary, only_json / "summary.json")
    (only_json / "results.sqlite").unlink()
    (folder / "d-broken").mkdir()
    (folder / "d-broken" / "results.sqlite").write_bytes(b"not a database")
    (folder / "e-stray").mkdir()
    return folder


@pytest.fixture(scope="module")
def page(runs: Path) -> str:
    path = build_leaderboard(runs)
    assert path == runs / "leaderboard.html"
    return path.read_text(encoding="utf-8")


def _rows(html: str) -> list[str]:
    return re.findall(r"<tr><td>.*?</tr>", html)


def test_every_run_and_model_has_a_row(page: str) -> None:
    rows = _rows(page)
    assert len(rows) == 3 + 2 + 1
    for run, models in (
        ("digits-fixture", [m.name for m in MODELS]),
        ("second", ["standard", BOLD_MODEL]),
        ("json-only", ["standard"]),
    ):
        for model in models:
            escaped = model.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            assert any(run in r and f"<td>{escaped}</td>" in r for r in rows), (run, model)


def test_names_are_escaped(page: str) -> None:
    assert SCRIPT_MODEL not in page and BOLD_MODEL not in page
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "wide-&lt;b&gt;net&lt;/b&gt;" in page


def test_groups_share_eps_and_rank_by_worst_case(page: str, runs: Path) -> None:
    digits, mnist = page.split("<h2>")[1:3]
    assert digits.startswith("dataset digits, norm linf")
    assert "<th>eps 0.05</th>" in digits and "<th>eps 0.1</th>" in digits
    assert "eps 0.2" not in digits.split("</thead>")[0]  # not shared by the second run
    assert mnist.startswith("dataset mnist, norm linf")
    assert "<th>eps 0.2</th>" in mnist  # one run: all its eps are shared
    summary = json.loads((runs / "a-fixture" / "summary.json").read_text())
    pgd_at = next(w for w in summary["worst_case"] if w["model"] == "pgd-at" and w["eps"] == 0.1)
    first = _rows(digits)[0]
    assert "<td>pgd-at</td>" in first and f"{100 * pgd_at['accuracy']:.1f}%" in first


def test_reports_are_linked_and_problems_listed(page: str) -> None:
    assert 'href="a-fixture/report.html"' in page
    assert 'href="b-second/report.html"' not in page  # no report built for it
    assert "d-broken: unreadable" in page
    assert "e-stray" not in page
    assert "http" not in page


def test_rbl_leaderboard_prints_the_path(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["leaderboard", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == str(runs / "leaderboard.html")


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no folder of runs"):
        build_leaderboard(tmp_path / "absent")


def test_runs_that_share_no_eps_are_shown_but_not_ranked(tmp_path: Path) -> None:
    write_run(tmp_path / "small", name="small", models=MODELS[:1], eps=(0.05,), n=20)
    write_run(tmp_path / "large", name="large", models=MODELS[:2], eps=(0.3,), n=20)
    page = build_leaderboard(tmp_path).read_text(encoding="utf-8")
    assert "not ranked: these runs share no eps &gt; 0" in page
    assert "<th>eps 0.05</th>" in page and "<th>eps 0.3</th>" in page
    rows = _rows(page)
    assert [r.split("<br>")[0] for r in rows] == ["<tr><td>large"] * 2 + ["<tr><td>small"]
    assert all("\u2014" in r for r in rows)  # each row lacks the other run's eps


def test_failed_and_misshapen_runs_are_skipped_without_stopping_the_ranking(
    tmp_path: Path,
) -> None:
    write_run(tmp_path / "a-good", name="good", models=MODELS[:1], eps=(0.0, 0.1), n=20)
    write_run(tmp_path / "b-other", name="other", models=MODELS[:1], eps=(0.0, 0.1), n=20)
    failed = tmp_path / "c-failed"
    with ResultsStore(failed / "results.sqlite") as store:  # a run that died before its jobs
        store.set_meta("complete", False)
    (tmp_path / "d-shape").mkdir()
    (tmp_path / "d-shape" / "summary.json").write_text(json.dumps({"run": [], "results": 3}))
    (tmp_path / "e-rows").mkdir()
    rows = {"run": {}, "results": [{"model": "m"}], "worst_case": [{"x": 1}]}
    (tmp_path / "e-rows" / "summary.json").write_text(json.dumps(rows))
    page = build_leaderboard(tmp_path).read_text(encoding="utf-8")
    skipped = page[page.index("Skipped") :]
    assert "c-failed: no finished jobs" in skipped
    assert "d-shape: summary.json is not a run summary" in skipped
    assert (
        "e-rows: summary.json is not a run summary (results[]: missing key(s) "
        "&#x27;attack&#x27;, &#x27;eps&#x27;)" in skipped
    )
    assert "sorted by worst-case robust accuracy" in page  # the good runs stay ranked
