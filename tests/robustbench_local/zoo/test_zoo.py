"""Tests of the model zoo, parametrised over every registered architecture."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robustbench_local.registry import UnknownNameError
from robustbench_local.zoo.datasets import DATASETS, dataset_info, load_tensors
from robustbench_local.zoo.models import (
    MODELS,
    ModelInfo,
    Normalize,
    count_parameters,
    create_model,
    model_info,
)

ALL = MODELS.names()


def _batch(name: str, size: int = 3, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, *model_info(name).input_shape, generator=generator)


def _dropouts(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


def test_registry_holds_the_documented_models():
    assert set(ALL) >= {
        "digits-cnn",
        "digits-cnn-dropout",
        "mnist-cnn",
        "mnist-cnn-dropout",
        "cifar-resnet18",
    }


@pytest.mark.parametrize("name", ALL)
def test_info_matches_the_datasets_it_is_for(name):
    info = model_info(name)
    assert isinstance(info, ModelInfo)
    assert info.datasets and all(dataset in DATASETS for dataset in info.datasets)
    first = dataset_info(info.datasets[0])
    assert (info.mean, info.std, info.num_classes) == (first.mean, first.std, first.num_classes)
    for dataset in info.datasets:
        assert dataset_info(dataset).input_shape == info.input_shape
        assert dataset_info(dataset).num_classes == info.num_classes


@pytest.mark.parametrize("name", ALL)
def test_logits_have_shape_batch_by_classes(name):
    model = create_model(name).eval()
    x = _batch(name)
    logits = model(x)
    assert logits.shape == (3, model_info(name).num_classes)
    assert logits.dtype == torch.float32 and bool(torch.isfinite(logits).all())


@pytest.mark.parametrize("name", ALL)
def test_normalize_comes_first_with_the_registered_stats(name):
    model = create_model(name)
    first_name, first = next(iter(model.named_children()))
    assert first_name == "normalize" and isinstance(first, Normalize)
    info = model_info(name)
    channels = info.input_shape[0]
    assert torch.allclose(first.mean, torch.tensor(info.mean).view(1, channels, 1, 1))
    assert torch.allclose(first.std, torch.tensor(info.std).view(1, channels, 1, 1))
    assert {"normalize.mean", "normalize.std"} <= set(model.state_dict())


@pytest.mark.parametrize("name", ALL)
def test_gradient_reaches_the_input(name):
    model = create_model(name).eval()
    x = _batch(name).requires_grad_(True)
    y = torch.zeros(3, dtype=torch.int64)
    loss = nn.functional.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    assert grad.shape == x.shape
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


@pytest.mark.parametrize("name", ALL)
def test_train_and_eval_modes_switch_every_layer(name):
    model = create_model(name)
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    x = _batch(name)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    model.train()
    assert all(m.training for m in model.modules())


@pytest.mark.parametrize("name", ALL)
def test_dropout_flag_matches_the_layers(name):
    layers = _dropouts(create_model(name))
    if model_info(name).dropout:
        assert layers and all(layer.p > 0 for layer in layers)
    else:
        assert layers == []


@pytest.mark.parametrize("name", [n for n in ALL if model_info(n).dropout])
def test_dropout_models_are_stochastic_in_train_mode(name):
    model = create_model(name)
    x = _batch(name)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


def test_a_digits_dropout_model_has_batchnorm_for_mc_dropout_to_keep_in_eval():
    model = create_model("digits-cnn-dropout")
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@pytest.mark.parametrize("name", ALL)
def test_creation_is_deterministic_under_manual_seed(name):
    torch.manual_seed(0)
    first = create_model(name).state_dict()
    torch.manual_seed(0)
    second = create_model(name).state_dict()
    torch.manual_seed(1)
    third = create_model(name).state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert any(not torch.equal(first[key], third[key]) for key in first)


def test_parameter_counts_stay_small_enough_for_a_laptop():
    assert 10_000 <= count_parameters(create_model("digits-cnn")) <= 50_000
    assert count_parameters(create_model("mnist-cnn")) <= 1_000_000
    assert 11_000_000 <= count_parameters(create_model("cifar-resnet18")) <= 11_500_000


def test_cifar_resnet18_keeps_full_resolution_in_its_stem():
    net = create_model("cifar-resnet18").net
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())


def test_overrides_change_classes_and_normalisation():
    model = create_model("mnist-cnn", num_classes=5, mean=(0.2860,), std=(0.3530,)).eval()
    assert model(_batch("mnist-cnn")).shape == (3, 5)
    assert float(model.normalize.mean) == pytest.approx(0.2860)
    assert float(model.normalize.std) == pytest.approx(0.3530)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 1}, "num_classes must be an int >= 2; got 1"),
        ({"num_classes": 2.0}, "num_classes"),
        ({"mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2)}, "1-channel inputs"),
        ({"std": (0.0,)}, "std must be > 0"),
        ({"mean": (0.1, 0.2)}, "one value per channel"),
        ({"mean": "0.5"}, "mean must be a sequence"),
    ],
)
def test_bad_overrides_are_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        create_model("digits-cnn", **kwargs)


def test_unknown_model_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'cifar-resnet18'"):
        create_model("cifar_resnet18")


def test_normalize_known_answer_and_channel_check():
    layer = Normalize((0.5, 0.25), (0.25, 0.5))
    x = torch.tensor([0.75, 0.75]).view(1, 2, 1, 1)
    assert layer(x).flatten().tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        layer(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        layer(torch.zeros(2, 4, 4))


def test_digits_cnn_learns_the_digits():
    torch.manual_seed(0)
    model = create_model("digits-cnn")
    x, y = load_tensors("digits", "train")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(3):
        for batch in torch.randperm(len(y)).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    x_val, y_val = load_tensors("digits", "val")
    with torch.no_grad():
        accuracy = (model.eval()(x_val).argmax(1) == y_val).float().mean()
    assert float(accuracy) > 0.9
