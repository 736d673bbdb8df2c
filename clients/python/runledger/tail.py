"""tail(): a run's events over Server-Sent Events, as a generator, until the terminal
status event. A dropped connection (a server restart) is resumed with ``Last-Event-ID``,
so each event is yielded once and in seq order.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from typing import Any, Iterator, List, Optional

from ._http import Transport, path_with_query
from .errors import HttpError, ServerUnreachableError, error_from_problem
from .types import TERMINAL_STATUSES, Event

__all__ = ["tail_run"]

# The server sends a comment every 15 s on an idle stream; three missed means the connection is dead.
_READ_TIMEOUT_S = 45.0
_MAX_ATTEMPTS = 50


def _messages(res: http.client.HTTPResponse) -> Iterator[str]:
    """The ``data`` of each SSE message (comments, ``id:`` and ``retry:`` lines skipped)."""
    data: List[str] = []
    while True:
        raw = res.readline()
        if not raw:
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)


def _is_terminal(event: Event) -> bool:
    body: Any = event.get("body")
    return event.get("type") == "run.status" and isinstance(body, dict) and body.get("status") in TERMINAL_STATUSES


def tail_run(t: Transport, namespace: str, run_id: str, after_seq: int = 0) -> Iterator[Event]:
    last = after_seq
    path = f"/v1/runs/{urllib.parse.quote(run_id, safe='')}"
    attempt = 0
    while True:
        conn: Optional[http.client.HTTPConnection] = None
        try:
            conn = t.connect(_READ_TIMEOUT_S)
            headers = t.headers({"accept": "text/event-stream", "last-event-id": str(last)})
            conn.request("GET", t.prefix + path_with_query(path + "/events/stream", {"namespace": namespace}), headers=headers)
            res = conn.getresponse()
            if res.status >= 400 and res.status not in (502, 503, 504):
                # Not found, unauthorized…: final.
                text = res.read()
                try:
                    problem = json.loads(text)
                except ValueError:
                    problem = None
                if isinstance(problem, dict):
                    raise error_from_problem(res.status, problem)
                raise HttpError(res.status, f"HTTP {res.status} from the event stream: {text[:200].decode('utf-8', 'replace')}")
            if res.status == 200:
                for data in _messages(res):
                    event: Event = json.loads(data)
                    if event["seq"] <= last:
                        continue
                    last = event["seq"]
                    attempt = 0
                    yield event
                    if _is_terminal(event):
                        return
                # A clean end without the terminal event: either the run had already finished
                # before `last`, or the server went away (restart). Ask which.
                run = t.request("GET", path, query={"namespace": namespace}, idempotent=True).body
                if run["status"] in TERMINAL_STATUSES and run["lastSeq"] <= last:
                    return
        except (OSError, http.client.HTTPException, ServerUnreachableError):
            pass  # reconnect below, after `last`
        finally:
            if conn is not None:
                conn.close()
        attempt += 1
        if attempt > _MAX_ATTEMPTS:
            raise ServerUnreachableError(f"event stream of run {run_id} at {t.base_url} kept failing; last seq {last}")
        time.sleep(min(5.0, 0.1 * 2 ** min(attempt, 6)))
