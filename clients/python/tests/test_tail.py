"""tail(): events live over SSE until the terminal status event, resumed across a server restart."""

from __future__ import annotations

import queue
import threading
from typing import List

import pytest

from runledger import Client, NotFoundError
from runledger.types import Event
from support import Server


def test_tail_yields_every_event_in_order_and_ends_with_the_terminal_status(client: Client) -> None:
    run = client.start_run("tailed")
    seen: "queue.Queue[Event]" = queue.Queue()
    done = threading.Event()

    def follow() -> None:
        for event in client.tail(run.id):
            seen.put(event)
        done.set()

    threading.Thread(target=follow, daemon=True).start()
    assert seen.get(timeout=30)["seq"] == 1  # the start, already stored
    for i in range(3):
        run.event("progress", {"i": i})
        assert seen.get(timeout=30)["body"] == {"i": i}  # live, one by one
    run.complete({"ok": True})
    last = seen.get(timeout=30)
    assert last["type"] == "run.status" and last["body"]["status"] == "completed"
    assert done.wait(30), "tail did not end after the terminal status event"

    # A tail of a finished run replays it; after_seq resumes part-way.
    assert [e["seq"] for e in client.tail(run.id)] == [1, 2, 3, 4, 5]
    assert [e["seq"] for e in client.tail(run.id, after_seq=3)] == [4, 5]
    assert list(client.tail(run.id, after_seq=5)) == []


def test_tail_of_an_unknown_run_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError):
        next(iter(client.tail("no-such-run")))


def test_tail_resumes_across_a_server_restart_with_each_event_once(own_server: Server) -> None:
    own_server.start()
    client = Client(own_server.url)
    run = client.start_run("restarted", lease_s=600)
    run.events([{"type": "before", "body": i, "key": f"b{i}"} for i in range(3)])
    seen: "queue.Queue[Event]" = queue.Queue()
    errors: List[BaseException] = []

    def follow() -> None:
        try:
            for event in Client(own_server.url).tail(run.id):
                seen.put(event)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)
        finally:
            seen.put(None)  # type: ignore[arg-type]

    threading.Thread(target=follow, daemon=True).start()
    got = [seen.get(timeout=30) for _ in range(4)]
    assert [e["seq"] for e in got] == [1, 2, 3, 4]

    own_server.restart()  # the stream is cut; the server comes back on the same port and store
    run.events([{"type": "after", "body": i, "key": f"a{i}"} for i in range(3)])
    run.complete()
    rest = []
    while True:
        event = seen.get(timeout=120)
        if event is None:
            break
        rest.append(event)
    assert not errors, errors
    assert [e["seq"] for e in rest] == [5, 6, 7, 8]
    assert [e["type"] for e in rest] == ["after", "after", "after", "run.status"]
    client.close()
