"""Errors with the server's stable codes.

The server answers every refusal with RFC 9457 problem+json carrying a ``code``; the
client raises the ``LedgerError`` subclass for that code, with the server's message and
details, so callers branch on ``err.code`` (or the class) exactly as the TypeScript
library's callers do. A failure that is not a ledger refusal (a 5xx, an answer that is
not problem+json, a server that cannot be reached) is an ``HttpError``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type

__all__ = [
    "LedgerError",
    "ValidationError",
    "NotFoundError",
    "IdConflictError",
    "InvalidTransitionError",
    "RunFinishedError",
    "VersionMismatchError",
    "KeyConflictError",
    "UnauthorizedError",
    "ForbiddenError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "PrunedError",
    "RunActiveError",
    "ConfigurationError",
    "HttpError",
    "ServerUnreachableError",
    "WebhookVerificationError",
    "error_from_problem",
]


class LedgerError(Exception):
    """A refusal by the ledger, with its stable ``code`` and per-field ``details``.

    >>> try:
    ...     client.run(run_id).complete()
    ... except LedgerError as err:
    ...     if err.code == "run_finished": ...
    """

    code: str
    details: List[Dict[str, Any]]
    status: Optional[int]

    def __init__(
        self,
        code: str,
        message: str,
        details: Optional[List[Dict[str, Any]]] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = list(details or [])
        self.status = status

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class ValidationError(LedgerError):
    """Bad input: the message names the field, echoes the value and says what is allowed."""


class NotFoundError(LedgerError):
    pass


class IdConflictError(LedgerError):
    """Same run id, different identity; ``fields`` names what differs (job, subject, params…)."""

    @property
    def fields(self) -> List[str]:
        return [str(d.get("field")) for d in self.details if d.get("field") is not None]


class InvalidTransitionError(LedgerError):
    pass


class RunFinishedError(LedgerError):
    """The run is terminal and the request would change it."""


class VersionMismatchError(LedgerError):
    pass


class KeyConflictError(LedgerError):
    """An idempotency key (event key, checkpoint name, external id key) reused with other content."""


class UnauthorizedError(LedgerError):
    pass


class ForbiddenError(LedgerError):
    pass


class PayloadTooLargeError(LedgerError):
    pass


class RateLimitedError(LedgerError):
    pass


class PrunedError(LedgerError):
    """The run was deleted by retention; only its tombstone remains.

    ``tombstone`` is the server's ``{ id, job, subject, status, createdAt, finishedAt, lastSeq,
    lastHash, prunedAt }`` (the run's final chain head), or an empty dict.
    """

    tombstone: Dict[str, Any] = {}


class RunActiveError(LedgerError):
    """Another exclusive run of the same job and subject is live; ``active_run_id`` names it."""

    active_run_id: Optional[str] = None


class ConfigurationError(LedgerError):
    """The client (or server) is not configured to reach a ledger, e.g. no server URL."""

    def __init__(self, message: str, details: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__("configuration", message, details)


_CLASSES: Dict[str, Type[LedgerError]] = {
    "validation_failed": ValidationError,
    "not_found": NotFoundError,
    "id_conflict": IdConflictError,
    "invalid_transition": InvalidTransitionError,
    "run_finished": RunFinishedError,
    "version_mismatch": VersionMismatchError,
    "key_conflict": KeyConflictError,
    "unauthorized": UnauthorizedError,
    "forbidden": ForbiddenError,
    "payload_too_large": PayloadTooLargeError,
    "rate_limited": RateLimitedError,
    "pruned": PrunedError,
    "run_active": RunActiveError,
}


class HttpError(Exception):
    """A server fault (5xx) or an answer that is not a ledger problem. ``status`` 0: no answer."""

    def __init__(self, status: int, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


class ServerUnreachableError(HttpError, ConnectionError):
    """The server could not be reached (refused, unknown host, timed out, connection lost);
    ``status`` 0 and ``code`` "unavailable", as the TypeScript client's."""

    def __init__(self, message: str) -> None:
        HttpError.__init__(self, 0, message, "unavailable")


class WebhookVerificationError(Exception):
    """A webhook delivery whose signature or timestamp does not verify."""


def error_from_problem(status: int, body: Mapping[str, Any]) -> Exception:
    """The exception for a problem+json answer: the code's LedgerError subclass, else HttpError."""
    code = body.get("code")
    message = body.get("detail") or body.get("title") or f"HTTP {status}"
    if not isinstance(code, str) or status >= 500:
        return HttpError(status, f"server error {status}: {message}", code if isinstance(code, str) else None)
    raw = body.get("errors")
    details = [d for d in raw if isinstance(d, dict)] if isinstance(raw, list) else []
    cls = _CLASSES.get(code, LedgerError)
    if cls is LedgerError:
        return LedgerError(code, str(message), details, status)
    err = cls(code, str(message), details, status)
    if isinstance(err, PrunedError):
        tombstone = body.get("tombstone")
        err.tombstone = dict(tombstone) if isinstance(tombstone, dict) else {}
    if isinstance(err, RunActiveError):
        active = body.get("activeRunId")
        err.active_run_id = active if isinstance(active, str) else None
    return err
