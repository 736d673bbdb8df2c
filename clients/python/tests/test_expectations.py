"""Expectations (set, list, remove), subject health and overdue subjects, exclusive starts."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from runledger import Client, RunActiveError, ValidationError


def ns(client: Client) -> Client:
    return client.in_namespace(f"exp-{secrets.token_hex(4)}")


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_expectations_read_back_exactly_bad_ones_are_refused_and_removal_reports_whether_there_was_one(client: Client) -> None:
    c = ns(client)
    exp = c.set_expectation("check", every="12h", grace="30m")
    assert {k: exp[k] for k in ("namespace", "job", "every", "cron", "timezone", "grace", "perSubject")} == {
        "namespace": c.namespace,
        "job": "check",
        "every": "12h",
        "cron": None,
        "timezone": "UTC",
        "grace": "30m",
        "perSubject": True,
    }
    assert c.list_expectations() == [exp]

    cron = c.set_expectation("weekly", cron="0 6 * * 1", timezone="Europe/Berlin", grace="2h", per_subject=False)
    assert (cron["cron"], cron["timezone"], cron["perSubject"], cron["every"]) == ("0 6 * * 1", "Europe/Berlin", False, None)

    with pytest.raises(ValidationError, match="Atlantis/Capital") as caught:
        c.set_expectation("x", cron="0 * * * *", timezone="Atlantis/Capital", grace="5m")
    assert caught.value.details[0]["field"] == "timezone"
    with pytest.raises(ValidationError, match="every"):
        c.set_expectation("x", every="-1h", grace="5m")
    with pytest.raises(ValidationError, match="job must be 1–200 characters"):
        c.set_expectation("", every="1h", grace="5m")
    assert [e["job"] for e in c.list_expectations()] == ["check", "weekly"]  # nothing stored by the refusals

    assert c.delete_expectation("weekly") is True
    assert c.delete_expectation("weekly") is False
    assert [e["job"] for e in c.list_expectations()] == ["check"]


def test_overdue_subjects_and_their_health(client: Client) -> None:
    c = ns(client)
    now = dt.datetime.now(dt.timezone.utc)
    started = now - dt.timedelta(days=2)
    # A subject last run two days ago (imported history), and one that ran just now.
    c.import_runs(
        "legacy",
        [
            {
                "sourceId": "late-1",
                "job": "check",
                "subject": "late",
                "status": "completed",
                "startedAt": iso(started),
                "finishedAt": iso(started + dt.timedelta(minutes=1)),
            }
        ],
    )
    fresh = c.start_run("check", "fresh")
    fresh.fail("red")
    c.set_expectation("check", every="12h", grace="30m")

    overdue = c.list_subjects(job="check", overdue=True)["subjects"]
    assert [s["subject"] for s in overdue] == ["late"]
    late = overdue[0]
    assert late["overdue"] is True
    assert late["nextDueAt"] == iso(started + dt.timedelta(hours=12))
    assert (late["consecutiveSuccesses"], late["consecutiveFailures"], late["lastFailureAt"]) == (1, 0, None)
    assert [s["subject"] for s in c.list_subjects(job="check", overdue=False)["subjects"]] == ["fresh"]
    due = c.list_subjects(job="check", due_before=now + dt.timedelta(hours=13))["subjects"]
    assert sorted(s["subject"] for s in due) == ["fresh", "late"]

    detail = c.get_subject("check", "fresh")
    assert (detail["overdue"], detail["status"], detail["consecutiveFailures"]) == (False, "failed", 1)
    assert [r["id"] for r in detail["recentRuns"]] == [fresh.id]

    with pytest.raises(ValidationError, match="dueBefore"):
        c.list_subjects(due_before="tomorrow")
    with pytest.raises(ValidationError, match="naive datetime"):
        c.list_subjects(due_before=dt.datetime(2026, 1, 1))


def test_an_exclusive_start_while_another_is_live_names_the_live_run(client: Client) -> None:
    c = ns(client)
    first = c.start_run("deploy", "prod", exclusive=True)
    with pytest.raises(RunActiveError) as caught:
        c.start_run("deploy", "prod", exclusive=True)
    assert (caught.value.code, caught.value.status) == ("run_active", 409)
    assert caught.value.active_run_id == first.id
    assert first.id in caught.value.message
    first.complete()
    assert c.start_run("deploy", "prod", exclusive=True).created is True
