"""Adapter: Discord's HTTP API over requests, and its errors as our typed exceptions.

Raw: it knows nothing of the fleet's rate limits. Only ``GuardedDiscord`` calls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import quote

import requests

from invite_proxy.adapters.discord.routes import Route
from invite_proxy.adapters.discord.session import SESSION, timeout
from invite_proxy.domain.deadline import Deadline, DeadlineReached, wait_at_most
from invite_proxy.domain.errors import (
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
from invite_proxy.domain.payloads import DiscordResponse
from invite_proxy.domain.rate_limits import RateLimit

UNKNOWN_INVITE = 10006
CLOUDFLARE_BLOCKED = 40333
API_OVERLOADED = 130000


class DiscordClient:
    def __init__(
        self,
        *,
        base_url: str,
        token: Callable[[Deadline], str | None],
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        session: requests.Session = SESSION,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._user_agent = user_agent
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._session = session

    def credentials(self, deadline: Deadline) -> None:
        """Read the token now (a cache hit, mostly): raises CredentialsUnavailable."""
        self._token(deadline)

    def request(
        self,
        route: Route,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline,
    ) -> DiscordResponse:
        """Send one request; return a 2xx response or raise the matching error.

        It waits no longer than ``deadline``, whatever the configured timeouts allow.
        """
        request_headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        token = self._token(deadline)
        if token:
            request_headers["Authorization"] = f"Bot {token}"
        if headers:
            request_headers.update(headers)
        left = deadline.left()
        if left <= 0:
            raise DiscordTimeout(detail="no time left before the request's deadline")
        try:
            status, response_headers, text = wait_at_most(
                left,
                partial(self._send, route, params, request_headers, left),
                name="discord-call",
            )
        except DeadlineReached:
            raise DiscordTimeout(detail=f"no answer within the {left:.2f} s left") from None
        except requests.exceptions.ConnectTimeout as exc:
            raise DiscordUnavailable(detail=f"connect timeout: {exc}") from None
        except requests.exceptions.Timeout as exc:
            raise DiscordTimeout(detail=f"read timeout: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise DiscordUnavailable(detail=f"{type(exc).__name__}: {exc}") from None
        payload = _json_or_none(response_headers, text)
        rate_limit = RateLimit.parse(response_headers, payload)
        if not 200 <= status < 300:
            raise error_for(status, payload, rate_limit, text)
        if payload is None:
            raise DiscordError(
                status=status, detail="2xx response whose body is not JSON", rate_limit=rate_limit
            )
        return DiscordResponse(status=status, body=text, payload=payload, rate_limit=rate_limit)

    def _send(
        self,
        route: Route,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        left: float,
    ) -> tuple[int, Mapping[str, str], str]:
        """The exchange itself: (status, headers, body). Its caller stops waiting at the
        deadline; the timeouts here end a call left behind: the connect and the headers
        within the time that was left, each later read of the body within the read timeout."""
        response = self._session.request(
            route.method,
            self._base_url + route.path,
            params=params,
            headers=headers,
            timeout=timeout(self._connect_timeout, self._read_timeout, left),  # type: ignore[arg-type]
            allow_redirects=False,
        )
        # Discord speaks UTF-8 JSON; decoding it ourselves skips requests' charset sniffing.
        return response.status_code, response.headers, response.content.decode("utf-8", "replace")


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


def error_for(status: int, payload: Any, rate_limit: RateLimit, text: str) -> InviteProxyError:
    """Map a non-2xx Discord response to the exception that says what happened.

    A 403 or 429 whose body is not Discord's JSON came from Cloudflare, not the
    API: that is a block, and retrying only makes it longer.
    """
    is_discord_json = isinstance(payload, dict)
    body: dict[str, Any] = payload if is_discord_json else {}
    code = body.get("code") if isinstance(body.get("code"), int) else None
    detail = f"HTTP {status}, code {code}: {str(body.get('message', text))[:200]}"
    kwargs: dict[str, Any] = {
        "status": status,
        "discord_code": code,
        "detail": detail,
        "rate_limit": rate_limit,
    }

    if status in (403, 429) and (not is_discord_json or code == CLOUDFLARE_BLOCKED):
        return DiscordBlocked(retry_after=rate_limit.retry_after, **kwargs)
    if status == 429:
        return DiscordRateLimited(retry_after=rate_limit.retry_after or 1.0, **kwargs)
    if status == 401:
        return DiscordUnauthorized(**kwargs)
    if status == 403:
        return DiscordMissingPermissions(**kwargs)
    if status == 404 and code == UNKNOWN_INVITE:
        return UnknownInvite(detail=detail, rate_limit=rate_limit)
    if code == API_OVERLOADED:
        return DiscordUnavailable(retry_after=rate_limit.retry_after, **kwargs)
    if status >= 500:
        return DiscordServerError(retry_after=rate_limit.retry_after, **kwargs)
    return DiscordError(**kwargs)
