"""verify_webhook(): checks a webhook delivery per the Standard Webhooks specification.

A delivery is a POST whose headers carry ``webhook-id``, ``webhook-timestamp`` (Unix
seconds) and ``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256>`` of
``{id}.{timestamp}.{body}`` under the endpoint's secret, ``whsec_<base64 key>``).
Receivers deduplicate on ``webhook-id``: it is the same on every retry of a delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

from .errors import WebhookVerificationError

__all__ = ["verify_webhook", "sign_webhook", "DEFAULT_TOLERANCE_S"]

#: How far a delivery's timestamp may be from now, either way (the specification's 5 minutes).
DEFAULT_TOLERANCE_S = 5 * 60
_PREFIX = "whsec_"

Headers = Union[Mapping[str, str], Iterable[Tuple[str, str]]]


def _key(secret: Union[str, bytes]) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = secret[len(_PREFIX) :] if secret.startswith(_PREFIX) else secret
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise WebhookVerificationError(f"the webhook secret must be whsec_ followed by base64; got {secret[:10]!r}…") from err


def _header(headers: Headers, name: str) -> Optional[str]:
    items = headers.items() if isinstance(headers, Mapping) or hasattr(headers, "items") else headers
    for k, v in items:
        if k.lower() == name:
            return v if isinstance(v, str) else v.decode("latin-1") if isinstance(v, bytes) else str(v)
    return None


def sign_webhook(secret: Union[str, bytes], msg_id: str, timestamp: int, body: Union[str, bytes]) -> str:
    """The ``webhook-signature`` value for a delivery (``v1,<base64>``); useful in tests."""
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    mac = hmac.new(_key(secret), f"{msg_id}.{timestamp}.".encode("utf-8") + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def verify_webhook(
    secret: Union[str, bytes],
    headers: Headers,
    body: Union[str, bytes],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: Optional[float] = None,
) -> Any:
    """Verifies a delivery and returns its parsed JSON payload (``{type, timestamp, data}``).

    Pass the body exactly as received (bytes, before any JSON parsing). Raises
    WebhookVerificationError when a header is missing, the timestamp is outside
    ``tolerance_s`` or no ``v1`` signature matches.

    >>> event = verify_webhook(os.environ["RUNLEDGER_WEBHOOK_SECRET"], request.headers, await request.body())
    >>> if event["type"] == "run.finished": ...
    """
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", stamp), ("webhook-signature", signatures)) if not v]
    if missing:
        raise WebhookVerificationError(f"missing required header(s): {', '.join(missing)}")
    assert msg_id is not None and stamp is not None and signatures is not None
    try:
        ts = int(stamp.strip())
    except ValueError as err:
        raise WebhookVerificationError(f"webhook-timestamp must be Unix seconds; got {stamp!r}") from err
    current = time.time() if now is None else now
    if current - ts > tolerance_s:
        raise WebhookVerificationError(f"message timestamp too old: {ts} is more than {tolerance_s} s before now")
    if ts - current > tolerance_s:
        raise WebhookVerificationError(f"message timestamp too new: {ts} is more than {tolerance_s} s after now")
    expected = sign_webhook(secret, msg_id, ts, body)[3:].encode("ascii")
    for candidate in signatures.split(" "):
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode("ascii", "replace"), expected):
            payload = body.decode("utf-8") if isinstance(body, bytes) else body
            try:
                return json.loads(payload)
            except ValueError as err:
                raise WebhookVerificationError("the signed body is not JSON") from err
    raise WebhookVerificationError("no matching v1 signature: the body, the secret or the headers differ from what was signed")
