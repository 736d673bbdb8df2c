"""Tokens: the client sends its token as a bearer; refusals are UnauthorizedError and
ForbiddenError with the server's messages, for calls and for tails alike."""

from __future__ import annotations

import pytest

from runledger import Client, ForbiddenError, UnauthorizedError
from support import Server


def test_tokens_scopes_and_namespaces(own_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    store = own_server.store
    write = store.cli("--namespace", "team-a", "tokens", "create", "--scope", "write").strip().splitlines()[-1]
    read = store.cli("--namespace", "team-a", "tokens", "create", "--scope", "read").strip().splitlines()[-1]
    own_server.flags += ["--auth", "required"]
    own_server.start()

    with pytest.raises(UnauthorizedError) as caught:
        Client(own_server.url, namespace="team-a").start_run("guarded")
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)

    writer = Client(own_server.url, token=write, namespace="team-a")
    run = writer.start_run("guarded")
    run.complete({"ok": True})

    reader = Client(own_server.url, token=read, namespace="team-a")
    assert reader.get_run(run.id)["output"] == {"ok": True}
    assert [e["seq"] for e in reader.tail(run.id)] == [1, 2]
    with pytest.raises(ForbiddenError) as denied:
        reader.start_run("guarded")
    assert (denied.value.code, denied.value.status) == ("forbidden", 403)
    assert "scope" in denied.value.message

    with pytest.raises(ForbiddenError):
        writer.in_namespace("team-b").start_run("guarded")
    # A tail refused is final: raised at once, not retried.
    with pytest.raises(UnauthorizedError):
        list(Client(own_server.url, token="rl_not-a-token", namespace="team-a").tail(run.id))

    monkeypatch.setenv("RUNLEDGER_TOKEN", write)
    assert Client(own_server.url, namespace="team-a").get_run(run.id)["status"] == "completed"
