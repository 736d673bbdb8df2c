"""Configuration, unreachable servers, and the retry rules, over a proxy that swallows answers."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from typing import Iterator, List

import pytest

from runledger import Client, ConfigurationError, HttpError, ServerUnreachableError, ValidationError
from support import FaultyProxy, Server, free_port


@pytest.fixture()
def proxy(server: Server) -> Iterator[FaultyProxy]:
    p = FaultyProxy(server.url)
    yield p
    p.close()


def test_a_missing_server_url_is_a_clear_error_never_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNLEDGER_SERVER", raising=False)
    with pytest.raises(ConfigurationError, match="no runledger server configured.*RUNLEDGER_SERVER") as caught:
        Client()
    assert caught.value.code == "configuration"
    with pytest.raises(ConfigurationError):
        Client("  ")
    with pytest.raises(ValidationError, match="base_url must be an http"):
        Client("postgres://db/ledger")
    with pytest.raises(ValidationError, match="base_url must be an http"):
        Client("127.0.0.1:7070")
    with pytest.raises(ValidationError, match="retries must be a whole number, 0 or more; got -1"):
        Client("http://127.0.0.1:7070", retries=-1)
    with pytest.raises(ValidationError, match="timeout_s must be more than 0; got 0"):
        Client("http://127.0.0.1:7070", timeout_s=0)


def test_the_environment_configures_the_client(monkeypatch: pytest.MonkeyPatch, server: Server) -> None:
    monkeypatch.setenv("RUNLEDGER_SERVER", server.url + "/")
    monkeypatch.setenv("RUNLEDGER_NAMESPACE", "from-env")
    client = Client()
    assert client.base_url == server.url
    assert client.start_run("env-job").run["namespace"] == "from-env"


def test_an_unreachable_server_is_reported_after_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    client = Client(f"http://127.0.0.1:{port}", retries=2)
    with pytest.raises(ServerUnreachableError, match=f"cannot reach runledger server at http://127.0.0.1:{port}.*refused") as caught:
        client.start_run("nowhere")
    assert (caught.value.status, caught.value.code) == (0, "unavailable")
    assert isinstance(caught.value, ConnectionError)


def test_a_request_that_never_reached_the_server_is_retried_even_when_not_idempotent(server: Server) -> None:
    # Nothing listens on the port at first; the proxy opens it while the client backs off.
    port = free_port()
    run = Client(server.url).start_run("late-server")
    relay = []
    opener = threading.Timer(0.15, lambda: relay.append(FaultyProxy(server.url, port)))
    opener.start()
    result = Client(f"http://127.0.0.1:{port}", retries=8).run(run.id).event("unkeyed", {"n": 1})
    assert result["seq"] == 2  # not idempotent, but the refused attempts never reached a server
    opener.join()
    relay[0].close()


def test_a_lost_answer_to_a_create_is_retried_and_finds_the_same_run(server: Server, proxy: FaultyProxy) -> None:
    client = Client(proxy.url)
    proxy.drop_responses(1)
    started = client.start_run("lost-answers", "acme")
    assert proxy.count("POST /v1/runs?") == 2  # sent twice
    assert started.created is False  # the first attempt created it; the retry found it
    assert len(list(Client(server.url).list_runs(job="lost-answers", subject="acme"))) == 1


def test_keyed_events_are_retried_but_an_unkeyed_batch_is_never_sent_twice(server: Server, proxy: FaultyProxy) -> None:
    client = Client(proxy.url)
    run = client.start_run("lost-events")
    proxy.drop_responses(1)
    assert run.event("keyed", {"n": 1}, key="k1") == {"seq": 2, "key": "k1", "duplicate": True}

    proxy.drop_responses(1)
    with pytest.raises(ServerUnreachableError, match="not retried"):
        run.events([{"type": "unkeyed", "body": 1}, {"type": "unkeyed", "body": 2}])
    assert proxy.count(f"POST /v1/runs/{run.id}/events") == 3  # 2 for the keyed event, 1 for the batch
    stored = list(Client(server.url).run(run.id).iter_events())
    assert [e["type"] for e in stored] == ["run.status", "keyed", "unkeyed", "unkeyed"]  # once, not twice

    # Terminal calls repeat safely: the lost answer's completion is found by the retry.
    proxy.drop_responses(1)
    assert run.complete({"ok": True})["status"] == "completed"


def test_a_retry_is_not_sent_for_a_compare_and_set(server: Server, proxy: FaultyProxy) -> None:
    client = Client(proxy.url)
    run = client.start_run("cas")
    version = run.get()["version"]
    proxy.drop_responses(1)
    with pytest.raises(ServerUnreachableError):
        run.update(tags={"a": "1"}, if_version=version)
    assert proxy.count(f"PATCH /v1/runs/{run.id}") == 1
    assert Client(server.url).get_run(run.id)["tags"] == {"a": "1"}


def test_a_server_that_does_not_answer_in_time_is_a_timeout(server: Server) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)  # accepts connections, never answers
    port = listener.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", timeout_s=0.3, retries=1)
    run = client.run("some-run")
    began = time.monotonic()
    with pytest.raises(ServerUnreachableError, match="timed out"):
        run.get()
    assert time.monotonic() - began < 30
    listener.close()


def test_a_pooled_connection_the_server_closed_is_not_used(server: Server, proxy: FaultyProxy) -> None:
    client = Client(proxy.url)
    run = client.start_run("keep-alive")
    assert run.event("before")["seq"] == 2  # the connection is now idle in the pool
    proxy.cut_all()  # the server side closes it, as servers do with idle keep-alive connections
    # An unkeyed event (never retried once sent) must go out on a fresh connection, not the dead one.
    assert run.event("after")["seq"] == 3
    assert proxy.count(f"POST /v1/runs/{run.id}/events") == 2


class _Unavailable(http.server.BaseHTTPRequestHandler):
    seen: List[str] = []

    def _answer(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = b"upstream is down"
        self.send_response(503)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_a_503_is_retried_for_idempotent_calls_only_and_then_reported() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{httpd.server_address[1]}", retries=2)
        with pytest.raises(HttpError, match="HTTP 503 from GET /v1/runs/r1: upstream is down") as caught:
            client.get_run("r1")
        assert caught.value.status == 503
        assert len(_Unavailable.seen) == 3  # the first try and two retries
        _Unavailable.seen.clear()
        with pytest.raises(HttpError):
            client.run("r1").event("unkeyed")
        assert len(_Unavailable.seen) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_pruned_problem_is_a_pruned_error_carrying_the_tombstone() -> None:
    from runledger import PrunedError
    from runledger.errors import error_from_problem

    tombstone = {"id": "r1", "job": "j", "lastSeq": 3, "lastHash": "ab" * 32}
    err = error_from_problem(410, {"code": "pruned", "detail": "run r1 was pruned", "errors": [], "tombstone": tombstone})
    assert isinstance(err, PrunedError)
    assert err.code == "pruned"
    assert err.tombstone == tombstone
    bare = error_from_problem(410, {"code": "pruned", "detail": "gone"})
    assert isinstance(bare, PrunedError) and bare.tombstone == {}
