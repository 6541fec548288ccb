"""The tree of a parsed condition: immutable nodes, each printing back as condition text.

:mod:`crmcore.workflow.conditions` builds it, checks it and interprets it;
:mod:`crmcore.workflow.compiled` turns it into closures. Import the nodes from either.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Arithmetic", "Compare", "ListOf", "Literal", "Logical", "Name", "Negation", "Negative", "Node"]


@attrs.frozen
class Node:
    def names(self) -> list[str]:
        return []


@attrs.frozen
class Literal(Node):
    value: Any

    def __str__(self) -> str:
        if isinstance(self.value, str):
            return "'" + self.value.replace("'", "\\'") + "'"
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)


@attrs.frozen
class Name(Node):
    path: tuple[str, ...]

    def names(self) -> list[str]:
        return [".".join(self.path)]

    def __str__(self) -> str:
        return ".".join(self.path)


@attrs.frozen
class ListOf(Node):
    items: tuple[Node, ...]

    def names(self) -> list[str]:
        return [n for item in self.items for n in item.names()]

    def __str__(self) -> str:
        return "(" + ", ".join(str(i) for i in self.items) + ")"


@attrs.frozen
class Arithmetic(Node):
    op: str
    left: Node
    right: Node

    def names(self) -> list[str]:
        return [*self.left.names(), *self.right.names()]

    def __str__(self) -> str:
        return f"{_wrap(self.left)} {self.op} {_wrap(self.right)}"


@attrs.frozen
class _Unary(Node):
    """A node over one operand."""

    operand: Node

    def names(self) -> list[str]:
        return self.operand.names()


@attrs.frozen
class Negative(_Unary):
    def __str__(self) -> str:
        return f"-{_wrap(self.operand)}"


@attrs.frozen
class Compare(Node):
    op: str
    left: Node
    right: Node | None = None

    def names(self) -> list[str]:
        return [*self.left.names(), *(self.right.names() if self.right is not None else [])]

    def __str__(self) -> str:
        if self.right is None:
            return f"{self.left} {self.op}"
        return f"{self.left} {self.op} {self.right}"


@attrs.frozen
class Logical(Node):
    op: str  # "and" | "or"
    parts: tuple[Node, ...]

    def names(self) -> list[str]:
        return [n for part in self.parts for n in part.names()]

    def __str__(self) -> str:
        return f" {self.op} ".join(_wrap(p, logical=True) for p in self.parts)


@attrs.frozen
class Negation(_Unary):
    def __str__(self) -> str:
        return f"not ({self.operand})"


def _wrap(node: Node, *, logical: bool = False) -> str:
    if isinstance(node, (Arithmetic, Logical)) or (logical and isinstance(node, Logical)):
        return f"({node})"
    return str(node)
