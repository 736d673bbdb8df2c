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
    "Change",
    "ChangePage",
    "Expectation",
    "RetentionRule",
    "RetentionRules",
    "PruneResult",
    "ExportedRun",
    "ExportPage",
    "RestoreResult",
    "TokenInfo",
    "CreatedToken",
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
    totalCapped: bool  # with with_total: more match than the server counts (total is then the cap)


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
    # Health: the last completed and last failed (or timed out) run, and the streaks since.
    lastSuccessAt: Optional[str]
    lastFailureAt: Optional[str]
    consecutiveSuccesses: int
    consecutiveFailures: int
    # The job's expectation: the latest start, the first slot after it, past slot + grace with no start.
    lastStartedAt: Optional[str]
    nextDueAt: Optional[str]
    overdue: bool
    recentRuns: List[Run]  # get_subject only


class SubjectPage(TypedDict):
    subjects: List[SubjectStatus]
    nextCursor: Optional[str]


class Change(TypedDict):
    id: int
    cursor: str  # pass as `after` to resume right after this change
    type: str  # one of runledger.CHANGE_TYPES
    at: str
    namespace: str
    runId: Optional[str]
    job: str
    subject: Optional[str]
    data: Json


class ChangePage(TypedDict):
    changes: List[Change]
    nextAfter: str  # resume here: past every change this read could see, filtered ones included
    heldBack: bool  # committed changes wait for an older open transaction: read again shortly


class Expectation(TypedDict):
    namespace: str
    job: str
    every: Optional[str]
    cron: Optional[str]
    timezone: str
    grace: str
    perSubject: bool
    createdAt: str
    updatedAt: str
    lastStartedAt: Optional[str]  # per_subject False: the job's own schedule
    nextDueAt: Optional[str]
    overdue: bool


class _RetentionRule(TypedDict):
    keepDays: int


class RetentionRule(_RetentionRule, total=False):
    job: str  # absent: the namespace's default, which a job's own rule overrides
    keepLastPerSubject: int


class _StoredRule(_RetentionRule):
    keepLastPerSubject: int
    updatedAt: str


class StoredRetentionRule(_StoredRule, total=False):
    job: str


class RetentionRules(TypedDict):
    rules: List[StoredRetentionRule]


class _PruneResult(TypedDict):
    runs: List[Dict[str, Any]]  # {id, job, subject, finishedAt, lastSeq}
    pruned: int
    events: int
    checkpoints: int
    more: bool


class PruneResult(_PruneResult, total=False):
    eligible: int  # dry run only: every run the rules allow pruning now


class ExportedRun(TypedDict):
    run: Dict[str, Any]
    events: List[Dict[str, Any]]
    checkpoints: List[Dict[str, Any]]


class ExportPage(TypedDict):
    runs: List[ExportedRun]
    nextAfter: Optional[str]


class RestoreResult(TypedDict):
    results: List[Dict[str, Any]]  # {index, id, status: restored | duplicate | invalid, …}
    restored: int
    duplicates: int
    invalid: int


class TokenInfo(TypedDict):
    id: str
    namespace: str
    scope: str
    name: Optional[str]
    createdAt: str
    revokedAt: Optional[str]
    lastUsedAt: Optional[str]


class CreatedToken(TypedDict):
    id: str
    token: str  # the secret, shown only in this answer
    namespace: str
    scope: str


StrMap = Dict[str, str]
ErrorInput = Union[str, BaseException, RunError, Dict[str, Any]]
