"""The attacks over random transformations (kind "eot", pgd-eot) in the report: the gallery
figure (only for a run with such an attack; its titles name the predicted classes), the
page's and the console's table (the stored metrics, labels escaped) and the headline
sentence, from a synthetic store written with ``ResultsStore.write_job``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex

from reports import build_report, console_report
from reports.figures import transform_gallery
from reports.figures._common import FigureUnavailable
from reports.formatting import pct
from reports.headline import headline, transform_sentence
from reports.page import render_report
from reports.palette import Palette
from reports.run_data import RunData
from reports.selection import transform_params
from reports.transform_tables import transform_table
from robustbench_local.bench.attack_registry import attack_info
from robustbench_local.bench.protocol import job_metrics
from robustbench_local.results.records import Summary
from robustbench_local.results.schema import META_ATTACKS, META_CLASS_NAMES
from robustbench_local.results.store import JobKey, ResultsStore, TransformExample
from robustbench_local.results.summary import summarize
from tests.reports.conftest import (
    FIGURE_IDS,
    MODELS,
    ModelKind,
    job_examples,
    job_samples,
    write_run,
)

EOT = "pgd-eot"
HTML_MODEL = "<i>m</i>"
HTML_ATTACK = "<b>eot</b>"
# The report's run: a plain model and one named like markup (its name must be escaped).
EOT_MODELS = (MODELS[0], ModelKind(HTML_MODEL, 0.95, 5.0, 0.8, 0.0))
NAMES = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "a class name far too long",
)
EPS = (0.0, 0.1)
SAMPLES, DRAWS = 3, 2  # stored per job (the runner stores 4 x 3; the figure reads any)
PARAMS = {
    "transforms": ["rotate", "brightness"],
    "severity": 2,
    "eval_draws": 16,
    "robust_fraction": 0.75,
}


def _transform_metrics(model: ModelKind, eps: float) -> dict[str, float]:
    """Distinct numbers per model and eps, so the table cannot show another job's."""
    base = 0.1 + 0.07 * MODELS.index(model) if model in MODELS else 0.33
    return {
        "transform_success_rate": min(1.0, base + 3 * eps),
        "transform_clean_error_rate": 0.01 + base / 10,
        "transform_fooled_mean": min(1.0, base + 4 * eps),
    }


def _draws(samples: dict[str, np.ndarray], eps: float) -> list[TransformExample]:
    """SAMPLES x DRAWS images: the clean one dimmed per draw; the adversarial prediction is
    wrong on every draw at eps > 0 but the last sample's second draw; on draw 1 the
    transformation alone fools the model on sample 0."""
    out = []
    for idx, clean, adv in job_examples(samples, eps, SAMPLES):
        label = int(samples["label"][idx])
        for draw in range(DRAWS):
            dim = 1.0 - 0.2 * draw
            clean_pred = (label + 3) % 10 if (idx, draw) == (0, 1) else label
            adv_ok = eps == 0 or (idx, draw) == (SAMPLES - 1, 1)
            out.append(
                TransformExample(
                    idx=idx,
                    draw=draw,
                    clean=clean * dim,
                    adv=adv * dim,
                    clean_pred=clean_pred,
                    adv_pred=label if adv_ok else (label + 1 + draw) % 10,
                    clean_confidence=0.9 - 0.1 * draw,
                    adv_confidence=0.6 + 0.05 * draw,
                )
            )
    return out


def write_eot_run(
    run_dir: Path,
    *,
    models: tuple[ModelKind, ...] = EOT_MODELS,
    attack: str = EOT,
    params: dict | None = None,
    eps: tuple[float, ...] = EPS,
    stored: bool = True,
) -> Path:
    """A small fixture run (fgsm and pgd) plus an EOT attack labelled ``attack``: its config
    entry, the attacks' kinds, class names and (with ``stored``) one job per model and eps
    with transform metrics and images."""
    write_run(run_dir, models=models, eps=eps, n=40, examples=SAMPLES, explain=False)
    with ResultsStore(run_dir / "results.sqlite") as store:
        config = store.get_meta("config")
        entry = {"label": attack, "name": EOT, "params": PARAMS if params is None else params}
        config["attacks"].append(entry)
        store.set_meta("config", config)
        infos = {a["label"]: attack_info(a["name"], a.get("params")) for a in config["attacks"]}
        store.set_meta(META_ATTACKS, {label: i.to_dict() for label, i in infos.items()})
        store.set_meta(META_CLASS_NAMES, list(NAMES))
        for model in models if stored else ():
            for e in eps:
                samples = job_samples(model, "pgd", e, 40)
                metrics = {**job_metrics(samples), **_transform_metrics(model, e)}
                store.write_job(
                    JobKey(model.name, attack, e),
                    metrics,
                    samples,
                    job_examples(samples, e, SAMPLES),
                    seconds=1.0,
                    transform_examples=_draws(samples, e),
                )
    return run_dir


@pytest.fixture(scope="module")
def eot_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    run_dir = write_eot_run(tmp_path_factory.mktemp("eot") / "run")
    return run_dir, build_report(run_dir)


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title().strip()]


def test_the_figure_is_only_in_a_report_of_a_run_with_an_eot_attack(
    eot_report: tuple[Path, Summary], tmp_path: Path
) -> None:
    run_dir, summary = eot_report
    ids = [f.id for f in summary.figures]
    at = FIGURE_IDS.index("per_class") + 1
    assert ids == [*FIGURE_IDS[:at], "transform_gallery", *FIGURE_IDS[at:]]
    figure = next(f for f in summary.figures if f.id == "transform_gallery")
    assert (run_dir / figure.path).stat().st_size > 5000  # a drawing, not a placeholder
    assert not figure.caption.startswith("Not drawn")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="transform_gallery"' in page
    assert "<h2>Adversarial examples under random transformations</h2>" in page

    plain = write_run(tmp_path / "plain", models=MODELS[:1], eps=EPS, n=40, explain=False)
    plain_summary = build_report(plain)
    assert [f.id for f in plain_summary.figures] == list(FIGURE_IDS)
    assert not (plain / "figures" / "transform_gallery.png").exists()
    page = (plain / "report.html").read_text(encoding="utf-8")
    assert "random transformations" not in page
    assert console_report(plain_summary).transforms is None


def test_a_run_whose_eot_jobs_are_not_stored_yet_says_so(tmp_path: Path) -> None:
    run_dir = write_eot_run(tmp_path / "run", models=MODELS[:1], stored=False)
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        run = RunData(summarize(store), store)
        assert transform_gallery.shown(run)  # the configured attack's kind is stored
        with pytest.raises(FigureUnavailable, match=f"^no job of {EOT} at eps > 0 is stored yet$"):
            transform_gallery.draw(run)
        assert transform_table(run.summary) is None
        assert transform_sentence(run.summary, run.headline) is None


def test_panels_name_the_predicted_classes_and_frame_the_wrong_ones(tmp_path: Path) -> None:
    run_dir = write_eot_run(tmp_path / "run")
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        run = RunData(summarize(store), store)
        assert transform_gallery.shown(run)
        fig = transform_gallery.draw(run)
        titles = _titles(fig)
        for model in EOT_MODELS:
            key = JobKey(model.name, EOT, 0.1)
            label = dict(zip(store.samples(key)["idx"], store.samples(key)["label"], strict=True))
            for t in store.transform_examples(key):
                for what, pred, conf in (
                    ("clean", t.clean_pred, t.clean_confidence),
                    ("adversarial", t.adv_pred, t.adv_confidence),
                ):
                    name = NAMES[pred]
                    if len(name) > transform_gallery.NAME_CHARS:  # cut to fit the tile
                        name = name[: transform_gallery.NAME_CHARS - 1].rstrip() + "\u2026"
                    mark = "\u2713" if pred == label[t.idx] else "\u2717"
                    assert f"{what}\n{mark} {name} ({pct(conf)})" in titles
        # Per model: SAMPLES rows x DRAWS draws x (clean, adversarial) images.
        images = [ax for ax in fig.axes if ax.images]
        assert len(images) == 2 * SAMPLES * DRAWS * 2
        wrong = [ax for ax in images if "\u2717" in ax.get_title()]
        right = [ax for ax in images if "\u2713" in ax.get_title()]
        assert len(wrong) + len(right) == len(images)
        # At eps 0.1 every adversarial image is wrong but one, and one clean image per model.
        assert len(wrong) == 2 * (SAMPLES * DRAWS - 1 + 1)
        for ax in wrong:
            assert to_hex(ax.spines["left"].get_edgecolor()) == transform_gallery.WRONG.lower()
        for ax in right:
            assert to_hex(ax.spines["left"].get_edgecolor()) != transform_gallery.WRONG.lower()
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert any(t.startswith("#0\nlabel ") and t.endswith("wrong on\n2 of 2") for t in texts)
        assert any(t.endswith("wrong on\n1 of 2") for t in texts)  # the last sample


def test_the_caption_states_the_stored_numbers(eot_report: tuple[Path, Summary]) -> None:
    _, summary = eot_report
    caption = next(f.caption for f in summary.figures if f.id == "transform_gallery")
    assert caption.startswith("Clean vs adversarial under the same random transformation")
    assert "A robust adversarial example stays wrong under every draw." in caption
    for model in EOT_MODELS:
        rates = _transform_metrics(model, 0.1)
        assert (
            f"under {EOT} at eps 0.1, {model.name}'s examples fool it on \u2265 75.0% of 16 "
            f"fresh draws for {pct(rates['transform_success_rate'])} of its correctly "
            f"classified inputs (the transformations alone: "
            f"{pct(rates['transform_clean_error_rate'])}); 2 of the 3 samples shown stay "
            "wrong under every draw shown"
        ).lower() in caption.lower()


def test_the_table_holds_the_stored_metrics(eot_report: tuple[Path, Summary]) -> None:
    run_dir, summary = eot_report
    found = transform_table(summary)
    assert found is not None
    assert found.headers[5] == "robust success (\u2265 75.0% of draws)"
    assert [(r[0], r[1], r[2]) for r in found.rows] == [(m.name, EOT, "0.1") for m in EOT_MODELS]
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        jobs = {j.key: j.metrics for j in store.jobs()}
        for row in found.rows:
            stored = jobs[JobKey(row[0], EOT, 0.1)]
            assert row[3] == "rotate+brightness, severity 2; 16 draws"
            assert row[4:] == [
                pct(stored[m])
                for m in (
                    "attack_success_rate",
                    "transform_success_rate",
                    "transform_clean_error_rate",
                    "transform_fooled_mean",
                )
            ]
    console = console_report(summary)
    assert console.transforms is not None and console.transforms in console.tables
    assert console.transforms.rows == [[*r[:3], *r[4:]] for r in found.rows]
    assert f"({EOT}: rotate+brightness, severity 2; 16 draws)" in console.transforms.title
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    for row in found.rows:
        assert "".join(f'<td class="num">{cell}</td>' for cell in row[5:]) in page


def test_the_headline_sentence(eot_report: tuple[Path, Summary]) -> None:
    run_dir, summary = eot_report
    text = transform_sentence(summary, headline(summary))
    assert text is not None
    assert text.startswith("Adversarial examples under random transformations at eps 0.1: ")
    row = next(r for r in summary.results if (r.model, r.attack, r.eps) == ("standard", EOT, 0.1))
    assert (
        f"standard: {EOT}'s examples stay adversarial on \u2265 75.0% of 16 random "
        f"rotate+brightness draws (severity 2) for {pct(row.metric('transform_success_rate'))} "
        "of the correctly classified inputs, against "
        f"{pct(row.metric('attack_success_rate'))} fooled without transformation"
    ) in text
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Adversarial examples under random transformations at eps 0.1: " in page


def test_labels_are_escaped_on_the_page(eot_report: tuple[Path, Summary], tmp_path: Path) -> None:
    run_dir, summary = eot_report
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert HTML_MODEL not in page
    assert f"&lt;i&gt;m&lt;/i&gt;</td><td>{EOT}</td>" in page  # the table
    caption = next(f.caption for f in summary.figures if f.id == "transform_gallery")
    assert f"under {EOT} at eps 0.1, {HTML_MODEL}'s examples fool it" in caption
    assert "&lt;i&gt;m&lt;/i&gt;&#x27;s examples fool it" in page  # the caption
    assert f"&lt;i&gt;m&lt;/i&gt;: {EOT}&#x27;s examples stay adversarial" in page  # headline
    # An attack label like markup: the table and the headline sentence escape it.
    labelled = write_eot_run(tmp_path / "run", models=MODELS[:1], attack=HTML_ATTACK)
    with ResultsStore(labelled / "results.sqlite", readonly=True) as store:
        other = summarize(store)
    found = transform_table(other)
    assert found is not None and found.rows[0][:2] == ["standard", HTML_ATTACK]
    html = render_report(other, headline(other), Palette(["standard"]), {})
    assert HTML_ATTACK not in html
    assert "standard</td><td>&lt;b&gt;eot&lt;/b&gt;</td>" in html
    assert "standard: &lt;b&gt;eot&lt;/b&gt;&#x27;s examples stay adversarial" in html


def test_the_params_the_attack_ran_with_are_read_from_the_store(tmp_path: Path) -> None:
    """Unset params read as the attack's defaults, which the runner stored beside its kind
    (`attack_info`): the report never guesses them."""
    run_dir = write_eot_run(tmp_path / "run", models=MODELS[:1], params={})
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        summary = summarize(store)
    p = transform_params(summary, EOT)
    assert (p.transforms, p.severity, p.robust_fraction, p.eval_draws) == (
        ("rotate", "brightness"),
        3,
        0.9,
        32,
    )
    found = transform_table(summary)
    assert found is not None and found.headers[5] == "robust success (\u2265 90.0% of draws)"
    assert found.rows[0][3] == "rotate+brightness, severity 3; 32 draws"


def test_a_store_without_stored_params_reads_the_config_and_says_unknown(tmp_path: Path) -> None:
    run_dir = write_eot_run(tmp_path / "run", models=MODELS[:1], params={"severity": 4})
    with ResultsStore(run_dir / "results.sqlite") as store:
        infos = store.get_meta(META_ATTACKS)
        for info in infos.values():
            info.pop("params")  # as a store made before the params were recorded
        store.set_meta(META_ATTACKS, infos)
    with ResultsStore(run_dir / "results.sqlite", readonly=True) as store:
        summary = summarize(store)
    p = transform_params(summary, EOT)
    assert p.severity == 4  # the config's choice
    assert p.transforms == () and p.eval_draws == 0 and np.isnan(p.robust_fraction)
    assert p.described == "unknown transformations, severity 4"
