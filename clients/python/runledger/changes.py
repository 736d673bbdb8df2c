"""The change feed: ``Client.changes()`` reads a page after a cursor, ``Client.watch()``
follows ``GET /v1/changes/stream`` (Server-Sent Events) live.

A watch reconnects with ``Last-Event-ID`` = the cursor after the last change it yielded
(or the last ``id:``-only message, which the server sends to move past changes the
filters left out), so across dropped connections and server restarts each change is
yielded once, in feed order.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import threading
from types import TracebackType
from typing import Any, Iterator, List, Optional, Sequence, Type

from ._http import Transport, path_with_query
from .errors import ServerUnreachableError, ValidationError
from .tail import sse_messages, stream_problem
from .types import Change

__all__ = ["Watcher", "CHANGE_TYPES", "check_cursor", "check_types"]

log = logging.getLogger("runledger")

#: Every type the change log may hold.
CHANGE_TYPES = ("run.finished", "run.suspect", "subject.changed", "expectation.missed", "expectation.met")

_CURSOR = re.compile(r"^\d{1,20}-\d{1,19}$")
# The server sends a comment every 15 s on an idle stream; three missed means the connection is dead.
_READ_TIMEOUT_S = 45.0
# Consecutive failed connections tolerated once the stream has been open (about 4 minutes of
# backoff: a server restart); before that, as many as a call's retries (a wrong URL fails fast).
_MAX_ATTEMPTS = 50


def check_cursor(value: Any, field: str = "after") -> Optional[str]:
    """A change cursor as the server reads it ("1234-56", "0" or "now"), checked before any request."""
    if value is None:
        return None
    if not isinstance(value, str) or not (value in ("", "0", "now") or _CURSOR.match(value)):
        raise ValidationError(
            "validation_failed",
            f'{field} must be a change cursor such as "1234-56" (a change\'s cursor or a page\'s nextAfter), 0 or now; got {value!r}',
            [{"field": field, "message": "not a change cursor"}],
        )
    return value


def check_types(types: Any) -> Optional[List[str]]:
    if types is None:
        return None
    listed = [types] if isinstance(types, str) else types
    if not isinstance(listed, (list, tuple)) or not listed or any(t not in CHANGE_TYPES for t in listed):
        raise ValidationError(
            "validation_failed",
            f"types must be a non-empty list of {', '.join(CHANGE_TYPES)}; got {types!r}",
            [{"field": "types", "message": "not a list of change types"}],
        )
    return list(listed)


class Watcher:
    """The iterator ``Client.watch()`` returns: every change once, in feed order, live.

    ``cursor`` is the position after the last change yielded (or past the changes the
    filters left out): persist it and pass it as ``after`` to resume where this left off.
    ``close()`` ends the iteration, from any thread; ``with`` closes on exit.

    >>> with client.watch(after=saved_cursor, types=["run.finished"]) as watcher:
    ...     for change in watcher:
    ...         handle(change)
    ...         save(watcher.cursor)
    """

    def __init__(self, transport: Transport, namespace: str, after: Optional[str], types: Optional[Sequence[str]], job: Optional[str]) -> None:
        self._t = transport
        self._query = {"namespace": namespace, "types": list(types) if types else None, "job": job}
        self._cursor = after
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._conn: Optional[http.client.HTTPConnection] = None
        self._gen = self._follow()

    @property
    def cursor(self) -> Optional[str]:
        return self._cursor

    def __iter__(self) -> "Watcher":
        return self

    def __next__(self) -> Change:
        if self._stopped.is_set():
            raise StopIteration
        return next(self._gen)

    def __enter__(self) -> "Watcher":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        """Ends the watch: the open connection is shut down, so a ``next()`` blocked on it returns."""
        self._stopped.set()
        with self._lock:
            conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._gen.close()  # suspended at a yield: its connection is closed now
        except ValueError:
            pass  # running in another thread: it sees the stop as its read ends

    def _follow(self) -> Iterator[Change]:
        path = path_with_query("/v1/changes/stream", self._query)
        attempt = 0
        opened = False
        while not self._stopped.is_set():
            conn: Optional[http.client.HTTPConnection] = None
            try:
                conn = self._t.connect(_READ_TIMEOUT_S)
                with self._lock:
                    self._conn = conn
                if self._stopped.is_set():
                    return
                extra = {"accept": "text/event-stream"}
                if self._cursor is not None:
                    extra["last-event-id"] = self._cursor
                conn.request("GET", self._t.prefix + path, headers=self._t.headers(extra))
                res = conn.getresponse()
                if res.status >= 400 and res.status not in (502, 503, 504):
                    raise stream_problem(res, "change stream")  # a bad cursor, unauthorized…: final
                if res.status == 200:
                    opened = True
                    for msg_id, data in sse_messages(res, id_only=True):
                        attempt = 0
                        if msg_id is not None:
                            # Moved before the yield: a change handed to the caller is delivered (a break keeps it).
                            self._cursor = msg_id
                        if data:
                            yield json.loads(data)
                        if self._stopped.is_set():
                            return
            except (OSError, http.client.HTTPException) as err:
                if self._stopped.is_set():
                    return
                failure: object = err
                log.warning("runledger: change stream at %s failed (%s); resuming after %s", self._t.base_url, err, self._cursor)
            else:
                failure = f"HTTP {res.status}" if res.status != 200 else "the server ended the stream"
            finally:
                with self._lock:
                    self._conn = None
                if conn is not None:
                    conn.close()
            if self._stopped.is_set():
                return
            attempt += 1
            if attempt > (_MAX_ATTEMPTS if opened else self._t.retries):
                raise ServerUnreachableError(
                    f"cannot reach runledger server at {self._t.base_url} for the change stream "
                    f"({attempt} attempts in a row, the last: {failure}); resume with after={self._cursor!r}"
                )
            self._stopped.wait(min(5.0, 0.1 * 2 ** min(attempt, 6)))
