"""tail(): a run's events over Server-Sent Events, as a generator, until the terminal
status event. A dropped connection (a server restart) is resumed with ``Last-Event-ID``,
so each event is yielded once and in seq order.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from typing import Any, Iterator, List, Optional, Tuple

from ._http import Transport, path_with_query
from .errors import HttpError, ServerUnreachableError, error_from_problem
from .types import TERMINAL_STATUSES, Event

__all__ = ["tail_run", "sse_messages", "stream_problem"]

# The server sends a comment every 15 s on an idle stream; three missed means the connection is dead.
_READ_TIMEOUT_S = 45.0
_MAX_ATTEMPTS = 50


def sse_messages(res: http.client.HTTPResponse, id_only: bool = False) -> Iterator[Tuple[Optional[str], str]]:
    """Each SSE message as ``(id, data)``; comments and ``retry:`` are skipped, and so are
    messages without data unless ``id_only``: those only move Last-Event-ID."""
    data: List[str] = []
    msg_id: Optional[str] = None
    while True:
        raw = res.readline()
        if not raw:
            return
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data or (id_only and msg_id is not None):
                yield msg_id, "\n".join(data)
            data = []
            msg_id = None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "id":
            msg_id = value


def stream_problem(res: http.client.HTTPResponse, what: str) -> Exception:
    """The error for a refused stream (not found, unauthorized, a bad cursor…): final, not retried."""
    text = res.read()
    try:
        problem = json.loads(text)
    except ValueError:
        problem = None
    if isinstance(problem, dict):
        return error_from_problem(res.status, problem)
    return HttpError(res.status, f"HTTP {res.status} from the {what}: {text[:200].decode('utf-8', 'replace')}")


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
                raise stream_problem(res, "event stream")
            if res.status == 200:
                for _, data in sse_messages(res):
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
