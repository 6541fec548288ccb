"""The hooks the scheduling plugin offers to other plugins, added from its
``crm_add_hookspecs``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmcore.hookspecs import hookspec

__all__ = ["scheduling_solvers"]


@hookspec
def scheduling_solvers() -> dict[str, Callable[[Any], Any]] | None:
    """Offer solvers that place demand on resources.

    Called each time a proposal is asked for (``crm schedule propose --solver NAME``); all
    implementations are called and their answers merged (the built-in ``greedy`` is always
    there).

    :returns: ``{name: solver}``, where a solver takes a
        :class:`crm_scheduling.solver.Problem` and returns a
        :class:`crm_scheduling.solver.Proposal` (writing nothing), or ``None``.

    Example::

        @hookimpl
        def scheduling_solvers():
            return {"nearest": my_nearest_first_solver}

    .. versionadded:: 0.1
    """
