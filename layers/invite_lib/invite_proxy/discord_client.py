"""Adapter: Discord's HTTP API over requests, and its errors as our typed exceptions."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from invite_proxy.errors import (
    DiscordBlocked,
    DiscordError,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordServerError,
    DiscordTimeout,
    DiscordUnauthorized,
    DiscordUnavailable,
    InviteProxyError,
    UnknownInvite,
)

UNKNOWN_INVITE = 10006
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
CLOUDFLARE_BLOCKED = 40333
API_OVERLOADED = 130000

# One pooled session per execution environment: TLS handshakes with Discord are
# the most expensive part of a miss, so keep-alive matters.
_SESSION = requests.Session()


@dataclass(frozen=True, slots=True)
class DiscordResponse:
    status: int
    body: str  # exactly as Discord sent it
    payload: Any  # the same body, parsed
    headers: Mapping[str, str]


class DiscordClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: Callable[[], str | None],
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        session: requests.Session = _SESSION,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._user_agent = user_agent
        self._timeout = (connect_timeout, read_timeout)
        self._session = session

    def get_invite(self, code: str, params: Mapping[str, str]) -> DiscordResponse:
        return self.request("GET", f"/invites/{_segment(code)}", params=params)

    def delete_invite(self, code: str, reason: str | None) -> DiscordResponse:
        """Revoke an invite. Discord answers 200 with the invite it deleted."""
        headers = {"X-Audit-Log-Reason": encode_audit_reason(reason)} if reason else None
        return self.request("DELETE", f"/invites/{_segment(code)}", headers=headers)

    def list_guild_invites(self, guild_id: str) -> DiscordResponse:
        """Every invite of a guild, with metadata (uses, max_age, ...). Needs Manage Guild."""
        return self.request("GET", f"/guilds/{_segment(guild_id)}/invites")

    def guild_vanity_url(self, guild_id: str) -> DiscordResponse:
        return self.request("GET", f"/guilds/{_segment(guild_id)}/vanity-url")

    def guild_vanity_code(self, guild_id: str) -> str | None:
        return vanity_code_of(self.guild_vanity_url(guild_id))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> DiscordResponse:
        """Send one request; return a 2xx response or raise the matching DiscordError."""
        request_headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        token = self._token()
        if token:
            request_headers["Authorization"] = f"Bot {token}"
        if headers:
            request_headers.update(headers)
        try:
            response = self._session.request(
                method,
                self._base_url + path,
                params=params,
                headers=request_headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise DiscordUnavailable(detail=f"connect timeout: {exc}") from None
        except requests.exceptions.Timeout as exc:
            raise DiscordTimeout(detail=f"read timeout: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise DiscordUnavailable(detail=f"{type(exc).__name__}: {exc}") from None
        # Discord speaks UTF-8 JSON; decoding it ourselves skips requests' charset sniffing.
        text = response.content.decode("utf-8", errors="replace")
        payload = _json_or_none(response.headers, text)
        if not 200 <= response.status_code < 300:
            error = error_for(response.status_code, payload, response.headers, text)
            error.rate_limit_headers = response.headers
            raise error
        if payload is None:
            raise DiscordError(
                status=response.status_code, detail="2xx response whose body is not JSON"
            )
        return DiscordResponse(
            status=response.status_code,
            body=text,
            payload=payload,
            headers=response.headers,
        )


def vanity_code_of(response: DiscordResponse) -> str | None:
    """The code in a vanity-url answer; None when the guild has none."""
    payload = response.payload
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code else None


def _segment(value: str) -> str:
    """One path segment, whatever the value holds (callers validate first; this is a backstop)."""
    return quote(value, safe="")


def encode_audit_reason(reason: str) -> str:
    """X-Audit-Log-Reason is URL-encoded UTF-8 on the wire."""
    return quote(reason, safe="")


def _json_or_none(headers: Mapping[str, str], text: str) -> Any:
    if "json" not in headers.get("Content-Type", ""):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def error_for(status: int, payload: Any, headers: Mapping[str, str], text: str) -> InviteProxyError:
    """Map a non-2xx Discord response to the exception that says what happened.

    A 403 or 429 whose body is not Discord's JSON came from Cloudflare, not the
    API: that is a block, and retrying only makes it longer.
    """
    is_discord_json = isinstance(payload, dict)
    body: dict[str, Any] = payload if is_discord_json else {}
    code = body.get("code") if isinstance(body.get("code"), int) else None
    detail = f"HTTP {status}, code {code}: {str(body.get('message', text))[:200]}"
    kwargs: dict[str, Any] = {"status": status, "discord_code": code, "detail": detail}

    if status in (403, 429) and (not is_discord_json or code == CLOUDFLARE_BLOCKED):
        return DiscordBlocked(retry_after=_float(headers.get("Retry-After")), **kwargs)
    if status == 429:
        retry_after = _float(body.get("retry_after"))
        if retry_after is None:
            retry_after = _float(headers.get("Retry-After")) or 1.0
        is_global = bool(body.get("global")) or headers.get("X-RateLimit-Global") == "true"
        return DiscordRateLimited(
            retry_after=retry_after,
            is_global=is_global,
            scope=headers.get("X-RateLimit-Scope"),
            bucket=headers.get("X-RateLimit-Bucket"),
            **kwargs,
        )
    if status == 401:
        return DiscordUnauthorized(**kwargs)
    if status == 403:
        return DiscordMissingPermissions(**kwargs)
    if status == 404 and code == UNKNOWN_INVITE:
        return UnknownInvite(detail=detail)
    if code == API_OVERLOADED:
        return DiscordUnavailable(retry_after=_float(headers.get("Retry-After")), **kwargs)
    if status >= 500:
        return DiscordServerError(retry_after=_float(headers.get("Retry-After")), **kwargs)
    return DiscordError(**kwargs)
