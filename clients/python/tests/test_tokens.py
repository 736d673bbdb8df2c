"""Tokens over HTTP (admin scope): create, list without secrets, revoke (once or twice); a revoked
token is refused from the next request on and its open change stream ends with that refusal."""

from __future__ import annotations

import queue
import threading
from typing import Any, List

import pytest

from runledger import Client, ForbiddenError, NotFoundError, ServerUnreachableError, UnauthorizedError, ValidationError
from support import FaultyProxy, Server


def test_tokens_are_created_listed_and_revoked(own_server: Server) -> None:
    store = own_server.store
    admin_token = store.cli("--namespace", "team-a", "tokens", "create", "--scope", "admin").strip().splitlines()[-1]
    own_server.flags += ["--auth", "required"]
    own_server.start()
    admin = Client(own_server.url, token=admin_token, namespace="team-a")

    created = admin.create_token("read", name="dashboard")
    assert (created["namespace"], created["scope"]) == ("team-a", "read")
    assert created["token"].startswith("rl_")
    reader = Client(own_server.url, token=created["token"], namespace="team-a")
    assert list(reader.list_runs()) == []

    listed = admin.list_tokens()
    mine = next(t for t in listed if t["id"] == created["id"])
    assert (mine["name"], mine["scope"], mine["revokedAt"]) == ("dashboard", "read", None)
    assert all("token" not in t for t in listed)  # never the secrets
    assert listed[0]["id"] == created["id"]  # newest first

    with pytest.raises(ForbiddenError):
        reader.list_tokens()
    with pytest.raises(ForbiddenError):
        admin.in_namespace("team-b").list_tokens()  # a token manages its own namespace's tokens only
    with pytest.raises(ValidationError, match="scope must be one of read, write, admin") as bad:
        admin.create_token("superuser")
    assert bad.value.details[0]["field"] == "scope"

    # A watch by the reader is open when its token is revoked: the stream ends, the refusal is raised.
    watcher = reader.watch()
    ended: "queue.Queue[Any]" = queue.Queue()

    def follow() -> None:
        try:
            for change in watcher:
                ended.put(change)
        except BaseException as err:  # noqa: BLE001
            ended.put(err)

    threading.Thread(target=follow, daemon=True).start()
    revoked = admin.revoke_token(created["id"])
    assert revoked["id"] == created["id"] and revoked["revokedAt"] is not None
    assert isinstance(ended.get(timeout=60), UnauthorizedError)
    assert admin.revoke_token(created["id"])["revokedAt"] == revoked["revokedAt"]  # twice: a no-op
    with pytest.raises(UnauthorizedError):
        reader.get_run("anything")
    with pytest.raises(NotFoundError):
        admin.revoke_token("0123456789abcdef")

    # A lost answer to a create is not repeated: it would leave a second token whose secret nobody saw.
    proxy = FaultyProxy(own_server.url)
    try:
        proxy.drop_responses(1)
        with pytest.raises(ServerUnreachableError, match="not retried"):
            Client(proxy.url, token=admin_token, namespace="team-a").create_token("write", name="lost")
        assert proxy.count("POST /v1/tokens") == 1
    finally:
        proxy.close()
    names: List[Any] = [t["name"] for t in admin.list_tokens()]
    assert names.count("lost") == 1
