"""track() and @tracked: completed on success, failed with the traceback on an exception
(which is re-raised), heartbeated meanwhile, never left running."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import pytest

from runledger import Client, RunFinishedError, ValidationError


def test_track_completes_with_what_the_block_set(client: Client) -> None:
    with client.track(job="agent-md", subject="acme/api", trigger="manual", lease_s=30) as run:
        assert run.get()["status"] == "running"
        assert run.get()["leaseS"] == 30
        run.event("agent.step", {"step": "clone"})
        run.output = {"agentMd": "# AGENTS.md"}
        run.statistics = {"inputTokens": 1200}
        run.notes = "done by the recipe"
    stored = client.get_run(run.id)
    assert stored["status"] == "completed"
    assert stored["output"] == {"agentMd": "# AGENTS.md"}
    assert stored["statistics"] == {"inputTokens": 1200}
    assert stored["notes"] == "done by the recipe"
    assert stored["trigger"] == "manual"


def failing_step() -> None:
    raise ValueError("storyboard 7 failed")


def test_track_fails_with_type_message_and_traceback_and_reraises(client: Client) -> None:
    holder = {}
    with pytest.raises(ValueError, match="storyboard 7 failed"):
        with client.track(job="compliance-check", subject="alpha") as run:
            holder["id"] = run.id
            failing_step()
    stored = client.get_run(holder["id"])
    assert stored["status"] == "failed"
    assert stored["error"]["type"] == "ValueError"
    assert stored["error"]["message"] == "storyboard 7 failed"
    assert "Traceback (most recent call last)" in stored["error"]["stack"]
    assert "failing_step" in stored["error"]["stack"]


class RemoteError(Exception):
    pass


def test_a_custom_exception_is_named_with_its_module_and_a_blank_message_with_its_type(client: Client) -> None:
    ids = []
    with pytest.raises(RemoteError):
        with client.track(job="remote") as run:
            ids.append(run.id)
            raise RemoteError()
    error = client.get_run(ids[0])["error"]
    assert error["type"] == f"{__name__}.RemoteError"
    assert error["message"] == error["type"]


def test_a_keyboard_interrupt_cancels_the_run(client: Client) -> None:
    ids = []
    with pytest.raises(KeyboardInterrupt):
        with client.track(job="interrupted") as run:
            ids.append(run.id)
            raise KeyboardInterrupt
    stored = client.get_run(ids[0])
    assert stored["status"] == "cancelled"


def test_an_output_json_cannot_hold_fails_the_run_rather_than_leave_it_running(client: Client) -> None:
    ids = []
    with pytest.raises(ValidationError, match="output must be JSON"):
        with client.track(job="bad-output") as run:
            ids.append(run.id)
            run.output = {"when": object()}
    stored = client.get_run(ids[0])
    assert stored["status"] == "failed"
    assert "output must be JSON" in stored["error"]["message"]


def test_heartbeats_keep_a_short_lease_alive_while_the_block_works(client: Client) -> None:
    with client.track(job="long-step", lease_s=2, heartbeat_every_s=0.1) as run:
        # Work for longer than twice the lease (when the reaper would time the run out), then reap.
        began = time.monotonic()
        beats = set()
        while time.monotonic() - began < 5:
            beats.add(run.get()["heartbeatAt"])
            time.sleep(0.1)
        assert len(beats) > 5, "no heartbeats arrived"
        client.reap()
        assert run.get()["status"] == "running"
    assert client.get_run(run.id)["status"] == "completed"


def test_without_heartbeats_the_same_lease_is_timed_out(client: Client) -> None:
    """The counterpart of the test above: it shows that heartbeats are what kept that run alive."""
    run = client.start_run("long-step", lease_s=2)
    deadline = time.monotonic() + 30
    while client.get_run(run.id)["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
        client.reap()
    assert client.get_run(run.id)["status"] == "timed_out"


def test_a_run_cancelled_elsewhere_is_seen_by_the_worker(client: Client) -> None:
    with pytest.raises(RunFinishedError):
        with client.track(job="cancel-me", lease_s=30, heartbeat_every_s=0.1) as run:
            client.run(run.id).cancel("operator stop")
            assert run.cancelled.wait(30), "the heartbeat thread never noticed the cancellation"
    # The block ended cleanly but the run was cancelled: completion is refused, and the run stays cancelled.
    assert client.get_run(run.id)["status"] == "cancelled"


def test_tracked_decorator_returns_the_value_and_stores_it_as_output(client: Client) -> None:
    job = f"tracked-{secrets.token_hex(4)}"

    @client.tracked(job=job, subject=lambda repo, run=None: repo, trigger="schedule")
    def build(repo: str, run=None):  # type: ignore[no-untyped-def]
        run.event("agent.step", {"repo": repo})
        return {"repo": repo, "ok": True}

    assert build("acme/api") == {"repo": "acme/api", "ok": True}
    assert build.__name__ == "build"
    [stored] = list(client.list_runs(job=job))
    assert (stored["subject"], stored["status"], stored["trigger"]) == ("acme/api", "completed", "schedule")
    assert stored["output"] == {"repo": "acme/api", "ok": True}
    assert stored["lastSeq"] == 3  # started, the step, completed

    @client.tracked(job=job, subject="broken")
    def broken() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        broken()
    [failed] = list(client.list_runs(job=job, status="failed"))
    assert failed["error"]["type"] == "RuntimeError"


def test_tracked_works_on_coroutines_and_a_cancelled_task_cancels_the_run(client: Client) -> None:
    job = f"async-{secrets.token_hex(4)}"
    started = threading.Event()

    @client.tracked(job=job, subject="ok")
    async def fine(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    @client.tracked(job=job, subject="slow")
    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    async def main() -> None:
        assert await fine(21) == 42
        task = asyncio.ensure_future(slow())
        while not started.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    by_subject = {r["subject"]: r for r in client.list_runs(job=job)}
    assert by_subject["ok"]["status"] == "completed" and by_subject["ok"]["output"] == 42
    assert by_subject["slow"]["status"] == "cancelled"


def test_async_with_track(client: Client) -> None:
    async def main() -> str:
        async with client.track(job="async-with") as run:
            run.output = "fine"
            return run.id

    run_id = asyncio.run(main())
    assert client.get_run(run_id)["output"] == "fine"
