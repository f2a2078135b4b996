"""Who asked: the client address a request came from, as API Gateway saw it.

Payload format 2.0 names it in ``requestContext.http.sourceIp``; a client cannot set
it. (Behind the optional CDN it is CloudFront's own address: docs/protections.md.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def caller_address(event: Mapping[str, Any]) -> str | None:
    http = (event.get("requestContext") or {}).get("http") or {}
    address = http.get("sourceIp")
    return address if isinstance(address, str) and address else None
