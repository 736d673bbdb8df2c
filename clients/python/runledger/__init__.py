"""runledger: the Python client of the runledger run ledger (standard library only).

>>> from runledger import Client
>>> client = Client("http://127.0.0.1:7070")
>>> with client.track(job="nightly-export", subject="acme") as run:
...     run.event("progress", {"done": 1, "of": 3})
"""

from .changes import CHANGE_TYPES, Watcher
from .client import CheckpointResult, Client, RunHandle, StartedRun
from .errors import (
    ConfigurationError,
    ForbiddenError,
    HttpError,
    IdConflictError,
    InvalidTransitionError,
    KeyConflictError,
    LedgerError,
    NotFoundError,
    PayloadTooLargeError,
    PrunedError,
    RateLimitedError,
    RunActiveError,
    RunFinishedError,
    ServerUnreachableError,
    UnauthorizedError,
    ValidationError,
    VersionMismatchError,
    WebhookVerificationError,
)
from .ids import new_run_id
from .track import TrackedRun, Tracker
from .types import TERMINAL_STATUSES
from .webhooks import sign_webhook, verify_webhook

__version__ = "0.1.0"

__all__ = [
    "Client",
    "RunHandle",
    "StartedRun",
    "TrackedRun",
    "Tracker",
    "CheckpointResult",
    "Watcher",
    "CHANGE_TYPES",
    "new_run_id",
    "verify_webhook",
    "sign_webhook",
    "TERMINAL_STATUSES",
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
]
