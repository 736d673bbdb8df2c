"""The ledger's guarantees, as far as the client reaches them, against a real `runledger serve`."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from typing import Any, Dict, Tuple

import pytest

from runledger import (
    Client,
    IdConflictError,
    InvalidTransitionError,
    KeyConflictError,
    LedgerError,
    NotFoundError,
    RunFinishedError,
    ValidationError,
    new_run_id,
)
from support import Server


def uid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"


def raw(server: Server, method: str, path: str, body: Any = None) -> Tuple[int, Dict[str, Any]]:
    """The same call made without the client, to compare with what the server says itself."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_create_is_idempotent_on_the_id_and_names_the_fields_that_differ(client: Client, server: Server) -> None:
    run_id = uid("create")
    first = client.start_run("agent-md", "acme/api", id=run_id, trigger="manual", params={"depth": 2}, notes="first")
    assert first.created is True
    assert first.run["status"] == "running"
    again = client.start_run("agent-md", "acme/api", id=run_id, trigger="manual", params={"depth": 2}, notes="first")
    assert again.created is False
    assert again.run["id"] == run_id
    assert again.run["createdAt"] == first.run["createdAt"]

    with pytest.raises(IdConflictError) as caught:
        client.start_run("agent-md", "acme/web", id=run_id, trigger="manual", params={"depth": 3})
    err = caught.value
    assert err.code == "id_conflict"
    assert err.status == 409
    assert sorted(err.fields) == ["params", "subject"]
    # The message is the server's own, word for word.
    status, problem = raw(server, "POST", "/v1/runs", {"id": run_id, "job": "agent-md", "subject": "acme/web", "trigger": "manual", "params": {"depth": 3}})
    assert status == 409
    assert err.message == problem["detail"]
    assert err.details == problem["errors"]


def test_ids_are_generated_client_side_as_time_ordered_uuidv7(client: Client) -> None:
    ids = [new_run_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" and i[19] in "89ab" for i in ids)
    run = client.start_run("uuid-check")
    assert run.id[14] == "7"
    assert client.get_run(run.id)["id"] == run.id


def test_transitions_follow_the_table_and_a_terminal_status_is_final(client: Client, server: Server) -> None:
    submitted = client.start_run("transitions", id=uid("sub"), status="submitted")
    assert submitted.run["status"] == "submitted"
    with pytest.raises(InvalidTransitionError) as caught:
        submitted.complete({"n": 1})
    status, problem = raw(server, "POST", f"/v1/runs/{submitted.id}/complete?namespace=default", {"output": {"n": 1}})
    assert (status, problem["code"]) == (409, "invalid_transition")
    assert caught.value.message == problem["detail"]
    assert submitted.start()["status"] == "running"

    done = submitted.complete({"n": 1}, statistics={"rows": 10})
    assert done["status"] == "completed"
    assert done["output"] == {"n": 1}
    # The same terminal call again succeeds and changes nothing; another payload is refused.
    assert submitted.complete({"n": 1}, statistics={"rows": 10})["version"] == done["version"]
    with pytest.raises(RunFinishedError) as finished:
        submitted.complete({"n": 2})
    assert finished.value.code == "run_finished"
    with pytest.raises(RunFinishedError):
        submitted.fail("too late")

    failed = client.start_run("transitions")
    run = failed.fail({"type": "remote_error", "message": "no answer", "details": {"attempts": 3}})
    assert run["status"] == "failed"
    assert run["error"] == {"type": "remote_error", "message": "no answer", "details": {"attempts": 3}}

    cancelled = client.start_run("transitions")
    assert cancelled.cancel("operator asked")["status"] == "cancelled"

    retried = client.start_run("transitions")
    assert retried.retry("flaky")["status"] == "retrying"
    again = retried.start()
    assert (again["status"], again["attempt"]) == ("running", 2)


def test_events_keys_make_appends_idempotent_and_seq_has_no_gaps(client: Client) -> None:
    run = client.start_run("events")
    first = run.event("progress", {"done": 1}, key="p1")
    assert first == {"seq": 2, "key": "p1", "duplicate": False}  # seq 1 is the run.status event of the start
    repeat = run.event("progress", {"done": 1}, key="p1")
    assert repeat == {"seq": 2, "key": "p1", "duplicate": True}
    with pytest.raises(KeyConflictError) as caught:
        run.event("progress", {"done": 99}, key="p1")
    assert caught.value.code == "key_conflict"

    results = run.events([{"type": "log", "body": f"line {i}", "level": "info"} for i in range(5)])
    assert [r["seq"] for r in results] == [3, 4, 5, 6, 7]
    events = list(run.iter_events(page_size=2))
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert events[1]["body"] == {"done": 1}
    assert events[3]["level"] == "info"
    assert client.verify(run.id)["ok"] is True


def test_bad_input_is_refused_with_the_servers_message_naming_the_field(client: Client, server: Server) -> None:
    with pytest.raises(ValidationError) as caught:
        client.start_run("", "acme")
    status, problem = raw(server, "POST", "/v1/runs", {"id": "x-1", "job": "", "subject": "acme"})
    assert status == 400
    assert caught.value.message == problem["detail"]
    assert caught.value.code == "validation_failed"
    assert "job" in caught.value.message
    with pytest.raises(ValidationError, match="leaseS"):
        client.start_run("bad-lease", lease_s=0)
    with pytest.raises(ValidationError, match="limit"):
        client.list_runs_page(limit=501)
    # NaN is not JSON: refused before anything is sent, naming the field.
    run = client.start_run("bad-json")
    with pytest.raises(ValidationError, match="body must be JSON"):
        run.event("x", {"v": float("nan")})
    assert run.get()["lastSeq"] == 1
    with pytest.raises(ValidationError, match="id must be 1–128"):
        client.run("")
    with pytest.raises(NotFoundError) as missing:
        client.get_run(uid("absent"))
    assert missing.value.code == "not_found" and missing.value.status == 404
    assert isinstance(missing.value, LedgerError)


def test_checkpoints_are_immutable_and_read_back_whole(client: Client) -> None:
    run = client.start_run("plan-execution", "plan-17")
    metadata = {"decisionId": "d-3", "diff_paths": ["src/a.py"], "diff_based": True, "ünïcode": "✓"}
    stored = run.checkpoint("pre_decision", metadata, kind="workspace_snapshot", ref="sandbox://plan-17", data={"files": 2})
    assert stored.created is True
    assert len(stored.checkpoint["contentHash"]) == 64
    same = run.checkpoint("pre_decision", metadata, kind="workspace_snapshot", ref="sandbox://plan-17", data={"files": 2})
    assert same.created is False
    assert same.checkpoint["contentHash"] == stored.checkpoint["contentHash"]
    with pytest.raises(KeyConflictError):
        run.checkpoint("pre_decision", {"decisionId": "d-3"}, kind="workspace_snapshot", ref="sandbox://plan-17")
    back = client.run(run.id).get_checkpoint("pre_decision")
    assert back["metadata"] == metadata
    assert back["data"] == {"files": 2}
    listed = run.list_checkpoints()
    assert [c["name"] for c in listed] == ["pre_decision"]
    assert "data" not in listed[0]
    assert client.verify(run.id)["ok"] is True


def test_json_reads_back_in_the_key_order_sent(client: Client) -> None:
    # Neither sorted nor jsonb's order (shorter keys first), nested in objects and arrays.
    shaped = {"zeta": 1, "alpha": {"omega": [{"yy": 1, "b": 2}], "beta": None}, "mid": [], "a": "x"}
    run = client.start_run("key-order", params=shaped, tags={"zone": "z", "app": "a"})
    run.event("ordered", shaped)
    run.checkpoint("cp", shaped, data=shaped)
    run.complete(shaped, statistics=shaped)
    back = client.get_run(run.id)
    for field in ("params", "output", "statistics"):
        assert json.dumps(back[field]) == json.dumps(shaped), field
    assert list(back["tags"]) == ["zone", "app"]
    body = next(e["body"] for e in run.list_events()["events"] if e["type"] == "ordered")
    assert json.dumps(body) == json.dumps(shaped)
    cp = run.get_checkpoint("cp")
    assert json.dumps(cp["metadata"]) == json.dumps(shaped)
    assert json.dumps(cp["data"]) == json.dumps(shaped)


def test_a_finish_without_notes_keeps_the_notes(client: Client) -> None:
    kept = client.start_run("extract", "Genesis", notes="Initial extraction run")
    assert kept.complete({"nouns": 150})["notes"] == "Initial extraction run"
    failed = client.start_run("extract", "Exodus", notes="second book")
    assert failed.fail("source missing")["notes"] == "second book"
    replaced = client.start_run("extract", "Leviticus", notes="old")
    assert replaced.complete(notes="new")["notes"] == "new"
    patched = client.start_run("extract", "Numbers", notes="n1")
    patched.update(tags={"team": "data"})
    assert patched.get()["notes"] == "n1"
    assert patched.get()["tags"] == {"team": "data"}


def test_external_ids_are_write_once_and_searchable(client: Client) -> None:
    parent = client.start_run("historical-collection", "instance-9")
    week = client.start_run("week-collection", "2026-W01", parent_id=parent.id)
    bare = client.start_run("week-collection", "2026-W02", parent_id=parent.id)
    exec_id = uid("amc-exec")
    assert week.set_external_ids({"amc.executionId": exec_id})["externalIds"] == {"amc.executionId": exec_id}
    week.set_external_ids({"amc.executionId": exec_id})  # the same value again: a no-op
    with pytest.raises(KeyConflictError) as caught:
        week.set_external_ids({"amc.executionId": "something-else"})
    assert caught.value.code == "key_conflict"
    assert week.get()["externalIds"] == {"amc.executionId": exec_id}

    assert [r["id"] for r in client.list_runs(external_id=("amc.executionId", exec_id))] == [week.id]
    assert [r["id"] for r in client.list_runs(parent_id=parent.id, missing_external_id="amc.executionId")] == [bare.id]


def test_list_runs_iterates_over_every_page_newest_first(client: Client) -> None:
    job = uid("paged")
    ids = [client.start_run(job, f"s{i}").id for i in range(5)]
    first = client.list_runs_page(job=job, limit=2)
    assert len(first["runs"]) == 2 and first["nextCursor"]
    assert [r["id"] for r in client.list_runs(job=job, limit=2)] == list(reversed(ids))
    client.run(ids[0]).complete()
    assert [r["id"] for r in client.list_runs(job=job, status=["completed"])] == [ids[0]]
    assert [r["id"] for r in client.list_runs(job=job, status=["running", "failed"], limit=500)] == list(reversed(ids[1:]))


def test_subjects_and_the_reaper(client: Client) -> None:
    subject = uid("acme/api")
    done = client.start_run("agent-md", subject)
    done.complete({"agentMd": "# A"})
    current = client.get_subject("agent-md", subject)
    assert (current["runId"], current["status"]) == (done.id, "completed")
    assert [r["id"] for r in current["recentRuns"]] == [done.id]
    assert client.list_subjects(job="agent-md", limit=500)["subjects"]

    import time

    orphan = client.start_run("agent-md", subject, lease_s=1)
    deadline = time.monotonic() + 30
    while client.get_run(orphan.id)["status"] == "running":
        assert time.monotonic() < deadline, "the reaper never timed the orphan out"
        time.sleep(0.5)
        client.reap()
    dead = client.get_run(orphan.id)
    assert dead["status"] == "timed_out"
    assert dead["error"]["type"] == "lease_expired"


def test_namespaces_are_isolated(client: Client) -> None:
    other = client.in_namespace(uid("team"))
    run = other.start_run("ns-job")
    assert other.get_run(run.id)["namespace"] == other.namespace
    with pytest.raises(NotFoundError):
        client.get_run(run.id)
    with pytest.raises(ValidationError, match="namespace"):
        client.in_namespace("no spaces")


def test_filters_by_tag_time_and_prefix(client: Client) -> None:
    import datetime as dt

    job = uid("filtered")
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    tagged = client.start_run(job, "acme/api", tags={"team": "data"})
    client.start_run(job, "acme/web", tags={"team": "web"})
    assert [r["id"] for r in client.list_runs(job=job, tag=("team", "data"))] == [tagged.id]
    assert len(list(client.list_runs(job=job, created_after=before))) == 2
    assert list(client.list_runs(job=job, created_before=before)) == []
    assert [r["subject"] for r in client.list_runs(job=job, q="acme/a")] == ["acme/api"]
    page = client.list_runs_page(job=job, with_total=True, limit=1)
    assert page["total"] == 2 and len(page["runs"]) == 1
    with pytest.raises(ValidationError, match="naive datetime"):
        client.list_runs(job=job, created_after=dt.datetime(2026, 1, 1))


def test_compare_and_set_and_batch_limits(client: Client) -> None:
    from runledger import VersionMismatchError

    run = client.start_run("cas-check")
    version = run.get()["version"]
    assert run.update(tags={"a": "1"}, if_version=version)["tags"] == {"a": "1"}
    with pytest.raises(VersionMismatchError) as caught:
        run.update(tags={"a": "2"}, if_version=version)
    assert caught.value.code == "version_mismatch"
    with pytest.raises(ValidationError, match="1–1000 events"):
        run.events([{"type": "x"}] * 1001)
    assert run.get()["lastSeq"] == 1  # nothing stored partially


def test_a_lease_passed_once_flags_the_run_suspect_and_a_heartbeat_clears_it(client: Client) -> None:
    import time

    run = client.start_run("suspect-check", lease_s=3)
    deadline = time.monotonic() + 30
    while not client.get_run(run.id)["suspect"]:
        assert time.monotonic() < deadline, "never flagged suspect"
        time.sleep(0.3)
        client.reap()
        if client.get_run(run.id)["status"] != "running":
            pytest.skip("the machine was too slow to see the suspect state before the timeout")
    assert run.heartbeat({"done": 1})["suspect"] is False
    assert client.get_run(run.id)["progress"] == {"done": 1}
