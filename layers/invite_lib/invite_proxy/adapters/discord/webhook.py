"""Adapter: post a message to a Discord webhook (whose URL is itself a secret)."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit

import requests

from invite_proxy.adapters.discord.session import SESSION
from invite_proxy.adapters.secrets import SecretSource
from invite_proxy.domain.deadline import Deadline, DeadlineReached, wait_at_most
from invite_proxy.domain.errors import NotificationFailed

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

    def send(self, content: str, deadline: Deadline) -> None:
        """Post ``content``; mentions in it never ping anyone.

        It waits ``timeout`` at most for the whole post, and never past the deadline.
        Errors never carry the URL: its last segment is the webhook's token.
        """
        url = self._url(deadline)
        if not url or urlsplit(url).scheme not in ("https", "http"):
            raise NotificationFailed(detail="the webhook URL is not an http(s) URL")
        wait = min(self._timeout, deadline.left())
        if wait <= 0:
            raise NotificationFailed(detail="no time left to post to the webhook")
        post = partial(
            self._session.post,
            url,
            json={"content": content[:MAX_CONTENT], "allowed_mentions": {"parse": []}},
            headers={"User-Agent": self._user_agent},
            timeout=wait,  # only ends a post left behind; the wait below ends the caller's
            allow_redirects=False,
        )
        try:
            status = wait_at_most(wait, post, name="webhook-post").status_code
        except DeadlineReached:
            raise NotificationFailed(detail=f"webhook gave no answer within {wait:.2f} s") from None
        except requests.exceptions.RequestException as exc:
            raise NotificationFailed(
                detail=f"webhook request failed: {type(exc).__name__}"
            ) from None
        if not 200 <= status < 300:
            raise NotificationFailed(detail=f"webhook answered HTTP {status}")
