"""The unit of work's inside stays inside storage: no module outside ``src/crmcore/storage/``
(core, plugins, contrib, examples) uses a private member of :class:`UnitOfWork`; the core's own
services go through :mod:`crmcore.storage.internal` or the public record API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from crmcore.storage.uow import UnitOfWork

ROOT = Path(__file__).resolve().parent.parent
STORAGE = ROOT / "src" / "crmcore" / "storage"
#: Expressions that stand for a unit of work: ``uow``, ``self.uow``, ``unit``, ``ctx.uow``, ...
_A_UNIT = re.compile(r"(^|\.|_)(uow|unit|unit_of_work)$")


def _private_members() -> set[str]:
    """The private names of UnitOfWork: the methods of its classes and the attributes they set."""
    names = {name for cls in UnitOfWork.__mro__ for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
    for path in STORAGE.glob("uow*.py"):
        tree = ast.parse(path.read_text())
        names.update(
            node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and node.attr.startswith("_") and not node.attr.startswith("__")
        )
    return names


def private_uses(source: str, members: set[str]) -> list[tuple[int, str]]:
    """``(line, text)`` of each use, in line order, of a private member of a unit of work in *source*."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in members and _A_UNIT.search(ast.unparse(node.value)):
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def test_the_private_members_are_found():
    members = _private_members()

    assert {"_execute", "_row_to_record", "_hook", "_origin", "_after_write", "_plain", "_visible", "_signals"} <= members


def test_the_scan_finds_a_private_use_and_ignores_public_ones():
    members = _private_members()
    source = "uow._execute(s)\nself.uow._origin\nctx.uow.create('lead')\nother._execute(s)\ninternal.execute(uow, s)\n"

    assert private_uses(source, members) == [(1, "uow._execute"), (2, "self.uow._origin")]


def test_no_module_outside_storage_uses_a_private_member_of_the_unit_of_work():
    members = _private_members()
    offenders = []
    for folder in ("src", "plugins", "contrib", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if STORAGE in path.parents or "/tests/" in str(path) or ".venv" in path.parts:
                continue
            for line, text in private_uses(path.read_text(), members):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text}")

    assert offenders == [], f"{len(offenders)} uses of private members of UnitOfWork outside storage/ (use crmcore.storage.internal)"

