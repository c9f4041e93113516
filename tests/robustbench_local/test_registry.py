"""Tests of the generic registry and str-Enum option parsing."""

from __future__ import annotations

from enum import Enum

import pytest

from robustbench_local.registry import Entry, Registry, UnknownNameError, parse_option


@pytest.fixture
def models() -> Registry[object]:
    registry: Registry[object] = Registry("model")

    @registry.register("digits-cnn", num_classes=10)
    def digits_cnn() -> str:
        return "digits"

    registry.register("mnist-cnn", "mnist", num_classes=10, dropout=False)
    registry.register("cifar-resnet18", "cifar")
    return registry


def test_decorator_and_call_register_and_return_the_object():
    registry: Registry[object] = Registry("thing")

    def build() -> int:
        return 1

    assert registry.register("a", build, size=3) is build
    decorated = registry.register("b", colour="red")(build)
    assert decorated is build
    assert registry.get("a") is build and registry.get("b") is build
    assert dict(registry.metadata("a")) == {"size": 3}
    assert dict(registry.metadata("b")) == {"colour": "red"}


def test_names_are_sorted_and_iteration_follows_them(models):
    assert models.names() == ["cifar-resnet18", "digits-cnn", "mnist-cnn"]
    assert list(models) == models.names()
    assert len(models) == 3
    assert "mnist-cnn" in models and "resnet" not in models and 3 not in models


def test_items_carry_metadata(models):
    entries = models.items()
    assert [entry.name for entry in entries] == models.names()
    assert all(isinstance(entry, Entry) for entry in entries)
    mnist = models.entry("mnist-cnn")
    assert mnist.obj == "mnist"
    assert dict(mnist.metadata) == {"num_classes": 10, "dropout": False}
    assert models.get("digits-cnn")() == "digits"


def test_metadata_is_read_only(models):
    with pytest.raises(TypeError):
        models.metadata("mnist-cnn")["num_classes"] = 5  # type: ignore[index]


@pytest.mark.parametrize("form", ["call", "decorator"])
def test_duplicate_names_are_an_error(models, form):
    with pytest.raises(ValueError, match="model 'mnist-cnn' is already registered"):
        if form == "call":
            models.register("mnist-cnn", "again")
        else:
            models.register("mnist-cnn")(lambda: None)
    assert models.get("mnist-cnn") == "mnist"


def test_a_decorator_made_before_a_duplicate_registration_still_refuses():
    registry: Registry[str] = Registry("model")
    decorator = registry.register("x")
    registry.register("x", "first")
    with pytest.raises(ValueError, match="already registered"):
        decorator("second")
    assert registry.get("x") == "first"


def test_unknown_name_suggests_the_closest_and_lists_all(models):
    with pytest.raises(UnknownNameError) as info:
        models.get("digit-cnn")
    message = str(info.value)
    assert message.startswith("unknown model 'digit-cnn' (did you mean 'digits-cnn'")
    assert "Available models: 'cifar-resnet18', 'digits-cnn', 'mnist-cnn'." in message


def test_unknown_name_is_a_value_error_not_a_key_error(models):
    with pytest.raises(ValueError) as info:
        models.metadata("nothing-like-it")
    assert not isinstance(info.value, KeyError)
    assert "did you mean" not in str(info.value)
    assert "'nothing-like-it'" in str(info.value)


def test_suggestions_ignore_case(models):
    with pytest.raises(UnknownNameError, match="did you mean 'mnist-cnn'"):
        models.get("MNIST-CNN")


def test_empty_registry_says_so():
    with pytest.raises(UnknownNameError, match=r"Available attacks: \(none\)"):
        Registry("attack").get("pgd")


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_names_must_be_non_empty_strings(name):
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        Registry("model").register(name, "x")


def test_get_with_a_non_string_is_a_type_error(models):
    with pytest.raises(TypeError, match="model name must be a string; got int"):
        models.get(3)  # type: ignore[arg-type]


def test_kind_must_be_named():
    with pytest.raises(ValueError, match="kind"):
        Registry("")


class Norm(str, Enum):
    LINF = "linf"
    L2 = "l2"


def test_parse_option_accepts_members_and_values():
    assert parse_option(Norm, "linf", "norm") is Norm.LINF
    assert parse_option(Norm, Norm.L2, "norm") is Norm.L2


@pytest.mark.parametrize("value", ["l3", "LINF", 2, None])
def test_parse_option_rejects_with_the_valid_values(value):
    with pytest.raises(UnknownNameError) as info:
        parse_option(Norm, value, "norm")
    message = str(info.value)
    assert message.startswith(f"invalid norm {value!r}")
    assert message.endswith("Expected one of: 'linf', 'l2'.")


def test_parse_option_suggests_a_close_value():
    with pytest.raises(ValueError, match=r"did you mean 'linf'\?"):
        parse_option(Norm, "lnf", "norm")
