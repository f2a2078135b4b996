"""How results and domain errors look over HTTP: the one place errors map to statuses."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from invite_proxy.domain.errors import (
    AdminRequired,
    BudgetExhausted,
    CacheEvictionFailed,
    CallerShareExhausted,
    CredentialsUnavailable,
    DiscordBlocked,
    DiscordError,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordTimeout,
    DiscordUnavailable,
    IconUnavailable,
    InvalidInput,
    InviteProxyError,
    LookupInProgress,
    LookupRecentlyFailed,
    PermissionDenied,
    UnknownIcon,
    UnknownInvite,
)
from invite_proxy.services.lookup import CacheStatus, LookupResult
from invite_proxy.services.revocation import Revocation

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer, as an HTTP API (payload format 2.0) takes it from a function."""

    status_code: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = JSON
    base64: bool = False  # the body is binary, base64-encoded as API Gateway takes it

    def for_api_gateway(self) -> dict[str, Any]:
        headers = dict(self.headers)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return {
            "statusCode": self.status_code,
            "headers": headers,
            "body": self.body,
            "isBase64Encoded": self.base64,
        }


# Most specific class first; the first isinstance match wins.
_STATUS_BY_ERROR: tuple[tuple[type[InviteProxyError], int], ...] = (
    (InvalidInput, 400),
    (PermissionDenied, 403),
    (AdminRequired, 403),
    (UnknownInvite, 404),
    (UnknownIcon, 404),
    (IconUnavailable, 502),
    (DiscordRateLimited, 429),
    (CallerShareExhausted, 429),
    (DiscordBlocked, 503),
    (DiscordTimeout, 504),
    (DiscordUnavailable, 503),
    (CredentialsUnavailable, 503),
    (CacheEvictionFailed, 503),
    (BudgetExhausted, 503),
    (LookupInProgress, 503),
    (LookupRecentlyFailed, 503),
    (DiscordMissingPermissions, 502),
    (DiscordError, 502),
)


def status_for(exc: InviteProxyError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def retry_after(seconds: float) -> str:
    """Retry-After's whole seconds: rounded up, so a client never comes back too soon."""
    return str(max(1, math.ceil(seconds)))


def error_response(exc: InviteProxyError) -> Response:
    headers = {"Cache-Control": "no-store"}
    if exc.retry_after is not None:
        headers["Retry-After"] = retry_after(exc.retry_after)
    return Response(
        status_code=status_for(exc),
        content_type=JSON,
        body=error_body(exc.code, exc.public_message),
        headers=headers,
    )


def plain_error(status: int, code: str, message: str) -> Response:
    return Response(
        status_code=status,
        content_type=JSON,
        body=error_body(code, message),
        headers={"Cache-Control": "no-store"},
    )


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match requires."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


def lookup_response(result: LookupResult, if_none_match: str | None) -> Response:
    entry = result.entry
    headers = {"X-Cache": result.cache_status.value, "Vary": "Origin"}
    max_age = result.fresh_for
    if result.cache_status is CacheStatus.STALE:
        headers["Cache-Control"] = "public, max-age=0, must-revalidate"
    else:
        headers["Cache-Control"] = f"public, max-age={max_age}"
    if not result.found:
        unknown = UnknownInvite()
        return Response(
            status_code=404,
            content_type=JSON,
            body=error_body(unknown.code, unknown.public_message),
            headers=headers,
        )
    headers["ETag"] = entry.etag
    if etag_matches(if_none_match, entry.etag):
        return Response(status_code=304, content_type=None, body="", headers=headers)
    return Response(status_code=200, content_type=JSON, body=entry.body, headers=headers)


def revocation_response(revocation: Revocation) -> Response:
    """200 with the deleted invite, exactly as Discord returned it."""
    return Response(
        status_code=200,
        content_type=JSON,
        body=revocation.body,
        headers={"Cache-Control": "no-store"},
    )


# A file named by its content's hash never changes: caches keep it a year, and ask nothing.
IMMUTABLE = "public, max-age=31536000, immutable"


def icon_response(data: bytes, media_type: str) -> Response:
    """A guild icon: an image, and nothing a browser could run or sniff into something else."""
    headers = {
        "Cache-Control": IMMUTABLE,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
    }
    body = base64.b64encode(data).decode("ascii")
    return Response(200, body, headers, content_type=media_type, base64=True)
