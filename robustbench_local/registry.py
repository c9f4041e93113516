"""Named registries with helpful errors, and parsing of str-Enum options.

A `Registry` maps names to objects (dataset loaders, model builders, attacks) plus free-form
metadata, in the spirit of timm's ``@register_model`` / ``create_model`` / ``list_models``, with
two improvements: registering a name twice is an error, and an unknown name is rejected with the
closest valid names (difflib) and the full list of what exists. Registries are filled by the
module that defines the entries, at import time, through explicit ``register`` calls.

Example:
    >>> MODELS: Registry[Callable[[], nn.Module]] = Registry("model")
    >>> @MODELS.register("tiny", num_classes=10)
    ... def tiny() -> nn.Module: ...
    >>> MODELS.get("tiny"), MODELS.metadata("tiny")["num_classes"]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")
E = TypeVar("E", bound=Enum)

__all__ = ["Entry", "Registry", "UnknownNameError", "parse_option"]


class UnknownNameError(ValueError):
    """A name that is not in a registry, or a value that is not a valid option."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object.

    Args:
        name: the registered name.
        obj: the registered object.
        metadata: read-only metadata given at registration.
    """

    name: str
    obj: T
    metadata: Mapping[str, Any]


def _closest(value: str, choices: list[str]) -> list[str]:
    """Up to three choices close to value, compared case-insensitively, best first."""
    by_lower = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(value.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[match] for match in matches]


def _suggestion(value: object, choices: list[str]) -> str:
    """' (did you mean ...?)' naming the choices closest to value, or '' when none is close."""
    close = _closest(value, choices) if isinstance(value, str) else []
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(name) for name in close) + "?)"


def _listing(choices: list[str]) -> str:
    return ", ".join(repr(name) for name in choices) if choices else "(none)"


class Registry(Generic[T]):
    """A name -> object mapping that refuses duplicates and explains unknown names.

    Args:
        kind: what the entries are, singular ("dataset", "model"); used in error messages.
    """

    def __init__(self, kind: str) -> None:
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"kind must be a non-empty string naming the entries; got {kind!r}")
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    @overload
    def register(self, name: str, /, **metadata: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, /, **metadata: Any) -> T: ...

    def register(self, name: str, obj: Any = None, /, **metadata: Any) -> Any:
        """Register obj under name, directly or as a decorator.

        ``registry.register("a", thing, size=3)`` registers ``thing``;
        ``@registry.register("a", size=3)`` registers the decorated object. Both return the
        object unchanged.

        Args:
            name: a non-empty string, unique in this registry.
            obj: the object; leave it out to get a decorator.
            **metadata: free-form facts about the entry (shapes, sources, flags).

        Returns:
            obj, or a decorator that registers and returns its argument.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{self.kind} name must be a non-empty string; got {name!r}")
        if name in self._entries:
            raise ValueError(
                f"{self.kind} {name!r} is already registered; each {self.kind} name must be unique"
            )
        frozen = MappingProxyType(dict(metadata))

        def add(target: T) -> T:
            # Checked again: a decorator may be applied after another registration of the name.
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered; "
                    f"each {self.kind} name must be unique"
                )
            self._entries[name] = Entry(name=name, obj=target, metadata=frozen)
            return target

        if obj is None:
            return add
        return add(obj)

    def entry(self, name: str) -> Entry[T]:
        """The entry registered under name.

        Args:
            name: a registered name.

        Returns:
            its `Entry` (name, object, metadata).

        Raises:
            UnknownNameError: name is not registered; the message suggests close names.
        """
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string; got {type(name).__name__}")
        try:
            return self._entries[name]
        except KeyError:
            names = self.names()
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{_suggestion(name, names)}. "
                f"Available {self.kind}s: {_listing(names)}."
            ) from None

    def get(self, name: str) -> T:
        """The object registered under name (see `entry` for errors)."""
        return self.entry(name).obj

    def metadata(self, name: str) -> Mapping[str, Any]:
        """The read-only metadata registered with name (see `entry` for errors)."""
        return self.entry(name).metadata

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def items(self) -> list[Entry[T]]:
        """All entries, sorted by name."""
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry(kind={self.kind!r}, names={self.names()!r})"


def parse_option(enum_cls: type[E], value: object, argument_name: str) -> E:
    """Turn value into a member of a str-valued Enum, or reject it with the valid values.

    Args:
        enum_cls: an Enum whose member values are strings (e.g. ``class Split(str, Enum)``).
        value: a member of enum_cls, or one of its values as a string.
        argument_name: the caller's argument name, for the error message.

    Returns:
        the matching member.

    Raises:
        UnknownNameError: value is not a valid option; the message lists the valid ones.
    """
    if isinstance(value, enum_cls):
        return value
    choices = [str(member.value) for member in enum_cls]
    if isinstance(value, str):
        for member in enum_cls:
            if member.value == value:
                return member
    raise UnknownNameError(
        f"invalid {argument_name} {value!r}{_suggestion(value, choices)}. "
        f"Expected one of: {_listing(choices)}."
    )
