"""Adapter: post a message to a Discord webhook (whose URL is itself a secret)."""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from invite_proxy.discord.session import SESSION
from invite_proxy.errors import NotificationFailed
from invite_proxy.secret_source import SecretSource

MAX_CONTENT = 2000  # Discord's limit on a message's content


class WebhookNotifier:
    def __init__(
        self,
        url: SecretSource,
        *,
        timeout: float,
        user_agent: str,
        session: requests.Session = SESSION,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._user_agent = user_agent
        self._session = session

    def send(self, content: str) -> None:
        """Post ``content``; mentions in it never ping anyone.

        Errors never carry the URL: its last segment is the webhook's token.
        """
        url = self._url()
        if not url or urlsplit(url).scheme not in ("https", "http"):
            raise NotificationFailed(detail="the webhook URL is not an http(s) URL")
        try:
            response = self._session.post(
                url,
                json={"content": content[:MAX_CONTENT], "allowed_mentions": {"parse": []}},
                headers={"User-Agent": self._user_agent},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.RequestException as exc:
            raise NotificationFailed(
                detail=f"webhook request failed: {type(exc).__name__}"
            ) from None
        if not 200 <= response.status_code < 300:
            raise NotificationFailed(detail=f"webhook answered HTTP {response.status_code}")
