"""The shapes the server answers with, as ``TypedDict``s.

Values are the server's JSON as-is (camelCase keys, ISO 8601 UTC timestamps as strings),
so what was stored reads back exactly, and these dicts can be passed back unchanged.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict, Union

__all__ = [
    "Json",
    "JsonObject",
    "RunStatus",
    "TERMINAL_STATUSES",
    "RunError",
    "Run",
    "RunPage",
    "Event",
    "EventInput",
    "EventPage",
    "AppendResult",
    "Checkpoint",
    "SubjectStatus",
    "SubjectPage",
]

Json = Any
JsonObject = Dict[str, Any]
RunStatus = str
#: A run in one of these is finished for good.
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "timed_out"})


class RunError(TypedDict, total=False):
    type: str
    message: str
    details: Json
    stack: str


class Run(TypedDict):
    namespace: str
    id: str
    job: str
    subject: Optional[str]
    trigger: Optional[str]
    actor: Optional[str]
    parentId: Optional[str]
    status: RunStatus
    attempt: int
    externalIds: Dict[str, str]
    params: JsonObject
    tags: Dict[str, str]
    notes: Optional[str]
    output: Json
    statistics: Optional[JsonObject]
    error: Optional[RunError]
    progress: Json
    createdAt: str
    startedAt: Optional[str]
    finishedAt: Optional[str]
    heartbeatAt: Optional[str]
    leaseS: Optional[int]
    deadlineAt: Optional[str]
    suspect: bool
    version: int
    lastSeq: int
    source: Optional[str]
    sourceId: Optional[str]


class _RunPage(TypedDict):
    runs: List[Run]
    nextCursor: Optional[str]


class RunPage(_RunPage, total=False):
    total: int  # with list_runs_page(with_total=True)


class Event(TypedDict):
    runId: str
    seq: int
    key: Optional[str]
    type: str
    level: Optional[str]
    at: str
    recordedAt: str
    body: Json
    hash: str


class EventInput(TypedDict, total=False):
    key: str
    type: str
    level: str
    at: str
    body: Json


class EventPage(TypedDict):
    events: List[Event]
    nextAfterSeq: Optional[int]


class _AppendResult(TypedDict):
    seq: int
    duplicate: bool


class AppendResult(_AppendResult, total=False):
    key: str  # present when the event has one


class _Checkpoint(TypedDict):
    runId: str
    name: str
    kind: Optional[str]
    ref: Optional[str]
    metadata: JsonObject
    contentHash: str
    seq: int
    createdAt: str


class Checkpoint(_Checkpoint, total=False):
    data: Json  # present when read whole (get_checkpoint), absent in lists


class SubjectStatus(TypedDict, total=False):
    namespace: str
    job: str
    subject: str
    runId: str
    status: RunStatus
    trigger: Optional[str]
    finishedAt: str
    previousStatus: Optional[str]
    statusChangedAt: str
    recentRuns: List[Run]


class SubjectPage(TypedDict):
    subjects: List[SubjectStatus]
    nextCursor: Optional[str]


StrMap = Dict[str, str]
ErrorInput = Union[str, BaseException, RunError, Dict[str, Any]]
