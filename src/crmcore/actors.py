"""Actors: who acts in a unit of work."""

from __future__ import annotations

import attrs

__all__ = ["Actor"]


@attrs.frozen
class Actor:
    """Who performs the work of a unit of work.

    :ivar user_id: the acting user's id; ``None`` for the system actor.
    :ivar username: the user's name, or ``"system"``.
    :ivar is_system: the system actor (jobs, migrations, the demo) bypasses permissions; it is
        only ever created explicitly, through :meth:`system`.
    """

    user_id: int | None
    username: str
    is_system: bool = False

    @classmethod
    def system(cls) -> Actor:
        """The system actor, for jobs, migrations and administration."""
        return cls(None, "system", is_system=True)

    def __repr__(self) -> str:
        return "<Actor system>" if self.is_system else f"<Actor {self.username} id={self.user_id}>"
