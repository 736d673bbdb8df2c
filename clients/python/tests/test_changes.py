"""The change feed: changes() pages after a cursor; watch() follows it over SSE, each change
once, resumed across a server restart, with a cursor a caller can persist."""

from __future__ import annotations

import queue
import secrets
import threading
import time
from typing import Any, List, Optional

import pytest

from runledger import Client, ServerUnreachableError, ValidationError, Watcher
from support import Server, free_port


def ns(client: Client) -> Client:
    """The shared server, in a namespace of the test's own: its feed holds only this test's changes."""
    return client.in_namespace(f"feed-{secrets.token_hex(4)}")


def finish(client: Client, job: str, subject: Optional[str] = None, fail: bool = False) -> str:
    run = client.start_run(job, subject)
    if fail:
        run.fail("broken")
    else:
        run.complete({"ok": True})
    return run.id


class Consumer:
    """Iterates a watcher on a thread, handing each change to a queue (None when it ends)."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.got: "queue.Queue[Any]" = queue.Queue()
        self.errors: List[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for change in self.watcher:
                self.got.put(change)
        except BaseException as err:  # noqa: BLE001
            self.errors.append(err)
        finally:
            self.got.put(None)

    def take(self, n: int, timeout: float = 60) -> List[Any]:
        out = [self.got.get(timeout=timeout) for _ in range(n)]
        assert None not in out, (out, self.errors)
        return out


def pos(cursor: Optional[str]) -> Any:
    xid, _, change = (cursor or "0-0").partition("-")
    return (int(xid), int(change or 0))


def wait_until(check: Any, what: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_changes_pages_after_a_cursor_with_filters(client: Client) -> None:
    c = ns(client)
    empty = c.changes()
    assert empty["changes"] == [] and isinstance(empty["nextAfter"], str) and empty["heldBack"] is False

    first = finish(c, "nightly", "acme")
    second = finish(c, "other", "beta", fail=True)
    page = c.changes()
    assert [(ch["type"], ch["runId"]) for ch in page["changes"]] == [
        ("run.finished", first),
        ("subject.changed", first),
        ("run.finished", second),
        ("subject.changed", second),
    ]
    change = page["changes"][0]
    assert change["namespace"] == c.namespace and change["job"] == "nightly" and change["subject"] == "acme"
    assert change["data"]["run"]["status"] == "completed"
    assert page["changes"][3]["data"] == {"job": "other", "subject": "beta", "previousStatus": None, "status": "failed", "runId": second}

    # Resuming after nextAfter reads nothing twice; after a change's cursor, what follows it.
    assert c.changes(after=page["nextAfter"])["changes"] == []
    assert [ch["id"] for ch in c.changes(after=change["cursor"])["changes"]] == [ch["id"] for ch in page["changes"][1:]]
    assert [ch["runId"] for ch in c.changes(types=["run.finished"], job="other")["changes"]] == [second]
    assert len(c.changes(limit=1)["changes"]) == 1
    assert c.changes(after="now")["changes"] == []

    # A filtered read moves past what it left out: nothing of "nightly" is read again.
    filtered = c.changes(job="nightly")
    assert [ch["job"] for ch in filtered["changes"]] == ["nightly", "nightly"]
    assert c.changes(after=filtered["nextAfter"])["changes"] == []  # past "other"'s changes too


def test_bad_change_queries_are_refused_naming_the_field(client: Client) -> None:
    with pytest.raises(ValidationError, match=r"after must be a change cursor .* got 'yesterday'") as caught:
        client.changes(after="yesterday")
    assert caught.value.details[0]["field"] == "after"
    with pytest.raises(ValidationError, match="types must be a non-empty list of run.finished") as bad_type:
        client.changes(types=["run.done"])
    assert bad_type.value.details[0]["field"] == "types"
    with pytest.raises(ValidationError, match="after must be a change cursor"):
        client.watch(after="12")
    with pytest.raises(ValidationError, match="limit"):
        client.changes(limit=5000)  # the server's refusal, with its message


def test_watch_now_yields_what_happens_after_the_call_even_before_the_first_next(client: Client) -> None:
    c = ns(client)
    finish(c, "before")
    with c.watch(after="now") as watcher:
        start = watcher.cursor
        assert start is not None and start != "now"  # a real position, to persist or resume from
        run_id = finish(c, "after")  # before any connection is open
        consumer = Consumer(watcher)
        got = consumer.take(1)
        assert (got[0]["type"], got[0]["runId"]) == ("run.finished", run_id)
        # At the change, or past it once an id-only message followed: resuming there re-reads nothing.
        assert pos(watcher.cursor) >= pos(got[0]["cursor"])
        assert c.changes(after=watcher.cursor)["changes"] == []
        # close() from another thread ends the iteration.
        watcher.close()
        consumer.thread.join(30)
        assert not consumer.thread.is_alive() and not consumer.errors
    # From the start ("0") replays the whole feed in order.
    replay = c.watch(after="0", types=["run.finished"])
    assert [next(replay)["job"], next(replay)["job"]] == ["before", "after"]
    replay.close()
    with pytest.raises(StopIteration):
        next(replay)


def test_a_message_with_only_an_id_moves_the_cursor_past_filtered_changes(client: Client) -> None:
    c = ns(client)
    watcher = c.watch(job="wanted")
    start = watcher.cursor
    consumer = Consumer(watcher)
    finish(c, "unwanted")
    skipped = c.changes(after=start)["changes"][-1]["cursor"]
    # The watcher yields nothing, but the stream's id-only message moves its cursor past them
    # (to the feed's frontier, which on PostgreSQL other transactions move on too).
    wait_until(lambda: pos(watcher.cursor) >= pos(skipped), "the cursor to move past the filtered changes")
    assert consumer.got.empty()

    wanted = finish(c, "wanted", "s1")
    got = consumer.take(2)
    assert [(ch["type"], ch["runId"]) for ch in got] == [("run.finished", wanted), ("subject.changed", wanted)]
    watcher.close()
    consumer.thread.join(30)

    # Resuming from the persisted cursor yields only what came after it.
    later = finish(c, "wanted")
    with c.watch(after=got[-1]["cursor"], job="wanted") as resumed:
        assert next(resumed)["runId"] == later


def test_watch_resumes_across_a_server_restart_with_each_change_once(own_server: Server) -> None:
    own_server.start()
    client = Client(own_server.url)
    before = [finish(client, "restarted", f"s{i}") for i in range(2)]
    watcher = Client(own_server.url).watch(after="0", types=["run.finished"])
    consumer = Consumer(watcher)
    got = consumer.take(2)
    assert [ch["runId"] for ch in got] == before

    own_server.restart()  # the stream is cut; the server comes back on the same port and store
    after = [finish(client, "restarted", f"t{i}") for i in range(3)]
    rest = consumer.take(3, timeout=120)
    assert not consumer.errors, consumer.errors
    assert [ch["runId"] for ch in rest] == after
    ids = [ch["id"] for ch in got + rest]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert pos(watcher.cursor) >= pos(rest[-1]["cursor"])
    assert consumer.got.empty()  # nothing yielded twice
    watcher.close()
    consumer.thread.join(30)
    assert not consumer.thread.is_alive()
    client.close()


def test_a_watch_of_a_server_that_cannot_be_reached_is_a_clear_error() -> None:
    port = free_port()
    watcher = Client(f"http://127.0.0.1:{port}", retries=2).watch(after="0")
    with pytest.raises(ServerUnreachableError, match=f"cannot reach runledger server at http://127.0.0.1:{port} for the change stream") as caught:
        next(watcher)
    assert "after='0'" in str(caught.value)  # where to resume
    with pytest.raises(ServerUnreachableError):  # "now" is resolved by a call, which fails as calls do
        Client(f"http://127.0.0.1:{port}", retries=0).watch()
