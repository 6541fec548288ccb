"""The three-way merge, without an app."""

from __future__ import annotations

from crm_calendar_sync.merge import merge

BASE = {"subject": "Review", "location": "Room 1", "starts_at": "2026-03-02T08:00:00Z", "ends_at": "2026-03-02T09:00:00Z",
        "timezone": "Europe/Paris", "attendees": [{"email": "bob@example.com"}]}


def test_each_side_brings_the_fields_it_changed() -> None:
    local = {**BASE, "location": "Room 4"}
    remote = {**BASE, "subject": "Weekly review"}
    outcome = merge(BASE, local, remote)
    assert outcome.conflicts == ()
    merged = outcome.values(local, remote)
    assert (merged["subject"], merged["location"]) == ("Weekly review", "Room 4")


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    both = {**BASE, "subject": "Weekly review"}
    assert merge(BASE, both, dict(both)).conflicts == ()


def test_times_move_together() -> None:
    local = {**BASE, "starts_at": "2026-03-02T10:00:00Z", "ends_at": "2026-03-02T11:00:00Z"}
    remote = {**BASE, "ends_at": "2026-03-02T09:30:00Z"}
    outcome = merge(BASE, local, remote)
    assert outcome.conflicts == ("time",)
    assert outcome.values(local, remote)["ends_at"] == "2026-03-02T11:00:00Z"  # the local time, whole


def test_different_changes_of_one_field_conflict_and_keep_the_local_value() -> None:
    local, remote = {**BASE, "subject": "Here"}, {**BASE, "subject": "There"}
    outcome = merge(BASE, local, remote)
    assert outcome.conflicts == ("subject",)
    assert outcome.values(local, remote)["subject"] == "Here"


def test_without_a_base_every_difference_conflicts() -> None:
    local, remote = {**BASE, "location": "A"}, {**BASE, "location": "B"}
    assert merge(None, local, remote).conflicts == ("location",)
    assert merge(None, BASE, dict(BASE)).conflicts == ()
