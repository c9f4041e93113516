"""Building a user's own model from an import spec such as ``"mypackage.models:build"``.

The spec names a module and, after a colon, a callable in it (a function or a class; a dotted
path such as ``"pkg.mod:Zoo.build"`` reaches nested attributes). The callable is called with the
given keyword arguments and must return an ``nn.Module`` mapping inputs in [0, 1] of shape
(B, C, H, W) to logits (B, K); normalisation belongs inside it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

__all__ = ["build_user_model", "check_factory_kwargs", "resolve_factory"]

_EXAMPLE = "'package.module:callable'"


def _parse(spec: object) -> tuple[str, list[str]]:
    """Split spec into a module path and the attribute chain after the colon."""
    if not isinstance(spec, str):
        raise TypeError(f"factory must be a string like {_EXAMPLE}; got {type(spec).__name__}")
    module_path, colon, attribute_path = spec.partition(":")
    attributes = attribute_path.split(".")
    valid = (
        colon
        and ":" not in attribute_path
        and all(part.isidentifier() for part in module_path.split("."))
        and all(part.isidentifier() for part in attributes)
    )
    if not valid:
        raise ValueError(
            f"factory must look like {_EXAMPLE} (a module path, one colon, a callable name); "
            f"got {spec!r}"
        )
    return module_path, attributes


def resolve_factory(spec: str) -> Callable[..., Any]:
    """Import the callable that a ``"package.module:callable"`` spec names.

    Args:
        spec: module path, a colon, and the callable's (possibly dotted) name in that module.

    Returns:
        the callable, not yet called.

    Raises:
        ValueError: malformed spec, module that cannot be imported, or missing attribute.
        TypeError: spec is not a string, or the attribute is not callable.
    """
    module_path, attributes = _parse(spec)
    try:
        target: Any = importlib.import_module(module_path)
    except Exception as err:  # any failure of the user's import (missing, syntax, its own imports)
        raise ValueError(
            f"factory {spec!r}: could not import module {module_path!r} "
            f"({type(err).__name__}: {err}); check the name and that its folder is on sys.path "
            f"(PYTHONPATH)"
        ) from err
    reached = module_path
    for attribute in attributes:
        if not hasattr(target, attribute):
            available = sorted(
                name
                for name in dir(target)
                if not name.startswith("_") and callable(getattr(target, name))
            )
            close = difflib.get_close_matches(attribute, available, n=3)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise ValueError(
                f"factory {spec!r}: {reached!r} has no attribute {attribute!r}{hint}; "
                f"its public callables are {available}"
            )
        target = getattr(target, attribute)
        reached = f"{reached}:{attribute}" if reached == module_path else f"{reached}.{attribute}"
    if not callable(target):
        raise TypeError(
            f"factory {spec!r}: {reached!r} is not callable (got a {type(target).__name__} "
            f"object); expected a function or class that returns an nn.Module"
        )
    return target


def check_factory_kwargs(
    spec: str, factory: Callable[..., Any], kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Check that the factory accepts kwargs, without calling it.

    A mistake in the keyword arguments is then told apart from a TypeError the factory itself
    raises, so it can be reported as the user's ``factory_kwargs``.

    Args:
        spec: the factory's spec, for messages.
        factory: the callable `resolve_factory` returned.
        kwargs: keyword arguments for it; None for none.

    Returns:
        kwargs as a dict.

    Raises:
        TypeError: kwargs is not a str-keyed mapping, or the factory's signature rejects it.
    """
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
        raise TypeError(f"kwargs must be a mapping with str keys or None; got {kwargs!r}")
    kwargs = dict(kwargs)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: the call will tell
        return kwargs
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"factory {spec!r} does not accept the keyword arguments {kwargs!r} ({err}); "
            f"its signature is {signature}"
        ) from None
    return kwargs


def build_user_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a user's model by calling the factory a spec names.

    Args:
        spec: ``"package.module:callable"`` (see `resolve_factory`).
        kwargs: keyword arguments for the callable; None for none.

    Returns:
        the ``nn.Module`` it returns (expected to map x (B, C, H, W) in [0, 1] to logits (B, K)).

    Raises:
        TypeError: kwargs is not a str-keyed mapping or not accepted by the callable
            (`check_factory_kwargs`), or the callable returned a non-Module.
        (and the errors of `resolve_factory`; errors raised by the callable propagate unchanged)
    """
    factory = resolve_factory(spec)
    model = factory(**check_factory_kwargs(spec, factory, kwargs))
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"factory {spec!r} returned a {type(model).__name__}; expected a torch.nn.Module"
        )
    return model
