"""Retention: rules set, read back and removed; prune (dry run first); export as a generator of
NDJSON records; restore of what was pruned, exactly."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest

from runledger import Client, PrunedError, ValidationError


def ns(client: Client) -> Client:
    return client.in_namespace(f"ret-{secrets.token_hex(4)}")


def days_ago(n: float) -> str:
    t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=n)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def old_run(source_id: str, job: str, subject: str, age_days: float) -> dict:
    return {
        "sourceId": source_id,
        "job": job,
        "subject": subject,
        "status": "completed",
        "createdAt": days_ago(age_days),
        "startedAt": days_ago(age_days),
        "finishedAt": days_ago(age_days - 0.01),
        "output": {"n": source_id},
        "events": [{"type": "progress", "body": {"at": source_id}}],
    }


def test_retention_rules_read_back_refusals_store_nothing_and_a_rule_is_removed_by_leaving_it_out(client: Client) -> None:
    c = ns(client)
    assert c.get_retention() == {"rules": []}
    rules = c.set_retention([{"keepDays": 30}, {"job": "ci", "keepDays": 7, "keepLastPerSubject": 2}])["rules"]
    assert [{k: r.get(k) for k in ("job", "keepDays", "keepLastPerSubject")} for r in rules] == [
        {"job": None, "keepDays": 30, "keepLastPerSubject": 0},
        {"job": "ci", "keepDays": 7, "keepLastPerSubject": 2},
    ]
    assert all(isinstance(r["updatedAt"], str) for r in rules)
    assert c.get_retention()["rules"] == rules

    with pytest.raises(ValidationError, match="keepDays") as caught:
        c.set_retention([{"keepDays": -1}])
    assert "keepDays" in str(caught.value.details)
    with pytest.raises(ValidationError, match="rules must be a list"):
        c.set_retention({"keepDays": 1})  # type: ignore[arg-type]
    assert c.get_retention()["rules"] == rules  # nothing stored by the refusals

    # The rules read back can be passed back edited: here, without the default rule.
    kept = c.set_retention([r for r in c.get_retention()["rules"] if r.get("job") == "ci"])["rules"]
    assert [r["job"] for r in kept] == ["ci"]
    assert c.set_retention([]) == {"rules": []}


def test_prune_dry_run_export_prune_and_restore_exactly(client: Client) -> None:
    c = ns(client)
    c.import_runs(
        "history",
        [old_run("ci-1", "ci", "a", 10), old_run("ci-2", "ci", "a", 9), old_run("ci-3", "ci", "a", 8), old_run("keep-1", "keep", "b", 10)],
    )
    ids = {r["output"]["n"]: r["id"] for r in c.list_runs()}
    c.set_retention([{"keepDays": 30}, {"job": "ci", "keepDays": 1, "keepLastPerSubject": 1}])

    dry = c.prune(dry_run=True)
    assert dry["eligible"] == 2 and dry["more"] is False
    assert sorted(r["id"] for r in dry["runs"]) == sorted([ids["ci-1"], ids["ci-2"]])
    assert c.get_run(ids["ci-1"])["status"] == "completed"  # a dry run deletes nothing

    # The export: whole runs as NDJSON records, page after page as the generator is consumed.
    every_ci = list(c.export_runs(job="ci", page_size=1))
    assert sorted(r["run"]["id"] for r in every_ci) == sorted([ids["ci-1"], ids["ci-2"], ids["ci-3"]])
    archive = "".join(json.dumps(record) + "\n" for record in c.export_runs(prunable=True))
    records = [json.loads(line) for line in archive.splitlines()]
    assert sorted(r["run"]["id"] for r in records) == sorted([ids["ci-1"], ids["ci-2"]])
    record = next(r for r in records if r["run"]["id"] == ids["ci-1"])
    assert record["run"]["output"] == {"n": "ci-1"}
    stored = [{k: v for k, v in e.items() if k != "runId"} for e in c.run(ids["ci-1"]).iter_events()]
    assert record["events"] == stored and "progress" in [e["type"] for e in stored]
    assert record["checkpoints"] == []
    page = c.export_runs_page(job="ci", limit=2)
    assert len(page["runs"]) == 2 and page["nextAfter"] is not None
    assert len(c.export_runs_page(job="ci", after=page["nextAfter"], limit=2)["runs"]) == 1
    with pytest.raises(ValidationError, match="after must be the nextAfter"):
        c.export_runs_page(after="garbage")

    pruned = c.prune()
    assert (pruned["pruned"], pruned["events"], pruned["more"]) == (2, sum(len(r["events"]) for r in records), False)
    with pytest.raises(PrunedError) as gone:
        c.get_run(ids["ci-1"])
    assert gone.value.tombstone["lastHash"] == record["run"]["lastHash"]
    assert c.get_run(ids["ci-3"])["status"] == "completed"  # the newest of the subject is kept
    assert c.get_run(ids["keep-1"])["status"] == "completed"  # the default rule keeps 30 days

    restored = c.restore_runs(records)
    assert (restored["restored"], restored["duplicates"], restored["invalid"]) == (2, 0, 0)
    back = c.get_run(ids["ci-1"])
    assert {k: back[k] for k in ("output", "finishedAt", "lastSeq", "status")} == {
        k: record["run"][k] for k in ("output", "finishedAt", "lastSeq", "status")
    }
    assert [{k: v for k, v in e.items() if k != "runId"} for e in c.run(ids["ci-1"]).iter_events()] == record["events"]
    assert c.verify(ids["ci-1"])["ok"] is True
    assert c.restore_runs(records)["duplicates"] == 2  # restoring twice changes nothing
