"""The transport: one JSON request with retries, over a small keep-alive pool.

Retry policy (the TypeScript client's): a request that never reached the server (the
connection could not be made: refused, unknown host, connect timeout) is always safe to
repeat. Any other network failure, or a 502/503/504, is repeated only for calls that are
idempotent by design: reads, create with its client-generated id, events that all carry
keys, checkpoints, complete/fail/cancel with the same payload. An unkeyed event batch is
never sent twice.

``http.client`` connections are not thread-safe, and ``track()`` heartbeats from a
thread while the caller works, so each request borrows an idle connection (or opens one)
and gives it back once the answer is read whole.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import random
import select
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .errors import HttpError, ServerUnreachableError, ValidationError, error_from_problem

__all__ = ["Transport", "Response", "path_with_query", "encode_json"]

# Fastify keeps an idle connection open 72 s; give ours back well before the server drops it.
_IDLE_MAX_S = 30.0
_RETRY_STATUSES = (502, 503, 504)


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise TypeError(f"datetime {value.isoformat()} has no time zone; use an aware datetime (e.g. tzinfo=timezone.utc)")
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(value: Any, what: str = "body") -> bytes:
    """UTF-8 JSON; NaN, Infinity and objects JSON cannot hold are a ValidationError naming ``what``."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as err:
        raise ValidationError(
            "validation_failed",
            f"{what} must be JSON: None, booleans, finite numbers, strings, lists and dicts with string keys; {err}",
            [{"field": what, "message": "not JSON"}],
        ) from err


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(_query_value(x) for x in v)
    if isinstance(v, _dt.datetime):
        return v.isoformat()
    return str(v)


def path_with_query(path: str, query: Optional[Mapping[str, Any]] = None) -> str:
    """``path?query``: lists as comma lists, booleans as true/false, None left out."""
    if not query:
        return path
    pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
    return path + ("?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote) if pairs else "")


class Response:
    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: Any, headers: Dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers


def _backoff(attempt: int) -> float:
    return float(min(2.0, 0.1 * 3.0**attempt) * (0.5 + random.random() / 2))


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return f"{text} ({type(err).__name__})"


class Transport:
    def __init__(self, base_url: str, token: Optional[str], timeout_s: float, retries: int) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.base_url = base_url
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        self.retries = retries
        self._idle: List[Tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._ssl = ssl.create_default_context() if self.scheme == "https" else None

    # -- connections

    def connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        """A new, connected connection. Errors here mean nothing was sent."""
        conn: http.client.HTTPConnection
        if self._ssl is not None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        conn.connect()
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _borrow(self) -> Optional[http.client.HTTPConnection]:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn, since = self._idle.pop()
            sock = conn.sock
            # A connection the server closed meanwhile reads as ready (EOF): drop it, never send on it.
            if sock is None or now - since > _IDLE_MAX_S or select.select([sock], [], [], 0)[0]:
                conn.close()
                continue
            return conn

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append((conn, time.monotonic()))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    def headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"accept": "application/json, application/problem+json", "user-agent": "runledger-python"}
        if self.token:
            h["authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    # -- one request

    def _attempt(
        self, method: str, path: str, headers: Dict[str, str], payload: Optional[bytes]
    ) -> Tuple[int, bytes, Dict[str, str]]:
        conn = self._borrow()
        if conn is None:
            try:
                conn = self.connect(self.timeout_s)
            except (OSError, http.client.HTTPException) as err:
                raise _NeverSent(err) from err
        try:
            conn.request(method, self.prefix + path, body=payload, headers=headers)
            res = conn.getresponse()
            data = res.read()
        except BaseException:
            conn.close()
            raise
        if res.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return res.status, data, {k.lower(): v for k, v in res.getheaders()}

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        idempotent: bool,
        raw: bool = False,
    ) -> Response:
        """Sends one request, retrying per the policy above, and parses the JSON answer
        (``raw``: the body as text, e.g. NDJSON; refusals are still LedgerErrors)."""
        target = path_with_query(path, query)
        h = self.headers(headers)
        payload: Optional[bytes] = None
        if body is not None:
            payload = encode_json(body)
            h["content-type"] = "application/json"
        attempt = 0
        while True:
            try:
                status, data, res_headers = self._attempt(method, target, h, payload)
            except _NeverSent as wrapped:
                err = wrapped.cause
                if attempt < self.retries:
                    time.sleep(_backoff(attempt))
                    attempt += 1
                    continue
                raise ServerUnreachableError(f"cannot reach runledger server at {self.base_url}: {_describe(err)}") from err
            except (OSError, http.client.HTTPException) as err:
                if idempotent and attempt < self.retries:
                    time.sleep(_backoff(attempt))
                    attempt += 1
                    continue
                raise ServerUnreachableError(
                    f"lost the connection to runledger server at {self.base_url} during {method} {path}: {_describe(err)}"
                    + ("" if idempotent else "; not retried, as repeating this call could apply it twice")
                ) from err
            if status in _RETRY_STATUSES and idempotent and attempt < self.retries:
                time.sleep(_backoff(attempt))
                attempt += 1
                continue
            if raw and status < 400:
                return Response(status, data.decode("utf-8"), res_headers)
            parsed: Any = None
            if data:
                try:
                    parsed = json.loads(data.decode("utf-8"))
                except ValueError:
                    parsed = None
            if status >= 400:
                if isinstance(parsed, dict):
                    raise error_from_problem(status, parsed)
                text = data[:200].decode("utf-8", "replace")
                raise HttpError(status, f"HTTP {status} from {method} {path}: {text}")
            return Response(status, parsed, res_headers)


class _NeverSent(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause
