"""track(): a block of code (or a function) as a run, never left running by user code.

The run is started with a lease, heartbeated from a daemon thread while the block runs,
completed on a clean exit, and failed with the exception's type, message and traceback
otherwise; the exception is always re-raised. A Ctrl-C (KeyboardInterrupt) or an asyncio
cancellation cancels the run, as signals do for ``runledger exec``. If even the final
call cannot reach the server, the lease runs out and the server's reaper times the run
out: it is never left "running".
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Type, TypeVar, cast

from ._http import encode_json
from .client import StartedRun, error_of
from .errors import LedgerError
from .types import TERMINAL_STATUSES, Json, JsonObject

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

__all__ = ["TrackedRun", "Tracker", "decorate"]

log = logging.getLogger("runledger")

DEFAULT_LEASE_S = 60
F = TypeVar("F", bound=Callable[..., Any])


class TrackedRun(StartedRun):
    """The run inside ``with client.track(...) as run``.

    Set ``output``, ``statistics`` or ``notes`` in the block: they are stored by the
    completion. ``cancelled`` is set when a heartbeat finds the run finished elsewhere
    (cancelled by an operator, timed out): check it between steps to stop early.
    """

    def __init__(self, started: StartedRun) -> None:
        super().__init__(started._client, started.run, started.created)
        self.output: Json = None
        self.statistics: Optional[JsonObject] = None
        self.notes: Optional[str] = None
        self.cancelled = threading.Event()


class Tracker:
    """The context manager ``Client.track`` returns (sync ``with`` and ``async with``)."""

    def __init__(self, client: "Client", job: str, subject: Optional[str], heartbeat_every_s: Optional[float], start: Dict[str, Any]) -> None:
        self._client = client
        self._job = job
        self._subject = subject
        self._start = dict(start)
        self._start.setdefault("lease_s", DEFAULT_LEASE_S)
        lease = self._start["lease_s"]
        self._every = heartbeat_every_s if heartbeat_every_s is not None else (lease / 3 if isinstance(lease, (int, float)) else 20)
        self._run: Optional[TrackedRun] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # Step 1: start the run and the heartbeats.
    def __enter__(self) -> TrackedRun:
        if self._run is not None:
            raise RuntimeError("a Tracker runs once; call client.track(...) again for another run")
        run = TrackedRun(self._client.start_run(self._job, self._subject, **self._start))
        self._run = run
        self._thread = threading.Thread(target=self._beat, name=f"runledger-heartbeat-{run.id}", daemon=True)
        self._thread.start()
        return run

    def _beat(self) -> None:
        run = self._run
        assert run is not None
        while not self._stop.wait(self._every):
            try:
                status = run.heartbeat()["status"]
            except LedgerError as err:
                # A heartbeat refused because the run is over (cancelled elsewhere, timed out): tell the worker.
                if err.code in ("run_finished", "invalid_transition"):
                    run.cancelled.set()
                    return
                log.warning("runledger: heartbeat of run %s refused: %s", run.id, err)
                continue
            except Exception as err:  # noqa: BLE001 - a missed beat is retried on the next tick; the lease tolerates one miss
                log.warning("runledger: heartbeat of run %s failed: %s", run.id, err)
                continue
            if status in TERMINAL_STATUSES:
                run.cancelled.set()
                return

    def _stop_beats(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    # Step 2: finish the run as the block ended.
    def __exit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> Literal[False]:
        self._stop_beats()
        run = self._run
        assert run is not None
        if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
            self._complete(run)
            return False
        try:
            if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError, GeneratorExit)):
                run.cancel(reason=f"{type(exc).__name__}{': ' + str(exc) if str(exc) else ''}")
            else:
                run.fail(exc)
        except Exception as err:  # noqa: BLE001 - the caller's exception matters more than ours
            if isinstance(err, LedgerError) and err.code == "run_finished":
                return False  # already finished elsewhere (cancelled, timed out)
            log.error("runledger: could not record the end of run %s (%s); the lease will time it out: %s", run.id, type(exc).__name__, err)
        return False  # re-raise the caller's exception

    def _complete(self, run: TrackedRun) -> None:
        try:
            # Checked before sending: an output JSON cannot hold is recorded as the failure it is.
            encode_json(run.output, "output")
            encode_json(run.statistics, "statistics")
            run.complete(run.output, statistics=run.statistics, notes=run.notes)
        except Exception as err:
            if isinstance(err, LedgerError) and err.code == "run_finished":
                raise  # finished elsewhere (e.g. cancelled by an operator): nothing left to record
            try:
                run.fail(err)
            except Exception:  # noqa: BLE001
                log.error("runledger: could not complete or fail run %s; the lease will time it out", run.id)
            raise

    async def __aenter__(self) -> TrackedRun:
        return await asyncio.get_running_loop().run_in_executor(None, self.__enter__)

    async def __aexit__(
        self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException], tb: Optional[TracebackType]
    ) -> Literal[False]:
        return await asyncio.get_running_loop().run_in_executor(None, self.__exit__, exc_type, exc, tb)


def decorate(client: "Client", job: str, subject: Any, heartbeat_every_s: Optional[float], start: Dict[str, Any]) -> Callable[[F], F]:
    def decorator(fn: F) -> F:
        sig = inspect.signature(fn)
        wants_run = "run" in sig.parameters

        def subject_of(args: Any, kwargs: Any) -> Optional[str]:
            return cast(Optional[str], subject(*args, **kwargs) if callable(subject) else subject)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                tracker = Tracker(client, job, subject_of(args, kwargs), heartbeat_every_s, start)
                async with tracker as run:
                    if wants_run:
                        kwargs["run"] = run
                    value = await fn(*args, **kwargs)
                    run.output = value
                return value

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracker = Tracker(client, job, subject_of(args, kwargs), heartbeat_every_s, start)
            with tracker as run:
                if wants_run:
                    kwargs["run"] = run
                value = fn(*args, **kwargs)
                run.output = value
            return value

        return wrapper  # type: ignore[return-value]

    return decorator
