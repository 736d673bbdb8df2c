from __future__ import annotations

import sys
from typing import Iterator

import pytest

from support import BACKEND, PYTHON_ROOT, Server, Store

# The package under test is the checkout's, whatever is installed.
sys.path.insert(0, str(PYTHON_ROOT))

from runledger import Client  # noqa: E402


def pytest_report_header() -> str:
    return f"runledger backend: {BACKEND}"


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    """One `runledger serve` for the session (tests use their own run ids and jobs).
    The reaper is off: tests that need it call client.reap()."""
    store = Store()
    srv = Server(store, "--reap-interval-s", "0").start()
    try:
        yield srv
    finally:
        srv.stop()
        store.cleanup()


@pytest.fixture()
def client(server: Server) -> Iterator[Client]:
    c = Client(server.url)
    yield c
    c.close()


@pytest.fixture()
def own_server() -> Iterator[Server]:
    """A server of the test's own (for restarts and other flags); started by the test."""
    store = Store()
    srv = Server(store, "--reap-interval-s", "0")
    try:
        yield srv
    finally:
        srv.kill()
        store.cleanup()
