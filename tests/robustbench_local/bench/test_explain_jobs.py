"""Explanations in the benchmark: [explain] config, the per-job probe on hand-built models,
and a tiny run with explanations on and off."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from robustbench_local.bench.config import ConfigError, ExplainSettings, load_config
from robustbench_local.bench.explain_jobs import Explainer, fp32_view
from robustbench_local.bench.runner import RunOptions, derive_seed, run_benchmark
from robustbench_local.devices import Autocast
from robustbench_local.results.schema import EXPLAIN_METRICS
from robustbench_local.results.store import JobKey
from tests.robustbench_local.explain.models import no_conv_net, smooth_net
from uncertainty import DeepEnsemble, MCDropout

CONFIG = """
[run]
name = "explain"
dataset = "digits"
n_examples = 40
batch_size = 16
seed = 1

[[models]]
name = "standard"
zoo = "digits-cnn"
train = {{ epochs = 2 }}

[[attacks]]
name = "fgsm"

[sweep]
eps = [0.0, 0.05, 0.3]
{explain}
"""


def _write(tmp_path: Path, explain: str = "") -> Path:
    path = tmp_path / "explain.toml"
    path.write_text(textwrap.dedent(CONFIG.format(explain=explain)), encoding="utf-8")
    return path


# ---- config -------------------------------------------------------------------------


def test_explain_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path)).explain == ExplainSettings()
    assert ExplainSettings() == ExplainSettings(True, 64, 8, "saliency")
    off = load_config(_write(tmp_path, "[explain]\nenabled = false"))
    assert off.explain.enabled is False
    custom = load_config(_write(tmp_path, '[explain]\nn_images = 10\nk = 3\nmethod = "gradcam"'))
    assert custom.explain == ExplainSettings(True, 10, 3, "gradcam")
    # The settings are part of what the run's digest pins: a resume cannot mix them.
    assert off.digest() != load_config(_write(tmp_path)).digest()


@pytest.mark.parametrize(
    ("table", "pattern"),
    [
        ("enabled = 1", r"\[explain\]\.enabled: must be true or false; got int 1"),
        ("n_images = 0", r"\[explain\]\.n_images: must be an integer >= 1; got 0"),
        ('k = "8"', r"\[explain\]\.k: must be an integer; got str '8'"),
        (
            'method = "salency"',
            r"\[explain\]\.method: unknown method 'salency' \(did you mean 'saliency'\?\); "
            r"valid: 'saliency', 'integrated_gradients', 'gradcam'",
        ),
        ("n_image = 4", r"\[explain\]\.n_image: unknown key 'n_image' \(did you mean 'n_images'"),
    ],
)
def test_config_mistakes_name_the_explain_key(tmp_path: Path, table: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_write(tmp_path, f"[explain]\n{table}"))


# ---- the probe on hand-built models ---------------------------------------------------

N, BATCH, EXAMPLES = 21, 8, 3


def _data() -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(N, 1, 8, 8, generator=generator, dtype=torch.float64)
    return x, torch.arange(N) % 4


def _explainer(x: Tensor, y: Tensor, **settings: object) -> Explainer:
    return Explainer(
        ExplainSettings(**{"n_images": 7, "k": 3, **settings}),  # type: ignore[arg-type]
        x,
        y,
        torch.device("cpu"),
        batch_size=BATCH,
        examples=EXAMPLES,
        seed=lambda *parts: derive_seed(5, *parts),
    )


def _job(explainer: Explainer, model: nn.Module, x_adv: Tensor, x_noise: Tensor, name="m"):
    """Hand the probe every batch as the runner does, then finish it."""
    probe = explainer.probe(name, model)
    for start in range(0, N, BATCH):
        rows = slice(start, min(start + BATCH, N))
        probe.add(rows, x_adv[rows], x_noise[rows])
    return probe.finish()


def _models() -> dict[str, nn.Module]:
    return {
        "plain": smooth_net(0),
        "ensemble": DeepEnsemble([smooth_net(1), smooth_net(2)]),
        "mc-dropout": MCDropout(smooth_net(3, dropout=0.3), samples=6).double(),
    }


@pytest.mark.parametrize("kind", ["plain", "ensemble", "mc-dropout"])
def test_eps_zero_gives_similarity_exactly_one_and_no_concept_shift(kind: str) -> None:
    x, y = _data()
    model = _models()[kind]
    result = _job(_explainer(x, y), model, x, x.clone())
    assert result.metrics["attribution_similarity"] == 1.0
    assert result.metrics["attribution_similarity_noise"] == 1.0
    assert math.isnan(result.metrics["concept_shift"])  # nothing moved: no shift to split
    assert math.isnan(result.metrics["concept_shift_noise"])
    assert [rho for *_, rho in result.stored.maps] == [1.0] * EXAMPLES


@pytest.mark.parametrize("kind", ["plain", "ensemble", "mc-dropout"])
def test_an_attacked_job_has_every_metric_in_range(kind: str) -> None:
    x, y = _data()
    generator = torch.Generator().manual_seed(1)
    x_adv = (x + 0.3 * torch.randn(x.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)
    x_noise = (x + 0.05 * torch.randn(x.shape, generator=generator, dtype=x.dtype)).clamp(0, 1)
    explainer = _explainer(x, y)
    result = _job(explainer, _models()[kind], x_adv, x_noise)
    assert set(result.metrics) == set(EXPLAIN_METRICS)
    for name in ("attribution_similarity", "attribution_similarity_noise"):
        assert -1.0 <= result.metrics[name] < 1.0
    for name in ("concept_shift", "concept_shift_noise"):
        assert 0.0 <= result.metrics[name] <= 1.0
    # A larger random perturbation moves the maps more than a small one.
    assert result.metrics["attribution_similarity"] < result.metrics["attribution_similarity_noise"]
    # The stored examples: the first rows, (H, W) maps, the model's record once.
    indices = [idx for idx, *_ in result.stored.maps]
    assert indices == list(range(EXAMPLES))
    assert all(clean.shape == adv.shape == (8, 8) for _, clean, adv, _ in result.stored.maps)
    record = result.stored.concepts
    assert record is not None and record.model == "m"
    assert record.values["k"] == 3 and record.values["n_images"] == 7
    assert record.exemplars.shape == (3, 8, 1, 8, 8)
    assert len(record.values["exemplars"]) == 3 and len(record.values["exemplar_labels"][0]) == 8
    again = _job(explainer, _models()[kind], x_adv, x_noise)
    assert again.stored.concepts is None  # sent with the model's first job only
    assert again.metrics == result.metrics


def test_the_numbers_do_not_depend_on_which_job_comes_first() -> None:
    """A resumed run builds the model's explanation on another job: same numbers."""
    x, y = _data()
    model = _models()["mc-dropout"]
    x_adv, x_noise = (x + 0.1).clamp(0, 1), (x - 0.02).clamp(0, 1)
    fresh = _job(_explainer(x, y), model, x_adv, x_noise)
    warmed = _explainer(x, y)
    _job(warmed, model, x, x)  # the eps-0 job first
    assert _job(warmed, model, x_adv, x_noise).metrics == fresh.metrics


def test_the_subset_is_the_same_for_every_model() -> None:
    x, y = _data()
    explainer = _explainer(x, y)
    first = explainer.model("a", smooth_net(0)).rows
    second = explainer.model("b", smooth_net(1)).rows
    assert torch.equal(first, second)
    assert len(first) <= 7 + EXAMPLES


def test_a_model_without_a_linear_head_still_gets_maps() -> None:
    """No nn.Linear head: no directions (the record says why), similarity still measured."""
    x, y = _data()

    class Pool(nn.Module):  # logits straight from a conv: no penultimate layer to find
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1).double()

        def forward(self, inputs: Tensor) -> Tensor:
            # tanh: a linear model's gradient, hence its map, would not depend on the input
            return torch.tanh(self.conv(inputs)).mean(dim=(2, 3))

    result = _job(_explainer(x, y), Pool(), (x + 0.1).clamp(0, 1), x)
    assert math.isnan(result.metrics["concept_shift"])
    assert -1.0 <= result.metrics["attribution_similarity"] < 1.0
    record = result.stored.concepts
    assert record is not None and "no concept directions" in record.values["note"]
    assert record.exemplars.shape == (0,)


def test_more_images_asked_than_evaluated_takes_them_all() -> None:
    x, y = _data()
    state = _explainer(x, y, n_images=1000, k=50).model("m", no_conv_net().double())
    assert state.in_subset.all() and len(state.rows) == N
    assert state.record.values["k"] == min(N - 1, 16)  # k is capped by N - 1 and D


def test_the_amp_wrapper_is_looked_through() -> None:
    inner = smooth_net(0)
    assert fp32_view(Autocast(inner, "cpu")) is inner
    assert fp32_view(inner) is inner


# ---- a tiny run -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _run(tmp_path: Path, cache_dir: Path, explain: str):
    config = load_config(_write(tmp_path, explain))
    return run_benchmark(
        config, tmp_path / "run", RunOptions(device="cpu", quiet=True, cache_dir=cache_dir)
    )


def test_a_run_stores_explanations_with_every_job(tmp_path: Path, cache_dir: Path) -> None:
    with _run(tmp_path, cache_dir, "[explain]\nn_images = 16\nk = 4") as store:
        jobs = {r.key.eps: r.metrics for r in store.jobs()}
        assert jobs[0.0]["attribution_similarity"] == 1.0
        assert jobs[0.0]["attribution_similarity_noise"] == 1.0
        for eps in (0.05, 0.3):
            assert 0.0 <= jobs[eps]["concept_shift"] <= 1.0
            assert 0.0 <= jobs[eps]["concept_shift_noise"] <= 1.0
            assert -1.0 <= jobs[eps]["attribution_similarity"] < 1.0
        # On the trained CNN, attention drifts as the attack grows (measured about 0.75 and
        # 0.3 on this tiny run).
        assert jobs[0.3]["attribution_similarity"] < jobs[0.05]["attribution_similarity"] - 0.1
        (record,) = store.concepts().values()
        assert record.values["k"] == 4 and record.exemplars.shape == (4, 8, 1, 8, 8)
        key = JobKey("standard", "fgsm", 0.3)
        assert [m[0] for m in store.explain_maps(key)] == [e[0] for e in store.examples(key)]


def test_explain_off_adds_nothing(tmp_path: Path, cache_dir: Path) -> None:
    with _run(tmp_path, cache_dir, "[explain]\nenabled = false") as store:
        for record in store.jobs():
            assert not set(record.metrics) & set(EXPLAIN_METRICS)
            assert store.explain_maps(record.key) == []
        assert store.concepts() == {}
