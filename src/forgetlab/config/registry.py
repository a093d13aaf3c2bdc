"""Explicit name -> component registries, filled by decorators at import time of the defining module.

A registry of a plug-in group (``group="strategies"``, ...) also finds what installed packages declare as
entry points, the first time it is listed or asked for a name it lacks, and resolves a spec
(``path/to/file.py:Class``, ``package.module:Class``) to the name the object is registered under
(``forgetlab.plugins``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from forgetlab import plugins
from forgetlab.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, group: str | None = None):
        self.kind, self.group = kind, group
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = item
            return item

        return add

    def _installed(self) -> None:
        if self.group is not None:
            plugins.load_entry_points(self.group)

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            self._installed()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; valid: {', '.join(self._items)}") from None

    def __contains__(self, name: str) -> bool:
        if name not in self._items:
            self._installed()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._installed()
        return iter(list(self._items))

    def items(self):
        self._installed()
        return list(self._items.items())

    def name_of(self, item: Any) -> str | None:
        """The name ``item`` is registered under, or None."""
        return next((n for n, v in self._items.items() if v is item), None)

    def resolve(self, name: str, what: str, adopt: Callable[[str, Any], None] | None = None) -> tuple[str, str | None]:
        """(registered name, plugin target or None) of a name or a ``target:Attr`` spec.

        A spec's module is imported (its decorators register what it holds); an object it names that is not
        registered yet is registered under its ``__name__`` by ``adopt(name, obj)`` (default: ``register``).
        ``what`` (e.g. "--strategy") words the errors."""
        if not plugins.is_spec(name):
            self[name]  # noqa: B018 - an unknown name fails here, listing the valid ones
            return name, None
        obj = plugins.load(name, what)
        registered = self.name_of(obj)
        if registered is None:
            registered = getattr(obj, "__name__", None)
            if not registered or registered in self._items:
                raise ConfigError(
                    f"{what} {name!r}: cannot register it as {registered!r} (taken or unnamed); "
                    f"give it a registered name with the {self.kind} decorator"
                )
            (adopt or (lambda n, o: self.register(n)(o)))(registered, obj)
        return registered, plugins.canonical(name.rpartition(":")[0])
