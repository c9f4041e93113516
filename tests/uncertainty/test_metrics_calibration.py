"""ECE / MCE / adaptive ECE / reliability bins against torchmetrics, netcal and known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from uncertainty import metrics


def _netcal(name: str, probs: torch.Tensor, y: torch.Tensor, **kwargs) -> float:
    # netcal treats labels with <= 2 distinct values as a binary task; the data here has K >= 3
    # classes present.
    from netcal import metrics as netcal_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(
            getattr(netcal_metrics, name)(**kwargs).measure(probs.double().numpy(), y.numpy())
        )


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def data(request):
    """Labels drawn from softmax(z); the prediction is z distorted both ways (over- and
    under-confident bins), so binning choices change the result."""
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(3000, 10, generator=generator, dtype=torch.float64) * 2
    y = torch.multinomial(z.softmax(-1), 1, generator=generator).squeeze(1)
    noise = torch.randn(3000, 10, generator=generator, dtype=torch.float64)
    probs = (z * 0.8 + noise * 0.5).softmax(-1).to(request.param)
    assert not bool((probs.max(-1).values == 1.0).any())  # torchmetrics #3510 stays out of it
    return probs, y


def test_ece_matches_torchmetrics_and_netcal(data):
    probs, y = data
    ours = metrics.ece(probs, y)
    reference = multiclass_calibration_error(probs, y, num_classes=10, n_bins=15, norm="l1")
    assert ours == pytest.approx(float(reference), abs=1e-6)
    assert ours == pytest.approx(_netcal("ECE", probs, y, bins=15), abs=1e-12)
    assert ours > 0.01  # not a trivially calibrated case


def test_mce_matches_torchmetrics_and_netcal(data):
    probs, y = data
    ours = metrics.mce(probs, y)
    reference = multiclass_calibration_error(probs, y, num_classes=10, n_bins=15, norm="max")
    assert ours == pytest.approx(float(reference), abs=1e-6)
    assert ours == pytest.approx(_netcal("MCE", probs, y, bins=15), abs=1e-12)


def test_adaptive_ece_matches_netcal_equal_mass_bins(data):
    probs, y = data
    ours = metrics.adaptive_ece(probs, y, n_bins=10)
    reference = _netcal("ECE", probs, y, bins=10, equal_intervals=False)
    assert ours == pytest.approx(reference, abs=1e-12)
    assert abs(ours - metrics.ece(probs, y, n_bins=10)) > 1e-4  # the binning matters here


@pytest.mark.parametrize("n_bins", [1, 5, 15, 40])
def test_other_bin_counts_match_torchmetrics(data, n_bins):
    probs, y = data
    reference = multiclass_calibration_error(probs, y, num_classes=10, n_bins=n_bins)
    assert metrics.ece(probs, y, n_bins=n_bins) == pytest.approx(float(reference), abs=1e-6)


def test_confidence_of_exactly_one_belongs_to_the_last_bin():
    # Two samples at confidence 1.0 (one right, one wrong) and two near it (both right).
    probs = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.95, 0.03, 0.02], [0.02, 0.96, 0.02]],
        dtype=torch.float64,
    )
    y = torch.tensor([0, 2, 0, 1])
    bins = metrics.reliability_bins(*metrics.confidence_and_correct(probs, y), n_bins=15)
    assert bins.count.tolist() == [0] * 14 + [4]
    # All four share the last bin [14/15, 1]: mean confidence 3.91/4, accuracy 3/4.
    expected = abs(3 / 4 - 3.91 / 4)
    assert metrics.ece(probs, y) == pytest.approx(expected, abs=1e-12)
    assert metrics.mce(probs, y) == pytest.approx(expected, abs=1e-12)
    # netcal clips confidences to 1 - eps, so it agrees; torchmetrics would open an extra bin
    # for the two 1.0s (#3510), hence no torchmetrics comparison on this data.
    assert metrics.ece(probs, y) == pytest.approx(_netcal("ECE", probs, y, bins=15), abs=1e-9)


def test_known_answer_two_bins():
    confidence = torch.tensor([0.2, 0.4, 0.6, 0.9])
    correct = torch.tensor([False, True, True, True])
    bins = metrics.reliability_bins(confidence, correct, n_bins=2)
    torch.testing.assert_close(bins.edges, torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(bins.count, torch.tensor([2, 2]))
    torch.testing.assert_close(bins.mean_confidence, torch.tensor([0.3, 0.75], dtype=torch.float64))
    torch.testing.assert_close(bins.accuracy, torch.tensor([0.5, 1.0], dtype=torch.float64))
    assert bins.ece == pytest.approx(0.5 * 0.2 + 0.5 * 0.25)
    assert bins.mce == pytest.approx(0.25)


def test_a_value_on_an_edge_starts_the_next_bin():
    bins = metrics.reliability_bins(torch.tensor([0.5, 0.25]), torch.tensor([True, True]), 4)
    assert bins.count.tolist() == [0, 1, 1, 0]


def test_empty_bins_are_nan_and_ignored():
    bins = metrics.reliability_bins(torch.tensor([0.95, 0.97]), torch.tensor([1, 0]), n_bins=10)
    assert bins.count.tolist() == [0] * 9 + [2]
    assert bool(torch.isnan(bins.accuracy[:9]).all()) and bool(
        torch.isnan(bins.mean_confidence[:9]).all()
    )
    assert bins.ece == pytest.approx(0.46)
    assert bins.mce == pytest.approx(0.46)


def test_perfectly_calibrated_bins_have_zero_ece():
    confidence = torch.full((10,), 0.7, dtype=torch.float64)
    correct = torch.tensor([True] * 7 + [False] * 3)
    assert metrics.reliability_bins(confidence, correct).ece == pytest.approx(0.0, abs=1e-12)


def test_samples_are_averaged_first(random_probs, random_labels):
    samples = random_probs(4, 200, 5)
    y = random_labels(200, 5)
    assert metrics.ece(samples, y) == metrics.ece(samples.mean(0), y)
    assert metrics.mce(samples, y) == metrics.mce(samples.mean(0), y)


def test_float32_and_float64_agree(random_probs, random_labels):
    probs = random_probs(500, 6)
    y = random_labels(500, 6)
    assert metrics.ece(probs.float(), y) == pytest.approx(metrics.ece(probs, y), abs=1e-6)


def test_equal_mass_bins_hold_equal_counts():
    confidence = torch.linspace(0.3, 0.99, 100, dtype=torch.float64)
    correct = torch.arange(100) % 2 == 0
    bins = metrics.reliability_bins(confidence, correct, n_bins=4, binning="equal_mass")
    assert bins.count.tolist() == [25, 25, 25, 25]
    assert bins.edges[0] == 0.0 and bins.edges[-1] == 1.0


def test_ece_from_stored_numbers_equals_ece_from_probs(random_probs, random_labels):
    probs = random_probs(300, 7)
    y = random_labels(300, 7)
    confidence, correct = metrics.confidence_and_correct(probs, y)
    assert confidence.shape == (300,) and correct.dtype == torch.bool
    stored = (confidence.numpy().tolist(), correct.numpy())  # as a store might hand them back
    bins = metrics.reliability_bins(*stored)
    assert bins.ece == metrics.ece(probs, y)
    assert bins.mce == metrics.mce(probs, y)
    assert int(bins.count.sum()) == 300
    np.testing.assert_allclose(bins.edges.numpy(), np.linspace(0, 1, 16), rtol=0, atol=1e-15)


def test_bad_binning_lists_the_choices():
    with pytest.raises(
        ValueError, match="binning must be one of 'equal_width', 'equal_mass'; got 'q'"
    ):
        metrics.reliability_bins(torch.tensor([0.5]), torch.tensor([True]), binning="q")
