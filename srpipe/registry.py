"""The registry class behind everything plugins register by name: models, backends, networks."""

from __future__ import annotations

import dataclasses
import re
from typing import Generic, Iterator, TypeVar

from srpipe.errors import SrpipeError

Item = TypeVar("Item")
# What a name may be: what a user types after -m or --backend, and reads in listings
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


class Registry(Generic[Item]):
    """Items of one dataclass type by their ``name``, each tagged with the plugin that
    registered it (the item's ``plugin`` field). A subclass sets ``item_type``, ``what`` (the
    word used in messages) and, optionally, ``reserved`` names."""

    item_type: type
    what: str
    reserved: frozenset[str] = frozenset()

    def __init__(self):
        self._items: dict[str, Item] = {}

    def register(self, item: Item, plugin: str) -> None:
        if not isinstance(item, self.item_type):
            qualified = f"{self.item_type.__module__}.{self.item_type.__name__}"
            raise TypeError(f"register() takes a {qualified}, not {type(item).__name__}")
        if not isinstance(item.name, str) or not NAME.fullmatch(item.name):
            raise ValueError(f"{self.what} name {item.name!r} is not a name: letters and digits, then also '.', "
                             "'_', '+' or '-'")
        if item.name in self.reserved:
            raise ValueError(f"{self.what} name {item.name!r} is reserved")
        self.check(item)
        if item.name in self._items:
            other = self._items[item.name].plugin
            raise ValueError(f"{self.what} {item.name!r} is already registered by plugin {other!r}")
        self._items[item.name] = dataclasses.replace(item, plugin=plugin)

    def check(self, item: Item) -> None:
        """Raise ValueError where ``item`` is not fit to register (a subclass says what fits)."""

    def sort_key(self, item: Item):
        return item.name

    def __iter__(self) -> Iterator[Item]:
        return iter(sorted(self._items.values(), key=self.sort_key))

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def find(self, name: str) -> Item | None:
        return self._items.get(name)

    def get(self, name: str) -> Item:
        """The item called ``name``, or an error that lists the known names."""
        item = self._items.get(name)
        if item is None:
            known = ", ".join(i.name for i in self) or "none"
            raise SrpipeError(f"unknown {self.what} {name!r}; available: {known}")
        return item
