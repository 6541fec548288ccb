"""Settings: [plugins.outbox] and [outbox.sinks.NAME]; a bad one stops start-up naming its key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from crmcore import ConfigError, hookimpl

from crm_outbox import SinkType
from crm_outbox.settings import outbox_settings
from crm_outbox.sinks import FileSink, HttpSink


def _app(crm_factory: Any, sinks: Any = None, plugins: tuple[Any, ...] = (), **table: Any) -> Any:
    settings: dict[str, Any] = {"plugins": {"outbox": table}} if table else {}
    if sinks is not None:
        settings["outbox"] = {"sinks": sinks}
    return crm_factory(plugins=["outbox", *plugins], settings=settings)


def test_sinks_are_built_from_their_tables(crm_factory: Any, tmp_path: Path) -> None:
    crm = _app(
        crm_factory,
        {
            "production": {
                "type": "file",
                "path": str(tmp_path),
                "fsync": True,
                "answers": str(tmp_path / "in"),
            },
            "erp": {
                "type": "http",
                "url": "https://erp.example.com/hook",
                "timeout": 2.5,
                "headers": {"Authorization": "Bearer x"},
            },
        },
        batch_size=50,
        max_attempts=3,
    )
    settings = outbox_settings(crm)
    assert (settings.batch_size, settings.max_attempts, settings.lease_seconds) == (50, 3, 300)
    production = settings.sinks["production"]
    assert isinstance(production, FileSink)
    assert (production.path, production.fsync, production.answers) == (
        tmp_path,
        True,
        tmp_path / "in",
    )
    erp = settings.sinks["erp"]
    assert isinstance(erp, HttpSink)
    assert (erp.url, erp.timeout, dict(erp.headers)) == (
        "https://erp.example.com/hook",
        2.5,
        {"Authorization": "Bearer x"},
    )


def test_the_retry_delay_doubles_up_to_its_cap(crm_factory: Any) -> None:
    settings = outbox_settings(_app(crm_factory, retry_delay=10, retry_delay_max=45))
    assert [settings.delay(n).total_seconds() for n in (1, 2, 3, 4, 100)] == [10, 20, 40, 45, 45]


@pytest.mark.parametrize(
    ("sinks", "key", "message"),
    [
        (
            {"p": {"type": "ftp"}},
            "outbox.sinks.p.type",
            "unknown sink type 'ftp'; choose among file, http",
        ),
        ({"p": {"path": "/x"}}, "outbox.sinks.p.type", "unknown sink type None"),
        ({"p": {"type": "file"}}, "outbox.sinks.p.path", "must be a non-empty text, got None"),
        (
            {"p": {"type": "file", "path": "/x", "fsync": "yes"}},
            "outbox.sinks.p.fsync",
            "must be true or false, got 'yes'",
        ),
        (
            {"p": {"type": "file", "path": "/x", "url": "http://x"}},
            "outbox.sinks.p.url",
            "unknown key 'url'; a file sink takes type, path, fsync, answers",
        ),
        (
            {"e": {"type": "http", "url": "ftp://x"}},
            "outbox.sinks.e.url",
            "must be an http:// or https:// address, got 'ftp://x'",
        ),
        (
            {"e": {"type": "http", "url": "http://x", "timeout": 0}},
            "outbox.sinks.e.timeout",
            "above 0 and at most 600, got 0",
        ),
        (
            {"e": {"type": "http", "url": "http://x", "headers": {"A": 1}}},
            "outbox.sinks.e.headers",
            "must be a table of texts",
        ),
        (
            {"e": {"type": "http", "url": "http://x", "batch_seconds": 7200}},
            "outbox.sinks.e.batch_seconds",
            "above 0 and at most 3600, got 7200",
        ),
        ({"e": "http://x"}, "outbox.sinks.e", "must be a table with a type, got 'http://x'"),
    ],
)
def test_a_bad_sink_stops_start_up_naming_its_key(
    crm_factory: Any, sinks: Any, key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        _app(crm_factory, sinks)
    assert caught.value.key == key
    assert key in str(caught.value)


def test_an_unknown_key_of_the_section_is_refused(crm_factory: Any) -> None:
    with pytest.raises(ConfigError, match="outbox.routes: unknown key 'routes'") as caught:
        crm_factory(plugins=["outbox"], settings={"outbox": {"routes": {}}})
    assert caught.value.key == "outbox.routes"


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"max_attempts": "many"}, "max_attempts"),
        ({"lease_seconds": -1}, "lease_seconds"),
        ({"retry_delay": 60, "retry_delay_max": 30}, "retry_delay_max"),
        ({"batch": 10}, "batch"),
    ],
)
def test_a_bad_plugin_setting_is_refused_naming_it(
    crm_factory: Any, table: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        _app(crm_factory, **table)


def test_a_sink_type_declared_twice_names_both_plugins(crm_factory: Any) -> None:
    class Twice:
        @hookimpl
        def outbox_sinks(self) -> list[Any]:
            return [SinkType("file", lambda name, options: None)]  # type: ignore[arg-type,return-value]

    with pytest.raises(
        ConfigError, match="sink type 'file' of plugin .* is also declared by 'outbox'"
    ):
        _app(crm_factory, plugins=(Twice(),))


def test_a_sink_type_may_refuse_its_settings_naming_the_key(crm_factory: Any) -> None:
    def build(name: str, options: Any) -> Any:
        raise ConfigError(f"outbox.sinks.{name}.queue is missing", key=f"outbox.sinks.{name}.queue")

    class Queue:
        @hookimpl
        def outbox_sinks(self) -> list[Any]:
            return [SinkType("queue", build)]

    with pytest.raises(ConfigError, match="outbox.sinks.jobs.queue is missing"):
        _app(crm_factory, {"jobs": {"type": "queue"}}, plugins=(Queue(),))


def test_settings_in_a_file_name_the_file_and_key(crm_factory: Any, tmp_path: Path) -> None:
    from crmcore import create_app

    path = tmp_path / "crm.toml"
    path.write_text(
        '[crm]\ndatabase = "sqlite://"\nplugins = ["outbox"]\n\n'
        '[outbox.sinks.erp]\ntype = "http"\nurl = "http://erp"\ntimeout = "soon"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="outbox.sinks.erp.timeout") as caught:
        create_app(str(path))
    assert caught.value.key == "outbox.sinks.erp.timeout"
