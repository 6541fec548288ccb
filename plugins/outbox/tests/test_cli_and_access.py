"""``crm outbox ...`` and who may see and touch requests: requests face other systems, so users
read them only with ``outbox.outbox_request.view``, retry them with ``...retry``, and never
write them themselves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore import PermissionDeniedError
from crmcore.cli import CliState, main
from outbox_support import items, post_items, requests

from crm_outbox import answer, deliver, retry, retry_failed

SECURITY: dict[str, Any] = {
    "no_role_profile": "standard",
    "profiles": {
        "operations": {
            "privileges": {
                "outbox_request": [
                    "read",
                    "outbox.outbox_request.view",
                    "outbox.outbox_request.retry",
                ]
            }
        },
        "watcher": {"privileges": {"outbox_request": ["read", "outbox.outbox_request.view"]}},
    },
    "roles": {"operations": {"profiles": ["operations"]}, "watcher": {"profiles": ["watcher"]}},
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)


def _settings(tmp_path: Path, *, sink: str = "file") -> dict[str, Any]:
    target = (
        {"type": "file", "path": str(tmp_path / "drop")}
        if sink == "file"
        else {"type": "http", "url": "http://127.0.0.1:9/", "timeout": 1}
    )
    return {
        "outbox": {"sinks": {"production": target}},
        "plugins": {"outbox": {"max_attempts": 1}},
        "security": SECURITY,
    }


def _write_config(tmp_path: Path, settings: dict[str, Any]) -> None:
    sink = settings["outbox"]["sinks"]["production"]
    lines = [
        "[crm]",
        'plugins = ["outbox"]',
        "",
        "[plugins.outbox]",
        "max_attempts = 1",
        "",
        "[outbox.sinks.production]",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in sink.items()]
    lines += ["", "[security]", 'no_role_profile = "standard"']
    for name, profile in SECURITY["profiles"].items():
        granted = json.dumps(profile["privileges"]["outbox_request"])
        lines += [
            f"[security.profiles.{name}]",
            f"privileges = {{ outbox_request = {granted} }}",
        ]
    lines += ["[security.roles]"]
    lines += [f'{name} = {{ profiles = ["{name}"] }}' for name in SECURITY["roles"]]
    (tmp_path / "crm.toml").write_text("\n".join(lines) + "\n")


@pytest.fixture
def setup(crm_factory: Any, make_user: Any, tmp_path: Path) -> tuple[str, Any, dict[str, Any]]:
    settings = _settings(tmp_path)
    url: str = crm_factory.database_url(file=True)
    crm = crm_factory(plugins=["outbox"], settings=settings, database=url)
    people = {
        "rep": make_user(crm, "rep"),
        "ops": make_user(crm, "ops", roles=["operations"]),
        "eve": make_user(crm, "eve", roles=["watcher"]),
    }
    _write_config(tmp_path, settings)
    return url, crm, people


def run(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(db: str, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


def test_a_user_without_privileges_posts_but_neither_sees_nor_writes_requests(setup: Any) -> None:
    _, crm, people = setup
    post_items(crm, items(1), actor=people["rep"])  # confirming an order hands it off
    with crm.unit_of_work(people["rep"]) as uow:
        assert uow.query("outbox_request").all() == []
        with pytest.raises(PermissionDeniedError):
            uow.create(
                "outbox_request",
                kind="x",
                sink="production",
                idempotency_key="k",
                source_entity="x",
                source_id=1,
            )
    with crm.unit_of_work(people["eve"]) as uow:
        [seen] = uow.query("outbox_request").all()
        assert seen.created_by is None  # written by the system on the rep's behalf
        with pytest.raises(PermissionDeniedError):
            uow.update(seen, last_error="tampered")
        with pytest.raises(PermissionDeniedError):
            retry(uow, [seen.id])
        with pytest.raises(PermissionDeniedError):
            answer(uow, seen.idempotency_key, "accepted")


def test_list_shows_requests_to_those_who_may_view_them(setup: Any) -> None:
    db, crm, people = setup
    post_items(crm, items(2))
    deliver(crm, limit=1)
    text = ok(db, "--as", "eve", "outbox", "list")
    assert "delivered  requested production   production       sales_order:1:production" in text
    assert "pending    requested" in text
    listed = json.loads(ok(db, "--as", "eve", "outbox", "list", "--state", "pending", "--json"))
    assert [r["idempotency_key"] for r in listed] == ["sales_order:2:production"]
    assert "outbox.outbox_request.view" in fails(db, "--as", "rep", "outbox", "list")


def test_retry_sends_failed_requests_again(setup: Any, tmp_path: Path) -> None:
    db, crm, people = setup
    post_items(crm, items(2))
    (tmp_path / "drop").write_text("a file where the folder should be")
    assert deliver(crm).failed == 2
    text = ok(db, "--as", "eve", "outbox", "list", "--state", "failed")
    assert "last error: sink 'production' raised FileExistsError" in text
    assert "outbox.outbox_request.retry" in fails(db, "--as", "eve", "outbox", "retry", "--failed")
    (tmp_path / "drop").unlink()
    assert ok(db, "--as", "ops", "outbox", "retry", "1").startswith("1 request queued again: 1")
    assert [(r.delivery, r.attempts) for r in requests(crm)] == [("pending", 0), ("failed", 1)]
    assert ok(db, "--as", "ops", "outbox", "retry", "--failed") == "1 request queued again: 2\n"
    assert ok(db, "--as", "ops", "outbox", "deliver").startswith("2 requests: 2 delivered")
    assert ok(db, "outbox", "retry", "--failed") == "no failed requests\n"
    assert "only failed or pending requests" in fails(db, "outbox", "retry", "1")
    assert "outbox request 99 not found" in fails(db, "outbox", "retry", "99")
    assert "give request ids or --failed" in run(db, "outbox", "retry").output


def test_answers_from_the_command_line(setup: Any, tmp_path: Path) -> None:
    db, crm, _ = setup
    post_items(crm, items(2))
    assert ok(db, "outbox", "answer", "sales_order:1:production", "accepted") == (
        "sales_order:1:production: accepted\n"
    )
    assert ok(db, "outbox", "answer", "sales_order:1:production", "accepted") == (
        "sales_order:1:production: already accepted\n"
    )
    path = tmp_path / "answers.json"
    path.write_text(json.dumps([{"key": "sales_order:2:production", "state": "cancelled"}]))
    assert ok(db, "outbox", "answers", str(path)) == "1 answers read, 1 requests changed state\n"
    assert "it cannot become requested" in fails(
        db, "outbox", "answer", "sales_order:2:production", "requested"
    )
    assert [r.supply_state for r in requests(crm)] == ["accepted", "cancelled"]
    assert "outbox.outbox_request.answer" in fails(
        db, "--as", "ops", "outbox", "answer", "sales_order:1:production", "fulfilled"
    )


def test_the_system_actor_may_do_everything(setup: Any) -> None:
    _, crm, _ = setup
    post_items(crm, items(1))
    with crm.unit_of_work() as uow:
        assert retry_failed(uow) == []
        assert len(uow.query("outbox_request").all()) == 1


def test_in_open_mode_every_user_may_view_and_retry(
    crm_factory: Any, make_user: Any, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    del settings["security"]
    crm = crm_factory(plugins=["outbox"], settings=settings)
    ann = make_user(crm, "ann")
    post_items(crm, items(1))
    with crm.unit_of_work(ann) as uow:
        [request] = uow.query("outbox_request").all()
        assert retry(uow, [request.id]) == [request.id]
        with pytest.raises(PermissionDeniedError):
            uow.update(request, last_error="tampered")  # written by the system only
