"""verify_webhook() against the Standard Webhooks reference implementation (the npm
`standardwebhooks` package, run as a subprocess): what it signs verifies here, what is
signed here verifies there, and anything altered is refused by both."""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any, Dict, List

import pytest

from runledger import WebhookVerificationError, sign_webhook, verify_webhook
from support import run_node

# Signs each case with the reference library, and verifies the signatures given back.
REFERENCE = r"""
const { Webhook } = require('standardwebhooks');
let input = '';
process.stdin.on('data', (d) => (input += d)).on('end', () => {
  const out = JSON.parse(input).map((c) => {
    const wh = new Webhook(c.secret);
    const signature = wh.sign(c.id, new Date(c.timestamp * 1000), c.body);
    let verifies = null;
    if (c.check) {
      try {
        wh.verify(c.body, { 'webhook-id': c.id, 'webhook-timestamp': String(c.timestamp), 'webhook-signature': c.check });
        verifies = true;
      } catch (err) {
        verifies = String(err.message);
      }
    }
    return { signature, verifies };
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def reference(cases: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return json.loads(run_node(REFERENCE, input=json.dumps(cases)))  # type: ignore[no-any-return]


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def headers(msg_id: str, ts: int, signature: str) -> Dict[str, str]:
    return {"Webhook-Id": msg_id, "Webhook-Timestamp": str(ts), "Webhook-Signature": signature}


BODIES = [
    json.dumps({"type": "run.finished", "timestamp": "2026-12-03T08:00:00.000Z", "data": {"run": {"id": "r1", "status": "failed"}}}),
    json.dumps({"type": "subject.changed", "data": {"subject": "Genesis — ünïcode ✓", "status": "completed"}}, ensure_ascii=False),
    "{}",
]


def test_deliveries_signed_by_the_reference_verify_and_return_the_payload() -> None:
    now = int(time.time())
    cases = [{"secret": new_secret(), "id": f"msg_{i}", "timestamp": now - i, "body": body} for i, body in enumerate(BODIES)]
    for case, ref in zip(cases, reference(cases)):
        assert ref["signature"].startswith("v1,")
        # Our signer agrees byte for byte, and the delivery verifies, as bytes or as text.
        assert sign_webhook(case["secret"], case["id"], case["timestamp"], case["body"]) == ref["signature"]
        h = headers(case["id"], case["timestamp"], ref["signature"])
        assert verify_webhook(case["secret"], h, case["body"].encode("utf-8")) == json.loads(case["body"])
        assert verify_webhook(case["secret"], list(h.items()), case["body"]) == json.loads(case["body"])


def test_our_signatures_verify_with_the_reference_and_tampering_is_refused_by_both() -> None:
    now = int(time.time())
    secret = new_secret()
    body = BODIES[0]
    good = sign_webhook(secret, "msg_1", now, body)
    other_secret = sign_webhook(new_secret(), "msg_1", now, body)
    cases = [
        {"secret": secret, "id": "msg_1", "timestamp": now, "body": body, "check": good},
        {"secret": secret, "id": "msg_1", "timestamp": now, "body": body, "check": other_secret},
        {"secret": secret, "id": "msg_1", "timestamp": now, "body": body + " ", "check": good},
        {"secret": secret, "id": "msg_2", "timestamp": now, "body": body, "check": good},
        {"secret": secret, "id": "msg_1", "timestamp": now, "body": body, "check": f"v1a,{good[3:]} {other_secret} v1,{good[3:]}"},
    ]
    verdicts = [r["verifies"] for r in reference(cases)]
    ours = []
    for c in cases:
        try:
            verify_webhook(c["secret"], headers(c["id"], c["timestamp"], c["check"]), c["body"])
            ours.append(True)
        except WebhookVerificationError:
            ours.append(False)
    assert ours == [True, False, False, False, True]
    assert [v is True for v in verdicts] == ours


def test_the_timestamp_must_be_within_the_tolerance_either_way() -> None:
    secret = new_secret()
    now = 1_800_000_000
    body = BODIES[2]
    for ts, ok in [(now, True), (now - 300, True), (now - 301, False), (now + 300, True), (now + 301, False)]:
        h = headers("msg_t", ts, sign_webhook(secret, "msg_t", ts, body))
        if ok:
            assert verify_webhook(secret, h, body, now=now) == {}
        else:
            with pytest.raises(WebhookVerificationError, match="too old" if ts < now else "too new"):
                verify_webhook(secret, h, body, now=now)
    h = headers("msg_t", now - 3600, sign_webhook(secret, "msg_t", now - 3600, body))
    assert verify_webhook(secret, h, body, now=now, tolerance_s=7200) == {}


def test_missing_headers_and_bad_secrets_are_named() -> None:
    with pytest.raises(WebhookVerificationError, match="missing required header.*webhook-signature"):
        verify_webhook(new_secret(), {"webhook-id": "m", "webhook-timestamp": str(int(time.time()))}, "{}")
    with pytest.raises(WebhookVerificationError, match="webhook-timestamp must be Unix seconds"):
        verify_webhook(new_secret(), {"webhook-id": "m", "webhook-timestamp": "yesterday", "webhook-signature": "v1,x"}, "{}")
    with pytest.raises(WebhookVerificationError, match="whsec_ followed by base64"):
        verify_webhook("whsec_not base64!", headers("m", int(time.time()), "v1,x"), "{}")


def test_a_real_server_delivers_what_verify_webhook_accepts(own_server: Any) -> None:
    """End to end: create a webhook from Python, finish a run, and check the delivery that
    `runledger serve` POSTs to a receiver here with verify_webhook."""
    import http.server
    import threading

    from runledger import Client, NotFoundError

    got: List[Dict[str, Any]] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append({"headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    own_server.flags += ["--allow-private-webhooks"]
    own_server.start()
    try:
        with Client(own_server.url) as client:
            hook = client.create_webhook(f"http://127.0.0.1:{httpd.server_address[1]}/hook", ["run.finished"], description="py")
            assert hook["secret"].startswith("whsec_")
            assert [w["id"] for w in client.list_webhooks()] == [hook["id"]]
            one = client.get_webhook(hook["id"])
            assert (one["id"], one["url"], one["types"], one["description"]) == (hook["id"], hook["url"], ["run.finished"], "py")
            assert "secret" not in one  # shown only by the create
            run = client.start_run("py-webhooks", "acme")
            run.complete({"ok": True})
            deadline = time.time() + 30
            while not got and time.time() < deadline:
                time.sleep(0.05)
            assert len(got) == 1
            payload = verify_webhook(hook["secret"], got[0]["headers"], got[0]["body"])
            assert payload["type"] == "run.finished"
            assert payload["data"]["runId"] == run.id
            assert payload["data"]["run"]["status"] == "completed"
            with pytest.raises(WebhookVerificationError):
                verify_webhook(new_secret(), got[0]["headers"], got[0]["body"])
            while time.time() < deadline and client.webhook_deliveries(hook["id"])[0]["state"] != "delivered":
                time.sleep(0.05)
            [delivery] = client.webhook_deliveries(hook["id"])
            assert delivery["state"] == "delivered" and delivery["log"][0]["statusCode"] == 204
            assert client.replay_webhook(hook["id"]) == 1
            assert client.delete_webhook(hook["id"]) is True
            assert client.delete_webhook(hook["id"]) is False
            with pytest.raises(NotFoundError):
                client.get_webhook(hook["id"])
    finally:
        httpd.shutdown()
