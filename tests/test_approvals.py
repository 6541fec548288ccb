"""Approvals: a rule holds a record's next move until a user with a role approves or rejects;
the Python API and ``crm approvals``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import PermissionDeniedError, TransitionError, ValidationError
from crmcore.cli import main
from crmcore.security.admin import add_user
from crmcore.workflow.approvals import approvals, approve, reject, request_approval

EVERYTHING = {"privileges": {"*": "all"}}
SECURITY = {
    "profiles": {"everything": EVERYTHING},
    "roles": {
        "vp": {"profiles": ["everything"]},
        "director": {"parent": "vp", "profiles": ["everything"]},
        "rep": {"parent": "director", "profiles": ["everything"]},
    },
}
RULE = {"name": "big_deal_sign_off", "entity": "opportunity", "on": "stage_entered:final_stage", "when": "amount > 100000",
        "then": [{"action": "require_approval", "role": "director", "message": "Sign off {name}"}]}
PATH = ("identification", "qualification", "rfp_received", "quotation_sent", "final_stage")


def settings(url: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"security": SECURITY, "rules": [RULE]}
    if url:
        data["crm"] = {"database": url}
    return data


def setup(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        add_user(uow, "chief", roles=["vp"])
        add_user(uow, "boss", roles=["director"])
        add_user(uow, "rep1", roles=["rep"])
        add_user(uow, "rep2", roles=["rep"])
        uow.commit()


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    app = crm_factory(settings=settings())
    setup(app)
    return app


def deal(crm: Any, amount: str = "150000") -> Any:
    with crm.unit_of_work("rep1") as uow:
        record = uow.create("opportunity", name="Deal", amount=amount, close_date="2030-01-01")
        for stage in PATH:
            record = uow.move(record, stage)
        uow.commit()
    return record


def try_move(crm: Any, record: Any, stage: str, actor: str = "rep1") -> Any:
    with crm.unit_of_work(actor) as uow:
        moved = uow.move("opportunity", record.id, stage)
        uow.commit()
    return moved


def test_entering_the_stage_opens_a_pending_approval_that_holds_every_move(crm: Any) -> None:
    record = deal(crm)

    with crm.unit_of_work() as uow:
        [approval] = approvals(uow)
    assert (approval.record_entity, approval.record_id, approval.role, approval.stage, approval.message) == (
        "opportunity", record.id, "director", "final_stage", "Sign off Deal")
    with pytest.raises(TransitionError) as info:
        try_move(crm, record, "won")
    assert str(info.value) == (
        f"opportunity {record.id} cannot move from 'final_stage' to 'won': approval {approval.id} by role 'director' is "
        f"pending (rule 'big_deal_sign_off'); a user with that role decides it with 'crm approvals approve {approval.id}' "
        f"or 'crm approvals reject {approval.id}'"
    )
    with pytest.raises(TransitionError, match="is pending"):
        try_move(crm, record, "lost")


def test_small_deals_need_no_approval(crm: Any) -> None:
    record = deal(crm, amount="1000")

    assert try_move(crm, record, "won").stage == "won"


def test_an_approval_lets_the_record_move_on_and_is_closed_by_the_move(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work("boss") as uow:
        [approval] = approvals(uow)
        decided = approve(uow, approval.id, "fine")
        uow.commit()
    assert (decided.status, decided.comment) == ("approved", "fine")

    assert try_move(crm, record, "won").stage == "won"
    with crm.unit_of_work() as uow:
        closed = uow.get("approval", approval.id)
    assert closed.closed_at is not None and closed.decided_at is not None


def test_a_role_above_the_named_one_may_decide(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work("chief") as uow:
        [approval] = approvals(uow)
        approve(uow, approval.id)
        uow.commit()

    assert try_move(crm, record, "won").stage == "won"


def test_a_rejection_blocks_moving_forward_but_not_back_or_to_lost(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work("boss") as uow:
        [approval] = approvals(uow)
        reject(uow, approval.id, "too risky")
        uow.commit()

    with pytest.raises(TransitionError, match=f"approval {approval.id} by role 'director' was rejected"):
        try_move(crm, record, "won")
    assert try_move(crm, record, "quotation_sent").stage == "quotation_sent"
    with crm.unit_of_work() as uow:
        assert uow.get("approval", approval.id).closed_at is not None


def test_moving_back_into_the_stage_asks_again(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work("boss") as uow:
        reject(uow, approvals(uow)[0].id)
        uow.commit()
    try_move(crm, record, "quotation_sent")
    try_move(crm, record, "final_stage")

    with crm.unit_of_work() as uow:
        assert [a.status for a in approvals(uow, status=None)] == ["rejected", "pending"]


def test_only_holders_of_the_role_or_above_decide(crm: Any) -> None:
    deal(crm)
    with crm.unit_of_work("rep2") as uow:
        assert approvals(uow) == []
        approval = approvals(uow, mine=False)[0]
        with pytest.raises(PermissionDeniedError, match="rep2 may not decide approval .* needs role 'director'"):
            approve(uow, approval.id)
    with crm.unit_of_work() as uow, pytest.raises(PermissionDeniedError, match="name the user"):
        approve(uow, approval.id)


def test_a_decided_approval_cannot_be_decided_again(crm: Any) -> None:
    deal(crm)
    with crm.unit_of_work("boss") as uow:
        approval = approvals(uow)[0]
        approve(uow, approval.id)
        uow.commit()
    with crm.unit_of_work("boss") as uow, pytest.raises(ValidationError, match="already approved"):
        reject(uow, approval.id)


def test_users_cannot_write_approvals_directly(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work("rep1") as uow:
        approval = approvals(uow, mine=False)[0]
        with pytest.raises(PermissionDeniedError, match="read-only"):
            uow.update("approval", approval.id, status="approved")
        with pytest.raises(PermissionDeniedError, match="read-only"):
            uow.create("approval", record_entity="opportunity", record_id=record.id, role="vp")


def test_asking_twice_keeps_one_open_approval(crm: Any) -> None:
    record = deal(crm)
    with crm.unit_of_work() as uow:
        first = approvals(uow)[0]
        again = request_approval(uow, uow.get("opportunity", record.id), "director", rule="big_deal_sign_off")
        uow.commit()

    assert again.id == first.id


def test_the_decision_shows_in_the_approvals_history(crm: Any) -> None:
    deal(crm)
    with crm.unit_of_work("boss") as uow:
        approval = approvals(uow)[0]
        approve(uow, approval.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        history = uow.history("approval", approval.id)

    assert [e.action for e in history] == ["created", "updated"]
    assert history[1].changes["status"] == ("pending", "approved")


# -- crm approvals ---------------------------------------------------------------------------------


@pytest.fixture
def cli_db(crm_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = crm_factory.database_url(file=True)
    setup(crm_factory(settings=settings(), database=url))
    rules = "\n".join(f"{k} = {_toml(v)}" for k, v in RULE.items())
    (tmp_path / "crm.toml").write_text(
        f'[crm]\ndatabase = "{url}"\n\n[security.profiles.everything]\nprivileges = {{ "*" = "all" }}\n\n'
        '[security.roles]\nvp = { profiles = ["everything"] }\ndirector = { parent = "vp", profiles = ["everything"] }\n'
        'rep = { parent = "director", profiles = ["everything"] }\n\n'
        f"[[rules]]\n{rules}\n"
    )
    monkeypatch.chdir(tmp_path)
    return url


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return str(value)


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_crm_approvals_list_approve_and_reject(cli_db: str) -> None:
    assert run("--as", "rep1", "create", "opportunity", "name=Big", "amount=200000", "close_date=2030-01-01").exit_code == 0
    for stage in PATH:
        assert run("--as", "rep1", "update", "opportunity", "1", f"stage={stage}").exit_code == 0

    listed = run("approvals", "--as", "boss", "list")
    assert listed.exit_code == 0, listed.output
    assert "opportunity 1" in listed.stdout and "director" in listed.stdout and "pending" in listed.stdout
    assert "no pending approvals for rep1" in run("approvals", "--as", "rep1").stdout

    blocked = run("--as", "rep1", "update", "opportunity", "1", "stage=won")
    assert blocked.exit_code == 1 and "approval 1 by role 'director' is pending" in blocked.stderr

    refused = run("approvals", "--as", "rep1", "approve", "1")
    assert refused.exit_code == 1 and "rep1 may not decide approval 1" in refused.stderr
    approved = run("approvals", "--as", "boss", "approve", "1", "--comment", "ok")
    assert approved.exit_code == 0 and "approval 1 approved: opportunity 1 may move on" in approved.stdout
    assert run("--as", "rep1", "update", "opportunity", "1", "stage=won").exit_code == 0

    shown = run("approvals", "list", "--all", "--json")
    assert '"status": "approved"' in shown.stdout


def test_crm_approvals_reject(cli_db: str) -> None:
    run("--as", "rep1", "create", "opportunity", "name=Big", "amount=200000", "close_date=2030-01-01")
    for stage in PATH:
        run("--as", "rep1", "update", "opportunity", "1", f"stage={stage}")

    rejected = run("approvals", "--as", "boss", "reject", "1")
    assert rejected.exit_code == 0 and "approval 1 rejected" in rejected.stdout
    blocked = run("--as", "rep1", "update", "opportunity", "1", "stage=won")
    assert blocked.exit_code == 1 and "was rejected" in blocked.stderr
