"""The geography tree: countries, regions, cities or a deployment's own levels.

Geographies are records (``uow.create("geography", name="Bavaria", parent_id=de.id)``); this
module reads the whole tree at once (it is small: thousands of nodes at most) and answers
subtrees, ancestors and roll-ups without a query per node. A move that would make a node its
own ancestor is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.actors import Actor
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Tree", "check_parent", "read_tree"]


@attrs.frozen
class Tree:
    """The geography tree as read by one actor.

    :ivar parents: ``{id: parent id or None}``.
    :ivar names: ``{id: name}``.
    """

    parents: Mapping[int, int | None]
    names: Mapping[int, str] = attrs.field(factory=dict)

    @property
    def children(self) -> dict[int | None, list[int]]:
        kids: dict[int | None, list[int]] = {}
        for node, parent in sorted(self.parents.items()):
            kids.setdefault(parent if parent in self.parents else None, []).append(node)
        return kids

    def subtree(self, node: int) -> set[int]:
        """*node* and every node below it."""
        kids = self.children
        found, todo = {node}, [node]
        while todo:
            for child in kids.get(todo.pop(), ()):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def ancestors(self, node: int) -> list[int]:
        """*node*, its parent, and so on up to the root."""
        chain: list[int] = []
        current: int | None = node
        while current is not None and current in self.parents and current not in chain:
            chain.append(current)
            current = self.parents[current]
        return chain

    def roll_up(self, values: Mapping[int | None, Any], zero: Any) -> dict[int | None, Any]:
        """The total of each node: its own value plus its children's totals (a value placed
        in no node, or in one outside the tree, counts nowhere)."""
        kids = self.children
        order: list[int] = []  # parents before their children
        todo = list(kids.get(None, ()))
        while todo:
            node = todo.pop()
            order.append(node)
            todo.extend(kids.get(node, ()))
        totals: dict[int | None, Any] = {}
        for node in reversed(order):  # children before their parents
            result = values.get(node, zero)
            for child in kids.get(node, ()):
                result = result + totals[child]
            totals[node] = result
        return totals

    def __repr__(self) -> str:
        return f"<Tree nodes={len(self.parents)}>"


def read_tree(uow: UnitOfWork) -> Tree:
    """The geography tree the actor may read (one query)."""
    rows = uow.select("geography", fields=("id", "name", "parent_id")).all()
    return Tree({r["id"]: r["parent_id"] for r in rows}, {r["id"]: r["name"] for r in rows})


def check_parent(uow: UnitOfWork, items: Iterable[tuple[int, int | None]]) -> None:
    """Refuse to give a node a parent that is the node itself or lies below it.

    :param items: ``(node id, new parent id)`` pairs.
    :raises ValidationError: naming the node and the parent.
    """
    pairs = [(node, parent) for node, parent in items if parent is not None]
    if not pairs:
        return
    with uow.acting_as(Actor.system()):
        tree = read_tree(uow)
    for node, parent in pairs:
        if node in tree.ancestors(parent):
            raise ValidationError(
                {"parent_id": [f"geography {parent} lies below geography {node}; "
                               "choose a parent outside its subtree"]},
                entity="geography",
            )
