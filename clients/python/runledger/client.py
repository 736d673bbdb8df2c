"""Client(): the runledger HTTP API in Python's idiom, mirroring the TypeScript client.

Run ids are generated here (UUIDv7) before the first attempt, so a create retried after
a lost answer finds the same run instead of making a second one. Server refusals come
back as the ``LedgerError`` subclass of their ``code``, with the server's message.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import urllib.parse
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, cast

from ._http import Transport
from .changes import Watcher, check_cursor, check_types
from .errors import ConfigurationError, HttpError, NotFoundError, ValidationError
from .ids import RUN_ID_PATTERN, new_run_id
from .types import (
    AppendResult,
    ChangePage,
    Checkpoint,
    CreatedToken,
    ErrorInput,
    Event,
    EventInput,
    EventPage,
    Expectation,
    ExportedRun,
    ExportPage,
    Json,
    JsonObject,
    PruneResult,
    RestoreResult,
    RetentionRules,
    Run,
    RunError,
    RunPage,
    SubjectPage,
    SubjectStatus,
    TokenInfo,
)

__all__ = ["Client", "RunHandle", "StartedRun", "CheckpointResult", "error_of"]

_NOTES_MAX = 65_536
_NAME_MAX = 200

TimeLike = Union[str, _dt.datetime]
KeyValue = Union[str, Tuple[str, str]]


def _time(value: Optional[TimeLike]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValidationError(
            "validation_failed",
            f"times must be aware datetimes or ISO 8601 strings; got naive datetime {value.isoformat()}",
            [{"field": "time", "message": "naive datetime"}],
        )
    return value.isoformat()


def _key_value(value: Optional[KeyValue]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    key, val = value
    return f"{key}:{val}"


def _compact(d: Mapping[str, Any]) -> Dict[str, Any]:
    """The dict without its None values: None means "not given" throughout this client."""
    return {k: v for k, v in d.items() if v is not None}


def check_run_id(value: Any, field: str = "id") -> str:
    # Checked here because an empty or odd id would change which URL is called.
    if not isinstance(value, str) or not RUN_ID_PATTERN.match(value):
        raise ValidationError(
            "validation_failed",
            f"{field} must be 1–128 of letters, digits and ._:@+-; got {value!r}",
            [{"field": field, "message": "not a run id"}],
        )
    return value


def _check_job(value: Any) -> str:
    # Checked here: an empty job would change which URL is called.
    if not isinstance(value, str) or not 1 <= len(value) <= _NAME_MAX:
        raise ValidationError(
            "validation_failed", f"job must be 1–{_NAME_MAX} characters; got {value!r}", [{"field": "job", "message": "not a job name"}]
        )
    return value


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    name = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    return name[:_NAME_MAX]


def error_of(exc: BaseException) -> RunError:
    """A run error from an exception: its type, its message and its traceback (clipped to fit)."""
    import traceback

    message = str(exc) or _error_type(exc)
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"type": _error_type(exc), "message": message[:_NOTES_MAX], "stack": stack[-_NOTES_MAX:]}


def _run_error(error: ErrorInput) -> RunError:
    if isinstance(error, BaseException):
        return error_of(error)
    if isinstance(error, str):
        return {"message": error}
    return dict(error)  # type: ignore[return-value]


class CheckpointResult:
    """A stored checkpoint; ``created`` is False when the same content was already there."""

    __slots__ = ("checkpoint", "created")

    def __init__(self, checkpoint: Checkpoint, created: bool) -> None:
        self.checkpoint = checkpoint
        self.created = created

    def __repr__(self) -> str:
        return f"CheckpointResult(name={self.checkpoint['name']!r}, created={self.created})"


class RunHandle:
    """A handle on one run: every write names exactly this run (no I/O until you call a method)."""

    def __init__(self, client: "Client", run_id: str) -> None:
        self._client = client
        self.id = run_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    def _call(self, method: str, rest: str = "", *, idempotent: bool, body: Any = None, **kw: Any) -> Any:
        return self._client._send(method, f"/v1/runs/{_seg(self.id)}{rest}", body=body, idempotent=idempotent, **kw).body

    def get(self) -> Run:
        return self._call("GET", idempotent=True)  # type: ignore[no-any-return]

    def start(self) -> Run:
        """submitted → running, or retrying → running; a repeated start returns the run unchanged."""
        return self._call("POST", "/start", body={}, idempotent=True)  # type: ignore[no-any-return]

    def heartbeat(self, progress: Json = None) -> Run:
        """Renews the lease; ``progress`` (any JSON) is shown on the run."""
        return self._call("POST", "/heartbeat", body=_compact({"progress": progress}), idempotent=True)  # type: ignore[no-any-return]

    def event(
        self,
        type: str,
        body: Json = None,
        *,
        key: Optional[str] = None,
        level: Optional[str] = None,
        at: Optional[TimeLike] = None,
    ) -> AppendResult:
        """Appends one event; with ``key`` a repeat returns the original seq and writes nothing.

        >>> run.event("progress", {"done": 3, "of": 10}, key="progress-3")
        {'seq': 2, 'key': 'progress-3', 'duplicate': False}
        """
        one = cast(EventInput, _compact({"type": type, "body": body, "key": key, "level": level, "at": _time(at)}))
        return self.events([one])[0]

    def events(self, events: Sequence[EventInput]) -> List[AppendResult]:
        """Appends up to 1000 events in one transaction, in order."""
        if not isinstance(events, (list, tuple)):
            raise ValidationError(
                "validation_failed", f"events must be a list; got {type(events).__name__}", [{"field": "events", "message": "not a list"}]
            )
        batch = [dict(e) for e in events]
        for e in batch:
            if isinstance(e.get("at"), _dt.datetime):
                e["at"] = _time(e["at"])
        # A batch is safe to resend only when every event carries an idempotency key.
        keyed = bool(batch) and all(e.get("key") is not None for e in batch)
        return self._call("POST", "/events", body={"events": batch}, idempotent=keyed)["results"]  # type: ignore[no-any-return]

    def list_events(self, *, after_seq: Optional[int] = None, limit: Optional[int] = None) -> EventPage:
        return self._call("GET", "/events", query={"afterSeq": after_seq, "limit": limit}, idempotent=True)  # type: ignore[no-any-return]

    def iter_events(self, *, after_seq: int = 0, page_size: Optional[int] = None) -> Iterator[Event]:
        """Every event after ``after_seq`` that is stored now, page by page (see Client.tail to follow)."""
        cursor: Optional[int] = after_seq
        while cursor is not None:
            page = self.list_events(after_seq=cursor, limit=page_size)
            yield from page["events"]
            cursor = page["nextAfterSeq"]

    def checkpoint(
        self,
        name: str,
        metadata: JsonObject,
        *,
        kind: Optional[str] = None,
        ref: Optional[str] = None,
        data: Json = None,
    ) -> CheckpointResult:
        """Stores an immutable checkpoint: the same content again is a no-op, other content is key_conflict."""
        body = _compact({"name": name, "kind": kind, "ref": ref, "metadata": metadata, "data": data})
        res = self._client._send("POST", f"/v1/runs/{_seg(self.id)}/checkpoints", body=body, idempotent=True)
        return CheckpointResult(res.body, res.status == 201)

    def get_checkpoint(self, name: str) -> Checkpoint:
        return self._call("GET", f"/checkpoints/{_seg(name)}", idempotent=True)  # type: ignore[no-any-return]

    def list_checkpoints(self) -> List[Checkpoint]:
        return self._call("GET", "/checkpoints", idempotent=True)["checkpoints"]  # type: ignore[no-any-return]

    def complete(self, output: Json = None, *, statistics: Optional[JsonObject] = None, notes: Optional[str] = None) -> Run:
        """Completes the run. Without ``notes`` the existing notes are kept."""
        body = _compact({"output": output, "statistics": statistics, "notes": notes})
        return self._call("POST", "/complete", body=body, idempotent=True)  # type: ignore[no-any-return]

    def fail(self, error: ErrorInput, *, statistics: Optional[JsonObject] = None, notes: Optional[str] = None) -> Run:
        """Fails the run. ``error``: a message, an exception (type, message, traceback) or a dict."""
        body = _compact({"error": _run_error(error), "statistics": statistics, "notes": notes})
        return self._call("POST", "/fail", body=body, idempotent=True)  # type: ignore[no-any-return]

    def cancel(self, reason: Optional[str] = None) -> Run:
        return self._call("POST", "/cancel", body=_compact({"reason": reason}), idempotent=True)  # type: ignore[no-any-return]

    def retry(self, error: Optional[ErrorInput] = None) -> Run:
        """running → retrying (then ``start()`` for the next attempt). Not repeated on a lost answer."""
        body = _compact({"error": None if error is None else _run_error(error)})
        return self._call("POST", "/retry", body=body, idempotent=False)  # type: ignore[no-any-return]

    def set_external_ids(self, ids: Mapping[str, str]) -> Run:
        """Records external ids, write-once per key: the same value again is a no-op, another is key_conflict."""
        return self.update(external_ids=ids)

    def update(
        self,
        *,
        tags: Optional[Mapping[str, str]] = None,
        notes: Optional[str] = None,
        external_ids: Optional[Mapping[str, str]] = None,
        if_version: Optional[int] = None,
    ) -> Run:
        """Merges tags, notes and external ids; ``if_version`` makes it a compare-and-set."""
        body = _compact({"tags": tags, "notes": notes, "externalIds": external_ids})
        headers = None if if_version is None else {"if-match": f'"{if_version}"'}
        # A compare-and-set that succeeded would fail when repeated; anything else merges to the same result.
        return self._call("PATCH", body=body, headers=headers, idempotent=if_version is None)  # type: ignore[no-any-return]

    def verify(self) -> Dict[str, Any]:
        """Recomputes this run's hash chain and checkpoint hashes: ``{ok, problems, …}``."""
        return self._call("GET", "/verify", idempotent=True)  # type: ignore[no-any-return]


class StartedRun(RunHandle):
    """The handle ``start_run`` returns: ``run`` is the record as created, ``created`` False if it existed."""

    def __init__(self, client: "Client", run: Run, created: bool) -> None:
        super().__init__(client, run["id"])
        self.run = run
        self.created = created


class Client:
    """A runledger server over HTTP.

    >>> client = Client("http://127.0.0.1:7070")
    >>> with client.track(job="nightly-export", subject="acme") as run:
    ...     run.event("progress", {"done": 1, "of": 3})

    ``base_url``, ``token`` and ``namespace`` default to the environment variables the CLI
    reads: ``RUNLEDGER_SERVER``, ``RUNLEDGER_TOKEN`` and ``RUNLEDGER_NAMESPACE``. With no
    URL at all the constructor raises ConfigurationError: a client never silently does nothing.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        namespace: Optional[str] = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
    ) -> None:
        url = base_url if base_url is not None else os.environ.get("RUNLEDGER_SERVER")
        if url is None or url.strip() == "":
            raise ConfigurationError(
                "no runledger server configured: pass Client(base_url=...) or set RUNLEDGER_SERVER, "
                "e.g. http://127.0.0.1:7070 (start one with `runledger serve`)",
                [{"field": "base_url", "message": "missing"}],
            )
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(
                "validation_failed",
                f"base_url must be an http(s) URL such as http://127.0.0.1:7070; got {url!r}",
                [{"field": "base_url", "message": "not an http(s) URL"}],
            )
        try:
            parts.port
        except ValueError as err:
            raise ValidationError(
                "validation_failed", f"base_url has an invalid port; got {url!r}", [{"field": "base_url", "message": str(err)}]
            ) from err
        if not (timeout_s > 0):
            raise ValidationError(
                "validation_failed", f"timeout_s must be more than 0; got {timeout_s!r}", [{"field": "timeout_s", "message": "not > 0"}]
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValidationError(
                "validation_failed",
                f"retries must be a whole number, 0 or more; got {retries!r}",
                [{"field": "retries", "message": "not a whole number >= 0"}],
            )
        self.base_url = url.strip().rstrip("/")
        tok = token if token is not None else os.environ.get("RUNLEDGER_TOKEN") or None
        ns = namespace if namespace is not None else os.environ.get("RUNLEDGER_NAMESPACE") or "default"
        self.namespace = self._check_namespace(ns)
        self._transport = Transport(self.base_url, tok, timeout_s, retries)

    @staticmethod
    def _check_namespace(ns: Any) -> str:
        import re

        if not isinstance(ns, str) or not re.match(r"^[A-Za-z0-9._-]{1,64}$", ns):
            raise ValidationError(
                "validation_failed",
                f"namespace must be 1–64 of letters, digits and ._-; got {ns!r}",
                [{"field": "namespace", "message": "not a namespace"}],
            )
        return ns

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, namespace={self.namespace!r})"

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes idle keep-alive connections (the client stays usable)."""
        self._transport.close()

    def in_namespace(self, namespace: str) -> "Client":
        """The same server and connections, addressing another namespace."""
        other = object.__new__(Client)
        other.base_url = self.base_url
        other.namespace = self._check_namespace(namespace)
        other._transport = self._transport
        return other

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        body: Any = None,
        query: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        raw: bool = False,
    ) -> Any:
        q = dict(query or {})
        q["namespace"] = self.namespace
        return self._transport.request(method, path, query=q, body=body, headers=headers, idempotent=idempotent, raw=raw)

    # -- runs

    def start_run(
        self,
        job: str,
        subject: Optional[str] = None,
        *,
        id: Optional[str] = None,
        trigger: Optional[str] = None,
        actor: Optional[str] = None,
        parent_id: Optional[str] = None,
        status: Optional[str] = None,
        external_ids: Optional[Mapping[str, str]] = None,
        params: Optional[JsonObject] = None,
        tags: Optional[Mapping[str, str]] = None,
        notes: Optional[str] = None,
        lease_s: Optional[int] = None,
        deadline_at: Optional[TimeLike] = None,
        exclusive: Optional[bool] = None,
    ) -> StartedRun:
        """Creates (and by default starts) a run; idempotent on ``id``.

        ``exclusive=True`` refuses the start while another exclusive run of the same job and
        subject is live: RunActiveError, whose ``active_run_id`` names that run.

        The same id with the same identity (job, subject, trigger, actor, parent_id, params)
        returns the existing run (``created`` False); a different one raises IdConflictError
        whose ``fields`` name what differs.
        """
        run_id = new_run_id() if id is None else check_run_id(id)
        body = _compact(
            {
                "id": run_id,
                "job": job,
                "subject": subject,
                "trigger": trigger,
                "actor": actor,
                "parentId": parent_id,
                "status": status,
                "externalIds": external_ids,
                "params": params,
                "tags": tags,
                "notes": notes,
                "leaseS": lease_s,
                "deadlineAt": _time(deadline_at),
                "exclusive": exclusive,
            }
        )
        # The id is fixed before the first attempt: a retry after a lost answer finds the same run.
        res = self._send("POST", "/v1/runs", body=body, idempotent=True)
        return StartedRun(self, res.body, res.status == 201)

    def get_run(self, run_id: str) -> Run:
        return self._send("GET", f"/v1/runs/{_seg(check_run_id(run_id))}", idempotent=True).body  # type: ignore[no-any-return]

    def run(self, run_id: str) -> RunHandle:
        """A handle on an existing run by id (no request is made)."""
        return RunHandle(self, check_run_id(run_id))

    def list_runs_page(
        self,
        *,
        job: Optional[str] = None,
        subject: Optional[str] = None,
        status: Union[str, Iterable[str], None] = None,
        trigger: Optional[str] = None,
        actor: Optional[str] = None,
        parent_id: Optional[str] = None,
        external_id: Optional[KeyValue] = None,
        missing_external_id: Optional[str] = None,
        tag: Optional[KeyValue] = None,
        created_after: Optional[TimeLike] = None,
        created_before: Optional[TimeLike] = None,
        q: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        with_total: Optional[bool] = None,
    ) -> RunPage:
        """One page of runs, newest first: ``{"runs": [...], "nextCursor": str | None}``.

        ``q`` matches a prefix of the id, job or subject; ``with_total`` adds ``total``
        (a count of every match, capped by the server)."""
        query = {
            "job": job,
            "subject": subject,
            "status": status if status is None or isinstance(status, str) else list(status),
            "trigger": trigger,
            "actor": actor,
            "parentId": parent_id,
            "externalId": _key_value(external_id),
            "missingExternalId": missing_external_id,
            "tag": _key_value(tag),
            "createdAfter": _time(created_after),
            "createdBefore": _time(created_before),
            "q": q,
            "limit": limit,
            "cursor": cursor,
            "withTotal": with_total,
        }
        return self._send("GET", "/v1/runs", query=query, idempotent=True).body  # type: ignore[no-any-return]

    def list_runs(
        self,
        *,
        job: Optional[str] = None,
        subject: Optional[str] = None,
        status: Union[str, Iterable[str], None] = None,
        trigger: Optional[str] = None,
        actor: Optional[str] = None,
        parent_id: Optional[str] = None,
        external_id: Optional[KeyValue] = None,
        missing_external_id: Optional[str] = None,
        tag: Optional[KeyValue] = None,
        created_after: Optional[TimeLike] = None,
        created_before: Optional[TimeLike] = None,
        q: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> Iterator[Run]:
        """Every matching run, newest first, fetching page after page as you iterate
        (``limit`` is the page size; the filters are ``list_runs_page``'s).

        >>> for run in client.list_runs(job="agent-md", status=["failed", "timed_out"]): ...
        >>> missing = list(client.list_runs(parent_id=parent.id, missing_external_id="amc.executionId"))
        """
        filters: Dict[str, Any] = {
            "job": job,
            "subject": subject,
            "status": status,
            "trigger": trigger,
            "actor": actor,
            "parent_id": parent_id,
            "external_id": external_id,
            "missing_external_id": missing_external_id,
            "tag": tag,
            "created_after": created_after,
            "created_before": created_before,
            "q": q,
            "limit": limit,
        }
        first = self.list_runs_page(**filters)  # now: a bad filter raises here, not at the first next()
        return self._pages(first, filters)

    def _pages(self, page: RunPage, filters: Dict[str, Any]) -> Iterator[Run]:
        while True:
            yield from page["runs"]
            if not page["nextCursor"]:
                return
            page = self.list_runs_page(**filters, cursor=page["nextCursor"])

    # -- subjects, import, operations

    def list_subjects(
        self,
        *,
        job: Optional[str] = None,
        status: Union[str, Iterable[str], None] = None,
        overdue: Optional[bool] = None,
        due_before: Optional[TimeLike] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> SubjectPage:
        """One page of subjects with their verdict and health (streaks, ``nextDueAt``, ``overdue``).

        ``overdue=True``: only subjects past their expected slot plus grace with no run started;
        ``due_before``: subjects whose next slot is before that time (overdue ones included)."""
        query = {
            "job": job,
            "status": status if status is None or isinstance(status, str) else list(status),
            "overdue": overdue,
            "dueBefore": _time(due_before),
            "limit": limit,
            "cursor": cursor,
        }
        return self._send("GET", "/v1/subjects", query=query, idempotent=True).body  # type: ignore[no-any-return]

    def get_subject(self, job: str, subject: str) -> SubjectStatus:
        """The subject's current status and its recent runs (``recentRuns``)."""
        return self._send("GET", f"/v1/subjects/{_seg(job)}/{_seg(subject)}", idempotent=True).body  # type: ignore[no-any-return]

    def import_runs(
        self,
        source: str,
        records: Sequence[Mapping[str, Any]],
        *,
        dry_run: Optional[bool] = None,
        cutover: Optional[str] = None,
        subject_status: Optional[bool] = None,
    ) -> Dict[str, Any]:
        """Backfills historical runs (≤ 1000 per call), idempotent on (source, sourceId)."""
        body = _compact({"source": source, "runs": list(records), "dryRun": dry_run, "cutover": cutover, "subjectStatus": subject_status})
        # A resent batch reports duplicates and inserts nothing twice.
        return self._send("POST", "/v1/imports", body=body, idempotent=True).body  # type: ignore[no-any-return]

    def verify(self, run_id: Optional[str] = None) -> Dict[str, Any]:
        """Recomputes hash chains and checkpoint hashes (one run, or the namespace)."""
        path = "/v1/verify" if run_id is None else f"/v1/runs/{_seg(check_run_id(run_id))}/verify"
        return self._send("GET", path, idempotent=True).body  # type: ignore[no-any-return]

    def reap(self) -> Dict[str, Any]:
        """One reaper pass now (``runledger serve`` runs it every few seconds)."""
        return self._send("POST", "/v1/reap", idempotent=True).body  # type: ignore[no-any-return]

    def stats(
        self,
        *,
        job: Optional[str] = None,
        from_: Optional[TimeLike] = None,
        to: Optional[TimeLike] = None,
        bucket: Optional[str] = None,
    ) -> Dict[str, Any]:
        query = {"job": job, "from": _time(from_), "to": _time(to), "bucket": bucket}
        return self._send("GET", "/v1/stats", query=query, idempotent=True).body  # type: ignore[no-any-return]

    # -- webhooks (creating, removing and replaying need an admin token)

    def create_webhook(
        self, url: str, types: Sequence[str], *, job: Optional[str] = None, description: Optional[str] = None
    ) -> Dict[str, Any]:
        """Subscribes ``url`` to change types; the answer's ``secret`` (``whsec_…``) is shown only here.
        Receivers check deliveries with :func:`runledger.verify_webhook`."""
        body: Dict[str, Any] = {"url": url, "types": list(types)}
        if job is not None:
            body["job"] = job
        if description is not None:
            body["description"] = description
        # Not retried: a lost answer would leave a second webhook whose secret nobody saw.
        return self._send("POST", "/v1/webhooks", body=body, idempotent=False).body  # type: ignore[no-any-return]

    def list_webhooks(self) -> List[Dict[str, Any]]:
        return self._send("GET", "/v1/webhooks", idempotent=True).body["webhooks"]  # type: ignore[no-any-return]

    def get_webhook(self, webhook_id: str) -> Dict[str, Any]:
        return self._send("GET", f"/v1/webhooks/{_seg(webhook_id)}", idempotent=True).body  # type: ignore[no-any-return]

    def delete_webhook(self, webhook_id: str) -> bool:
        """Removes a webhook with its delivery log; False when there was none."""
        try:
            self._send("DELETE", f"/v1/webhooks/{_seg(webhook_id)}", idempotent=True)
            return True
        except NotFoundError:
            return False

    def webhook_deliveries(self, webhook_id: str, *, state: Optional[str] = None, limit: Optional[int] = None) -> List[Dict[str, Any]]:
        """A webhook's deliveries, newest first, each with every attempt (``log``)."""
        query = {"state": state, "limit": limit}
        return self._send("GET", f"/v1/webhooks/{_seg(webhook_id)}/deliveries", query=query, idempotent=True).body["deliveries"]  # type: ignore[no-any-return]

    def replay_webhook(self, webhook_id: str, after: str = "0") -> int:
        """Delivers again every matching change after ``after`` (a change cursor, or "0"); returns how many were queued."""
        body = {"after": after}
        return self._send("POST", f"/v1/webhooks/{_seg(webhook_id)}/replay", body=body, idempotent=True).body["queued"]  # type: ignore[no-any-return]

    # -- expectations (setting and removing need an admin token)

    def set_expectation(
        self,
        job: str,
        *,
        grace: str,
        every: Optional[str] = None,
        cron: Optional[str] = None,
        timezone: Optional[str] = None,
        per_subject: Optional[bool] = None,
    ) -> Expectation:
        """Sets (creates or replaces) how often ``job`` is expected to run: ``every`` (a duration
        such as "12h") or ``cron`` (in ``timezone``, default UTC), plus ``grace`` ("30m") before a
        subject counts as overdue. ``per_subject=False`` watches the job as a whole.

        >>> client.set_expectation("compliance-check", every="12h", grace="30m")
        """
        body = _compact({"every": every, "cron": cron, "timezone": timezone, "grace": grace, "perSubject": per_subject})
        return self._send("PUT", f"/v1/expectations/{_seg(_check_job(job))}", body=body, idempotent=True).body  # type: ignore[no-any-return]

    def list_expectations(self) -> List[Expectation]:
        return self._send("GET", "/v1/expectations", idempotent=True).body["expectations"]  # type: ignore[no-any-return]

    def delete_expectation(self, job: str) -> bool:
        """Removes the expectation of ``job`` (its subjects are no longer due); False when there was none."""
        try:
            self._send("DELETE", f"/v1/expectations/{_seg(_check_job(job))}", idempotent=True)
            return True
        except NotFoundError:
            return False

    # -- the change feed

    def changes(
        self,
        after: Optional[str] = None,
        *,
        types: Optional[Sequence[str]] = None,
        job: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> ChangePage:
        """The change log after a cursor, in feed order: ``{"changes", "nextAfter", "heldBack"}``.

        ``after``: a change's ``cursor`` or a page's ``nextAfter`` (None or "0": from the start;
        "now": nothing, just the current position). Resume with ``nextAfter``: it moves past the
        changes the filters left out. ``heldBack`` True: more changes have committed but wait for
        an older open transaction; read again shortly.

        >>> page = client.changes(after=saved, types=["run.finished"])
        """
        query = {"after": check_cursor(after), "types": check_types(types), "job": job, "limit": limit}
        return self._send("GET", "/v1/changes", query=query, idempotent=True).body  # type: ignore[no-any-return]

    def watch(self, after: Optional[str] = "now", *, types: Optional[Sequence[str]] = None, job: Optional[str] = None) -> Watcher:
        """Follows the change log live over SSE: an iterator of changes, each once, in feed order,
        resumed with Last-Event-ID across dropped connections and server restarts.

        ``after``: "now" (default: only changes after this call), a cursor, or "0"/None (from the
        start). ``watcher.cursor`` is where to resume; ``watcher.close()`` ends it from any thread.

        >>> for change in client.watch(types=["run.finished"], job="nightly"):
        ...     print(change["type"], change["runId"])
        """
        start = check_cursor(after)
        wanted = check_types(types)
        if start == "now":
            # Resolved now, not at the first connect: changes made before the first next() are kept,
            # and a reconnect resumes from a real position instead of a later "now".
            start = self.changes(after="now")["nextAfter"]
        return Watcher(self._transport, self.namespace, start, wanted, job)

    # -- retention (setting rules, pruning and restoring need an admin token)

    def set_retention(self, rules: Sequence[Mapping[str, Any]]) -> RetentionRules:
        """Replaces the namespace's retention rules: ``[{"job"?, "keepDays", "keepLastPerSubject"?}]``
        (a rule without ``job`` is the default). An empty list removes every rule; the rules
        ``get_retention()`` answers may be passed back, edited (their ``updatedAt`` is dropped).

        >>> client.set_retention([{"keepDays": 90}, {"job": "ci", "keepDays": 7, "keepLastPerSubject": 3}])
        """
        if not isinstance(rules, (list, tuple)):
            raise ValidationError(
                "validation_failed", f"rules must be a list of rules; got {type(rules).__name__}", [{"field": "rules", "message": "not a list"}]
            )
        body = {"rules": [{k: v for k, v in dict(r).items() if k != "updatedAt"} if isinstance(r, Mapping) else r for r in rules]}
        return self._send("PUT", "/v1/retention", body=body, idempotent=True).body  # type: ignore[no-any-return]

    def get_retention(self) -> RetentionRules:
        return self._send("GET", "/v1/retention", idempotent=True).body  # type: ignore[no-any-return]

    def prune(self, *, dry_run: Optional[bool] = None, limit: Optional[int] = None, ids: Optional[Sequence[str]] = None) -> PruneResult:
        """Prunes one chunk (one transaction, ``limit`` runs, default 500) under the rules; call
        again while ``more``. ``dry_run=True`` deletes nothing and reports ``eligible``. A pruned
        run leaves a tombstone: reading it raises PrunedError."""
        body = _compact({"dryRun": dry_run, "limit": limit, "ids": None if ids is None else list(ids)})
        # A lost answer is safe to repeat: the next chunk is pruned, or nothing.
        return self._send("POST", "/v1/prune", body=body, idempotent=True).body  # type: ignore[no-any-return]

    def export_runs_page(
        self,
        *,
        job: Optional[str] = None,
        before: Optional[TimeLike] = None,
        prunable: Optional[bool] = None,
        after: Optional[str] = None,
        limit: int = 100,
    ) -> ExportPage:
        """One page of whole runs (``{run, events, checkpoints}``) and ``nextAfter`` (None at the end)."""
        query = {"job": job, "before": _time(before), "prunable": prunable, "after": after, "limit": limit}
        text: str = self._send("GET", "/v1/export", query=query, idempotent=True, raw=True).body
        lines = [line for line in text.split("\n") if line]
        end = json.loads(lines[-1]) if lines else {}
        if not isinstance(end, dict) or end.get("end") is not True:
            raise HttpError(200, "the export answer ended before its end line (the server stopped mid-answer); ask again")
        return {"runs": [json.loads(line) for line in lines[1:-1]], "nextAfter": end.get("nextAfter")}

    def export_runs(
        self, *, job: Optional[str] = None, before: Optional[TimeLike] = None, prunable: Optional[bool] = None, page_size: int = 100
    ) -> Iterator[ExportedRun]:
        """Every matching run, whole, as the NDJSON export's records, page after page as you
        iterate (each page a retried request). Write each as a line to archive; ``restore_runs``
        takes them back exactly. ``prunable=True``: only what the rules allow pruning now.

        >>> with open("archive.ndjson", "w") as f:
        ...     for record in client.export_runs(prunable=True):
        ...         f.write(json.dumps(record) + "\n")
        """
        first = self.export_runs_page(job=job, before=before, prunable=prunable, limit=page_size)  # a bad query raises here
        return self._export_pages(first, {"job": job, "before": before, "prunable": prunable, "limit": page_size})

    def _export_pages(self, page: ExportPage, query: Dict[str, Any]) -> Iterator[ExportedRun]:
        while True:
            yield from page["runs"]
            if not page["nextAfter"]:
                return
            page = self.export_runs_page(**query, after=page["nextAfter"])

    def restore_runs(self, runs: Sequence[Mapping[str, Any]]) -> RestoreResult:
        """Restores exported runs exactly (same ids, seqs, hashes), ≤ 1000 per call; over a
        tombstone only when the chain ends in its hash. Each is reported on its own."""
        if not isinstance(runs, (list, tuple)):
            raise ValidationError(
                "validation_failed", f"runs must be a list of exported runs; got {type(runs).__name__}", [{"field": "runs", "message": "not a list"}]
            )
        # Idempotent: a run restored twice is a duplicate the second time.
        return self._send("POST", "/v1/restore", body={"runs": list(runs)}, idempotent=True).body  # type: ignore[no-any-return]

    # -- tokens (admin token; each manages only its own namespace's tokens)

    def create_token(self, scope: str, name: Optional[str] = None) -> CreatedToken:
        """Creates a token for this namespace (``scope``: read, write or admin); its secret,
        ``token``, is in this answer only."""
        # Not retried: a lost answer would leave a token nobody saw.
        return self._send("POST", "/v1/tokens", body=_compact({"scope": scope, "name": name}), idempotent=False).body  # type: ignore[no-any-return]

    def list_tokens(self) -> List[TokenInfo]:
        """This namespace's tokens, newest first, without their secrets."""
        return self._send("GET", "/v1/tokens", idempotent=True).body["tokens"]  # type: ignore[no-any-return]

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revokes a token: refused from the next request on, its open streams end. Revoking twice is a no-op."""
        return self._send("DELETE", f"/v1/tokens/{_seg(token_id)}", idempotent=True).body  # type: ignore[no-any-return]

    # -- tracking and tailing (defined in their own modules)

    def track(self, job: str, subject: Optional[str] = None, *, heartbeat_every_s: Optional[float] = None, **start: Any) -> "Tracker":
        """Runs a block as a run: started on entry, heartbeated from a daemon thread,
        completed on a clean exit, failed (type, message, traceback) on an exception,
        which is re-raised.

        >>> with client.track(job="agent-md", subject="acme/api") as run:
        ...     run.event("agent.step", {"step": "clone"})
        ...     run.output = {"agentMd": "..."}   # stored by the completion
        """
        from .track import Tracker

        return Tracker(self, job, subject, heartbeat_every_s, start)

    def tracked(self, job: str, subject: Any = None, *, heartbeat_every_s: Optional[float] = None, **start: Any) -> Any:
        """Decorator form of ``track``: the return value becomes the run's output.

        ``subject`` may be a string or a function of the call's arguments. A function
        with a ``run`` parameter is given the run. Works on ``async def`` too.

        >>> @client.tracked(job="agent-md", subject=lambda repo: repo)
        ... def build_agent_md(repo, run=None): ...
        """
        from .track import decorate

        return decorate(self, job, subject, heartbeat_every_s, start)

    def tail(self, run_id: str, *, after_seq: int = 0) -> Iterator[Event]:
        """Follows a run's events live, in seq order, until its terminal status event.

        Reconnects with ``Last-Event-ID`` when the connection drops (a server restart), so
        each event is yielded once. Stop early by breaking out of the loop.

        >>> for event in client.tail(run.id):
        ...     print(event["seq"], event["type"])
        """
        from .tail import tail_run

        return tail_run(self._transport, self.namespace, check_run_id(run_id, "run_id"), after_seq)


from .track import Tracker  # noqa: E402  (for the annotation above; track imports this module)
