"""``crm rules check``, ``crm rules list`` and ``crm rules simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import create_app
from crmcore.security.admin import add_user
from crmcore.testing import run_crm

SECURITY = """
[security.profiles.everything]
privileges = { "*" = "all" }

[security.roles]
vp = { profiles = ["everything"] }
director = { parent = "vp", profiles = ["everything"] }
manager = { parent = "director", profiles = ["everything"] }
rep = { parent = "manager", profiles = ["everything"] }
"""


@pytest.fixture
def db(crm_factory: Any, crm_workdir: Path) -> str:
    url: str = crm_factory.database_url(file=True)
    write(crm_workdir, url)
    crm = create_app(str(crm_workdir / "crm.toml"))
    try:
        crm.create_schema()
        with crm.unit_of_work() as uow:
            add_user(uow, "boss", roles=["director"])
            add_user(uow, "rep1", roles=["rep"])
            uow.commit()
    finally:
        crm.close()
    return url


def write(crm_workdir: Path, url: str, rules: str = "") -> None:
    (crm_workdir / "crm.toml").write_text(f'[crm]\ndatabase = "{url}"\n{SECURITY}\n{rules}')


def test_rules_check_lists_what_it_checked(db: str) -> None:
    result = run_crm("rules", "check")

    assert result.exit_code == 0, result.output
    assert "2 pipeline(s) checked: lead, sales" in result.stdout
    assert "1 rule(s) checked: guided_selling_review" in result.stdout
    assert result.stdout.rstrip().endswith("ok")


def test_rules_check_names_the_rule_and_the_unknown_field(crm_workdir: Path, db: str) -> None:
    write(crm_workdir, db, '[[rules]]\nname = "big"\nentity = "opportunity"\non = "created"\nwhen = "amout > 5"\n'
                       'then = [{ action = "add_tag", tag = "big" }]\n')

    result = run_crm("rules", "check")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: crm.toml: rule 'big' when: unknown field 'amout': opportunity has no field 'amout'")


@pytest.mark.parametrize(("rule", "message"), [
    ('on = "stage_entered:rfp"\nthen = [{ action = "add_tag", tag = "x" }]', "unknown stage 'rfp'"),
    ('on = "created"\nthen = [{ action = "fax" }]', "unknown action 'fax'"),
])
def test_rules_check_names_unknown_stages_and_actions(crm_workdir: Path, db: str, rule: str, message: str) -> None:
    write(crm_workdir, db, f'[[rules]]\nname = "r"\nentity = "opportunity"\n{rule}\n')

    result = run_crm("rules", "check")

    assert result.exit_code == 1 and "rule 'r'" in result.stderr and message in result.stderr


def test_rules_check_names_roles_the_database_lacks(crm_workdir: Path, db: str) -> None:
    write(crm_workdir, db, '[[rules]]\nname = "ask"\nentity = "opportunity"\non = "created"\n'
                       'then = [{ action = "notify", message = "m", to = ["role:auditor"] }]\n')

    result = run_crm("rules", "check")

    assert result.exit_code == 1
    assert "error: rule 'ask' then[0] (notify): no role named 'auditor' in the database" in result.stderr


def test_rules_list_shows_each_rule_and_its_origin(db: str) -> None:
    result = run_crm("rules", "list")

    assert result.exit_code == 0
    assert "guided_selling_review [core.rules]" in result.stdout
    assert "opportunity on stage_entered:rfp_received when amount > 50000 then create_activity, schedule_reminder" in result.stdout
    [row] = json.loads(run_crm("rules", "list", "--json").stdout)
    assert row["then"][0]["action"] == "create_activity" and row["enabled"] is True


def counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            return {n: connection.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one() for n in names}
    finally:
        engine.dispose()


def test_rules_simulate_prints_what_would_happen_and_writes_nothing(db: str) -> None:
    before = counts(db)

    result = run_crm("--as", "rep1", "rules", "simulate", "opportunity", "name=Big", "amount=60000", "--stage", "rfp_received")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "rule guided_selling_review fires on stage_entered:rfp_received: amount > 50000 (amount = 60000.00 USD)"
    assert lines[1].startswith("  - create_activity: create meeting 'Review with senior manager', due in 2 day(s)")
    assert lines[1].endswith("assigned to rep1 (owner), participants: boss (owner_manager)")
    assert lines[2].startswith("  - schedule_reminder: remind rep1 (owner) at ")
    assert lines[-1] == "(simulation: nothing was written)"
    assert counts(db) == before


def test_rules_simulate_says_when_nothing_fires(db: str) -> None:
    result = run_crm("rules", "simulate", "opportunity", "amount=100", "--stage", "rfp_received", "--all")

    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == "no rule fires on stage_entered:rfp_received for this opportunity"
    assert "rule guided_selling_review does not fire on stage_entered:rfp_received: amount > 50000 (amount = 100.00 USD)" in result.stdout


def test_rules_simulate_json(db: str) -> None:
    result = run_crm("rules", "simulate", "opportunity", "amount=70000", "--event", "stage_entered:rfp_received",
                 "--stage", "rfp_received", "--json")

    [firing] = json.loads(result.stdout)
    assert firing["rule"] == "guided_selling_review" and firing["fires"] is True
    assert [a["action"] for a in firing["actions"]] == ["create_activity", "schedule_reminder"]


def test_rules_simulate_refuses_bad_values_in_one_line(db: str) -> None:
    result = run_crm("rules", "simulate", "opportunity", "amount=lots")

    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: ") and "amount" in result.stderr
