"""Running ``crm demo``: telling the story on an app (:func:`tell`) and on a fresh SQLite file
(:func:`run`), which a rerun replaces only if the demo made it.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import importlib.util
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from crmcore.app import Crm, create_app
from crmcore.demo.chapters import CHAPTERS
from crmcore.demo.story import (
    APPLICATION_ID,
    DEFAULT_PATH,
    Echo,
    Story,
    read_data,
)
from crmcore.demo.summary import summary
from crmcore.errors import ConfigError
from crmcore.settings import load_settings

__all__ = ["run", "tell"]


def tell(crm: Crm, *, echo: Echo = print, today: dt.date | None = None,
         chapters: Sequence[Callable[[Story], None]] = CHAPTERS) -> Story:
    """Tell the story on *crm*, whose schema exists and holds no records yet.

    :param today: the day the story is told (default: today); dates are placed around it.
    :returns: the :class:`Story`, with the records the chapters made.
    """
    story = Story(crm=crm, echo=echo, today=today or dt.date.today(), company=read_data("company.json"))
    for chapter in chapters:
        chapter(story)
    summary(story)
    return story


def _fresh_file(path: str) -> Path:
    """The demo's SQLite file, its old copy (made by ``crm demo``) removed."""
    if path.startswith("sqlite:///"):
        path = path[len("sqlite:///"):]
    elif "://" in path:
        raise ConfigError(f"crm demo runs on an SQLite file; give a path such as {DEFAULT_PATH!r}, not {path!r}")
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{str(file)!r} is a folder; give crm demo a file path such as {DEFAULT_PATH!r}")
    if file.exists() and file.stat().st_size > 0:
        if _application_id(file) != APPLICATION_ID:
            raise ConfigError(
                f"{str(file)!r} exists and was not made by crm demo; it was left alone. "
                "Remove it or give another path with --db"
            )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    file.parent.mkdir(parents=True, exist_ok=True)
    return file


def _application_id(file: Path) -> int | None:
    with open(file, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            return None
    try:
        connection = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            return int(connection.execute("PRAGMA application_id").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return None


def _create_schema(crm: Crm) -> None:
    if importlib.util.find_spec("crmcore.storage.migrations") is not None:
        crm.upgrade()
    else:
        crm.create_schema()
    with crm.engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")


def run(
    path: str = DEFAULT_PATH,
    *,
    settings: str | None = None,
    plugins: Sequence[str] = (),
    plugin_objects: Sequence[Any] = (),
    echo: Echo = print,
    today: dt.date | None = None,
) -> Story:
    """``crm demo``: (re)create *path* as an SQLite file and tell the story on it.

    :param settings: a settings file whose plugins, plugin settings and custom fields the demo
        uses (its database is replaced by *path*, and its ``[security]`` section is left out:
        the demo's company has roles and users of its own).
    :param plugins: names of further installed plugins to enable.
    :param plugin_objects: plugin objects to register (embedding, tests).
    :raises ConfigError: when *path* is not an SQLite file path, or exists and was not made by
        ``crm demo``.
    """
    base = load_settings(settings)
    base = attrs.evolve(base, sections={k: v for k, v in base.sections.items() if k != "security"})
    file = _fresh_file(path)
    url = f"sqlite:///{file}"
    merged = load_settings(base, database=url, plugins=[*base.plugins, *(p for p in plugins if p not in base.plugins)])
    with create_app(merged, plugins=plugin_objects) as crm:
        _create_schema(crm)
        echo(f"crm demo: a small company on {url}")
        echo("")
        story = tell(crm, echo=echo, today=today)
        echo("")
        echo(f"Explore it: crm --db {url} show account 1   (or: timeline account 1, forecast --period quarter, "
             "reminders --as sam, plugins list)")
    return story
