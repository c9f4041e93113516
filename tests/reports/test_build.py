"""build_report on a stored fixture run: figures, captions with the run's numbers, escaping."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from reports.page import render_report
from reports.run_data import RunData
from robustbench_local.cli import main
from robustbench_local.results.records import Summary
from robustbench_local.results.store import JobKey, ResultsStore
from robustbench_local.results.summary import read_summary, summarize
from tests.reports.conftest import ATTACKS, FIGURE_IDS, MODELS, SCRIPT_MODEL
from uncertainty import metrics

CHOSEN = 0.1  # the fixture's eps are 0, 0.05, 0.1, 0.2: the largest in (0, 0.1] is 0.1
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _three(value: float) -> str:
    """ECE / AURC as captions write them: 3 decimals, 2 significant digits below 0.001."""
    return f"{value:.1e}" if 0 < abs(value) < 0.001 else f"{value:.3f}"


def _page(run_dir: Path) -> str:
    return (run_dir / "report.html").read_text(encoding="utf-8")


def _captions(summary: Summary) -> dict[str, str]:
    return {f.id: f.caption for f in summary.figures}


def _expected(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per model, the numbers its captions must state, computed from the store directly."""
    out = {}
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        for model in (m.name for m in MODELS):
            per_attack = {a: store.samples(JobKey(model, a, CHOSEN)) for a in ATTACKS}

            def robust(s: dict) -> np.ndarray:
                return (s["clean_pred"] == s["label"]) & (s["adv_pred"] == s["label"])

            attack = min(ATTACKS, key=lambda a: robust(per_attack[a]).mean())  # ties: first
            s = per_attack[attack]
            worst = np.logical_and.reduce([robust(per_attack[a]) for a in ATTACKS]).mean()
            clean_ok = torch.from_numpy(s["clean_pred"] == s["label"])
            adv_ok = torch.from_numpy(s["adv_pred"] == s["label"])
            clean_conf = torch.from_numpy(np.ascontiguousarray(s["clean_confidence"]))
            adv_conf = torch.from_numpy(np.ascontiguousarray(s["adv_confidence"]))
            is_adv = torch.cat([torch.zeros(len(s["idx"])), torch.ones(len(s["idx"]))]).bool()
            auroc = {
                score: metrics.auroc(
                    torch.from_numpy(
                        (-1 if score == "confidence" else 1)
                        * np.concatenate([s[f"clean_{score}"], s[f"adv_{score}"]])
                    ),
                    is_adv,
                )
                for score in ("confidence", "total", "epistemic")
            }
            out[model] = {
                "attack": attack,
                "accuracy": robust(s).mean(),
                "worst": worst,
                "clean_accuracy": np.mean(s["clean_pred"] == s["label"]),
                "confidence": s["adv_confidence"].mean(),
                "aleatoric": (s["clean_aleatoric"].mean(), s["adv_aleatoric"].mean()),
                "ece": (
                    metrics.reliability_bins(clean_conf, clean_ok, 15).ece,
                    metrics.reliability_bins(adv_conf, adv_ok, 15).ece,
                ),
                "aurc": (metrics.aurc(clean_conf, clean_ok), metrics.aurc(adv_conf, adv_ok)),
                "auroc": auroc,
            }
    return out


def test_every_figure_is_drawn_and_listed(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["schema_version"] == 1
    assert Summary.from_dict(on_disk).to_json_dict() == on_disk  # the typed form loses nothing
    assert [f.id for f in summary.figures] == list(FIGURE_IDS)
    for figure in on_disk["figures"]:
        assert set(figure) == {"id", "title", "path", "caption"} and figure["title"]
    for figure in summary.figures:
        assert figure.path == f"figures/{figure.id}.png"
        png = (run_dir / figure.path).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 20_000, figure.id
        assert not figure.caption.startswith("Not drawn"), figure.caption


def test_captions_state_the_runs_numbers(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    captions = _captions(summary)
    for model, x in _expected(run_dir).items():
        assert (
            f"{x['attack']} at eps 0.1 the {model} model keeps {100 * x['confidence']:.1f}% "
            f"mean confidence while its accuracy is {100 * x['accuracy']:.1f}%"
        ) in captions["confidence_vs_accuracy"]
        assert (
            f"{model} {100 * x['worst']:.1f}% (clean {100 * x['clean_accuracy']:.1f}%)"
            in captions["accuracy_vs_eps"]
        )
        clean, adv = x["aleatoric"]
        assert (
            f"{model}: aleatoric {clean:.3f} nats clean vs {adv:.3f} nats under"
            in (captions["uncertainty_vs_eps"])
        )
        auroc = x["auroc"]
        assert (
            f"{model} ({x['attack']}): confidence {auroc['confidence']:.2f}, "
            f"total {auroc['total']:.2f}, epistemic {auroc['epistemic']:.2f}"
        ) in captions["detection_auroc_vs_eps"]
        ece_clean, ece_adv = map(_three, x["ece"])
        assert f"{model} {ece_clean} \u2192 {ece_adv} ({x['attack']})" in (captions["reliability"])
        aurc_clean, aurc_adv = map(_three, x["aurc"])
        assert (
            f"{model} {aurc_clean} \u2192 {aurc_adv} ({x['attack']})" in (captions["risk_coverage"])
        )
    assert (
        "Epistemic uncertainty is 0 at every eps for standard, pgd-at"
        in (captions["uncertainty_vs_eps"])
    )
    for caption in (captions["reliability"], captions["risk_coverage"], captions["examples"]):
        assert "eps 0.1 (chosen as the largest eps \u2264 0.1" in caption


def test_examples_caption_uses_the_stored_sample(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    caption = _captions(summary)["examples"]
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        key = JobKey("standard", _expected(run_dir)["standard"]["attack"], CHOSEN)
        s = store.samples(key)
        stored = [idx for idx, _, _ in store.examples(key)]
    fooled = [i for i in stored if s["clean_pred"][i] == s["label"][i] != s["adv_pred"][i]]
    i = (fooled or stored)[0]  # successful attacks are shown first
    assert (
        f"standard predicts sample #{i} (label {s['label'][i]}) as {s['adv_pred'][i]} with "
        f"{100 * s['adv_confidence'][i]:.1f}% confidence"
    ) in caption


def test_a_script_model_name_is_escaped(built_run: tuple[Path, Summary]) -> None:
    run_dir, _ = built_run
    page = _page(run_dir)
    assert SCRIPT_MODEL not in page
    assert "<script" not in page.lower()
    assert html_escaped(SCRIPT_MODEL) in page
    # the headline table has a row for it
    assert re.search(r"<td>.*?&lt;script&gt;alert\(1\)&lt;/script&gt;</td>", page)


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_the_page_is_self_contained(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    page = _page(run_dir)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # base64 holds "//"
    assert not re.search(r"(?i)(https?:)?//[a-z0-9]", text)
    assert not re.search(r"(?i)<(link|script|iframe)\b|@import|url\(", text)
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(FIGURE_IDS)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    for figure in summary.figures:
        assert f'id="{figure.id}"' in page


def test_the_page_shows_headline_config_and_environment(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    page = _page(run_dir)
    assert "<th>eps 0.1</th>" in page and "ECE attacked" in page
    pgd_at = next(w for w in summary.worst_case if w.model == "pgd-at" and w.eps == 0.2)
    assert f"{100 * pgd_at.accuracy:.1f}%" in page
    assert (
        "2.14.1" in page and "digest" in page and "complete: 90 jobs (24 attack, 66 shift)" in page
    )
    assert 'class="warnings"' not in page


def test_warnings_are_highlighted_and_escaped(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        run = RunData(summarize(store), store)
    warned = replace(summary, warnings=("<b>pgd</b>: gradient masking suspected",))
    page = render_report(warned, run.headline, run.palette, {})
    assert 'class="warnings"' in page
    assert "&lt;b&gt;pgd&lt;/b&gt;: gradient masking suspected" in page
    assert "<b>pgd</b>" not in page
    # the warning sits in the headline section, above the headline table
    assert page.index("<h2>Headline</h2>") < page.index('class="warnings"') < page.index("<table")


def test_rbl_report_rebuilds_everything_from_the_store(
    built_run: tuple[Path, Summary], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, summary = built_run
    run_dir = tmp_path / "copy"
    shutil.copytree(source, run_dir)
    shutil.rmtree(run_dir / "figures")
    (run_dir / "report.html").unlink()
    (run_dir / "summary.json").unlink()
    store_digest = hashlib.sha256((run_dir / "results.sqlite").read_bytes()).hexdigest()
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").is_file()
    rebuilt = read_summary(run_dir / "summary.json")
    assert rebuilt.figures == summary.figures  # same captions, same numbers
    for figure in rebuilt.figures:
        assert (run_dir / figure.path).read_bytes().startswith(PNG_MAGIC)
    # read-only: the store is byte for byte what it was
    assert hashlib.sha256((run_dir / "results.sqlite").read_bytes()).hexdigest() == store_digest
