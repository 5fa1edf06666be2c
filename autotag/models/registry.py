"""Name → class registries for front-ends and back-ends."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """A named collection of component classes that fails loudly on unknown names or kwargs."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def decorator(cls: type[T]) -> type[T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = cls
            cls.registry_name = name  # type: ignore[attr-defined]
            return cls

        return decorator

    def get(self, name: str) -> type:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {sorted(self._items)}") from None

    def build(self, name: str, params: Mapping[str, Any] | None = None, **extra: Any) -> Any:
        """Instantiate ``name`` with ``params`` (from config) and ``extra`` (from code).

        Raises ``TypeError`` naming the component when a parameter is not accepted, so a typo
        in a YAML file is an error and never silently ignored.
        """
        cls = self.get(name)
        kwargs = {**(params or {}), **extra}
        accepted = inspect.signature(cls.__init__).parameters
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            known = sorted(p for p in accepted if p != "self")
            raise TypeError(f"{self.kind} {name!r} got unknown parameter(s) {unknown}; accepted: {known}")
        return cls(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


FRONTENDS = Registry("front-end")
BACKENDS = Registry("back-end")
