"""The explanation figures (attributions, concepts): drawn from the store, captions from its
numbers, and "Not drawn" with the reason when a run has no explanations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from reports import build_report
from reports.figures.concepts import mosaic
from reports.selection import result, strongest_attack
from robustbench_local.results.records import Summary
from robustbench_local.results.store import ConceptRecord, JobKey, ResultsStore
from tests.reports.conftest import MODELS, SCRIPT_MODEL, write_run

CHOSEN = 0.1


def _captions(summary: Summary) -> dict[str, str]:
    return {f.id: f.caption for f in summary.figures}


def test_captions_state_the_stored_numbers(built_run: tuple[Path, Summary]) -> None:
    run_dir, summary = built_run
    captions = _captions(summary)
    for model in (m.name for m in MODELS):
        attack = strongest_attack(summary, model, CHOSEN)
        row = result(summary, model, attack, CHOSEN)
        similarity = row.metric("attribution_similarity")
        noise = row.metric("attribution_similarity_noise")
        assert (
            f"under {attack}, {model}'s maps keep a mean rank correlation of {similarity:.2f} "
            f"with the clean ones over 64 images against {noise:.2f}"
        ).lower() in captions["attributions"].lower()
        shift = row.metric("concept_shift")
        # lower(): the caption's first clause starts with a capital
        assert (
            f"{model}'s 4 directions hold 90.0% of its clean features' variation; at eps 0.1, "
            f"{attack} moves {100 * shift:.1f}% of its change along them"
        ).lower() in captions["concepts"].lower()
    for figure in summary.figures:
        if figure.id in ("attributions", "concepts"):
            assert (run_dir / figure.path).stat().st_size > 5000  # a drawing, not a placeholder
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert SCRIPT_MODEL not in page  # the model's name is escaped in these captions too
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#x27;s maps keep" in page


def test_the_maps_and_concepts_read_back_from_the_store(fixture_run: Path) -> None:
    with ResultsStore(fixture_run / "results.sqlite", readonly=True) as store:
        key = JobKey("standard", "pgd", CHOSEN)
        examples = store.examples(key)
        maps = store.explain_maps(key)
        assert [m[0] for m in maps] == [e[0] for e in examples]
        for (_, clean_image, _), (_, clean_map, adv_map, rho) in zip(examples, maps, strict=True):
            assert clean_map.shape == adv_map.shape == clean_image.shape[1:]
            assert -1.0 <= rho <= 1.0
        eps0 = store.explain_maps(JobKey("standard", "pgd", 0.0))
        assert all(rho == 1.0 for *_, rho in eps0)
        concepts = store.concepts()
        assert set(concepts) == {m.name for m in MODELS}
        record = concepts["standard"]
        assert record.exemplars.shape == (4, 5, 1, 8, 8)
        assert record.values["k"] == 4 and len(record.values["exemplar_labels"]) == 4


def test_explanations_off_are_not_drawn_and_say_why(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", n=40, eps=(0.0, 0.1), explain=False)
    captions = _captions(build_report(run_dir))
    assert captions["attributions"] == (
        "Not drawn: the run's [explain] section has enabled = false, so no attribution maps "
        "for the jobs at eps 0.1 were computed."
    )
    assert captions["concepts"] == (
        "Not drawn: the run's [explain] section has enabled = false, so no concept directions "
        "were computed."
    )


def test_a_store_from_before_explanations_gets_a_report(tmp_path: Path) -> None:
    """No explain tables, no [explain] key in the config: read-only readers see no
    explanations, and the report says the run predates them."""
    run_dir = write_run(tmp_path / "run", n=40, eps=(0.0, 0.1), explain=False)
    path = run_dir / "results.sqlite"
    db = sqlite3.connect(path)
    db.execute("DROP TABLE explain_maps")
    db.execute("DROP TABLE explain")
    config = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
    db.execute(
        "UPDATE meta SET value = ? WHERE key = 'config'",
        (config.replace('"explain": {"enabled": false, ', '"old": {"x": 0, '),),
    )
    db.commit()
    db.close()
    with ResultsStore(path, readonly=True) as store:
        assert store.concepts() == {}
        assert store.explain_maps(JobKey("standard", "pgd", 0.1)) == []
        assert "explain" not in store.get_meta("config")
    captions = _captions(build_report(run_dir))
    assert captions["attributions"].startswith("Not drawn: the run stores no attribution maps")
    assert "made before explanations" in captions["concepts"]


def test_a_model_without_directions_is_named_with_the_reason(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", n=40, models=MODELS[:1], eps=(0.0, 0.1))
    db = sqlite3.connect(run_dir / "results.sqlite")  # replace its record by a note
    db.execute(
        'UPDATE explain SET "values" = ?, shape = ?, exemplars = ?',
        ('{"note": "no concept directions: no nn.Linear head"}', "[0]", b""),
    )
    db.commit()
    db.close()
    captions = _captions(build_report(run_dir))
    assert captions["concepts"] == (
        "Not drawn: standard: no concept directions: no nn.Linear head."
    )
    assert not captions["attributions"].startswith("Not drawn")


def test_mosaic_tiles_rows_of_exemplars() -> None:
    grey = np.zeros((2, 3, 1, 4, 5), dtype=np.float32)
    grey[1, 2] = 0.5
    out = mosaic(grey)
    assert out.shape == (2 * 5 - 1, 3 * 6 - 1)
    assert out[4].min() == 1.0 and out[:, 5].min() == 1.0  # white gaps between tiles
    assert (out[5:, 12:] == 0.5).all()
    rgb = mosaic(np.full((1, 2, 3, 4, 4), 0.25, dtype=np.float32))
    assert rgb.shape == (4, 9, 3)


@pytest.mark.parametrize("shape", [(0,), (0, 0, 1, 8, 8)])
def test_an_empty_record_draws_no_exemplars(shape: tuple[int, ...]) -> None:
    """A record whose exemplars are empty counts as a model without directions."""
    from reports.figures.concepts import _with_directions

    class Run:
        models = ("m",)

        def concepts(self) -> dict[str, ConceptRecord]:
            return {"m": ConceptRecord("m", {}, np.zeros(shape, dtype=np.float32))}

    assert _with_directions(Run()) == []  # type: ignore[arg-type]
