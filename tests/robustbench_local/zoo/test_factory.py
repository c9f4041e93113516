"""Tests of building a user's model from a "package.module:callable" spec."""

from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
from torch import nn

from robustbench_local.zoo.factory import build_user_model, resolve_factory

USER_MODULE = """
from torch import nn

VALUE = 3


def build(num_classes=10, hidden=4):
    layers = [nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)]
    return nn.Sequential(*layers)


def not_a_model():
    return "a string"


def broken():
    raise RuntimeError("boom inside the user's factory")


class TinyNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.linear = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.linear(x.flatten(1))


class Zoo:
    @staticmethod
    def small():
        return nn.Linear(64, 10)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch) -> str:
    """A fresh importable module (unique name) written to tmp_path; returns its name."""
    name = f"rbl_user_models_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "rbl_broken_import.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)
    sys.modules.pop("rbl_broken_import", None)


def test_function_factory_with_kwargs(user_module):
    model = build_user_model(f"{user_module}:build", {"num_classes": 7, "hidden": 5})
    assert isinstance(model, nn.Sequential)
    assert model[-1].out_features == 7 and model[1].out_features == 5


def test_class_and_nested_attribute_factories(user_module):
    assert isinstance(build_user_model(f"{user_module}:TinyNet"), nn.Module)
    assert build_user_model(f"{user_module}:TinyNet", {"num_classes": 3}).linear.out_features == 3
    assert isinstance(build_user_model(f"{user_module}:Zoo.small"), nn.Linear)


def test_resolve_returns_the_callable_without_calling_it(user_module):
    factory = resolve_factory(f"{user_module}:broken")
    assert factory.__name__ == "broken"


@pytest.mark.parametrize(
    "spec",
    ["no_colon_here", "pkg.mod:a:b", ":build", "pkg.mod:", "pkg..mod:build", "pkg.mod:1build"],
)
def test_malformed_specs_are_rejected(spec):
    with pytest.raises(
        ValueError, match=r"factory must look like 'package\.module:callable'"
    ) as info:
        resolve_factory(spec)
    assert repr(spec) in str(info.value)


def test_a_non_string_spec_is_a_type_error():
    with pytest.raises(TypeError, match="factory must be a string"):
        resolve_factory(42)  # type: ignore[arg-type]


def test_a_module_that_does_not_exist(user_module):
    with pytest.raises(ValueError, match="could not import module 'no_such_module_xyz'") as info:
        build_user_model("no_such_module_xyz:build")
    assert "sys.path" in str(info.value)


def test_a_module_whose_own_import_fails(user_module):
    with pytest.raises(ValueError, match="a_dependency_that_is_not_installed"):
        build_user_model("rbl_broken_import:build")


def test_a_missing_attribute_suggests_close_names(user_module):
    with pytest.raises(ValueError, match=r"has no attribute 'buld' \(did you mean 'build'\?\)"):
        build_user_model(f"{user_module}:buld")


def test_a_non_callable_attribute(user_module):
    with pytest.raises(TypeError, match=r":VALUE' is not callable \(got a int object\)"):
        build_user_model(f"{user_module}:VALUE")


def test_a_factory_returning_something_else(user_module):
    with pytest.raises(TypeError, match=r"returned a str; expected a torch\.nn\.Module"):
        build_user_model(f"{user_module}:not_a_model")


def test_errors_raised_by_the_factory_propagate_unchanged(user_module):
    with pytest.raises(RuntimeError, match="boom inside the user's factory"):
        build_user_model(f"{user_module}:broken")


def test_kwargs_must_be_a_str_keyed_mapping(user_module):
    with pytest.raises(TypeError, match="kwargs must be a mapping"):
        build_user_model(f"{user_module}:build", [("num_classes", 3)])  # type: ignore[arg-type]
