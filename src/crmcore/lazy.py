"""Lazy facades: a package that re-exports the public names of its modules without importing
them when the package itself is imported.

Python imports a package's ``__init__`` whenever one of its modules is imported, so a facade
that imported its service modules eagerly would drag them (and the layers they stand on) into
every import of its lowest module (``crmcore.storage.types`` is imported by the field types).
A facade therefore names where each public name lives, and the name is imported on first use::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {
        "crmcore.storage.uow": ("UnitOfWork",),
        "crmcore.storage.raw": ("RawConnection",),
    })

A name may be exported under another name than its module's: ``"parse_condition=parse"``.
The facade also imports the same names under ``TYPE_CHECKING`` so type checkers see them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, sources: Mapping[str, Iterable[str]],
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for the facade *package*, whose public names come
    from the modules of *sources* (``{module: names}``), imported on first use.

    :raises ValueError: when two modules give the same name.
    """
    where: dict[str, tuple[str, str]] = {}
    for module, names in sources.items():
        for entry in names:
            name, _, attribute = entry.partition("=")
            if name in where:
                raise ValueError(f"{package}: {name!r} is exported from both {where[name][0]} and {module}")
            where[name] = (module, attribute or name)

    def getattr_(name: str) -> Any:
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = found
        return getattr(importlib.import_module(module), attribute)

    def dir_() -> list[str]:
        return sorted(where)

    return sorted(where), getattr_, dir_
