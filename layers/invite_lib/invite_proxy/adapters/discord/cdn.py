"""Adapter: guild icons from Discord's CDN, read in place of the visitor's browser.

The CDN is not the API: no token goes to it and it has no rate-limit buckets, so it
does not pass through the guard. What it sends is bounded: the body is read no further
than one byte past ``MAX_ICON_BYTES``, within the request's deadline.
"""

from __future__ import annotations

from functools import partial

import requests

from invite_proxy.adapters.discord.session import SESSION, timeout
from invite_proxy.domain.deadline import Deadline, DeadlineReached, wait_at_most
from invite_proxy.domain.errors import IconUnavailable, UnknownIcon
from invite_proxy.domain.icons import ICON_SIZE, MAX_ICON_BYTES, IconFile


class DiscordCdn:
    def __init__(
        self,
        *,
        base_url: str,
        user_agent: str,
        connect_timeout: float,
        read_timeout: float,
        session: requests.Session = SESSION,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._user_agent = user_agent
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._session = session

    def icon(self, guild_id: str, file: IconFile, deadline: Deadline) -> bytes:
        """The icon's bytes as the CDN sends them; UnknownIcon for its 404, else
        IconUnavailable (a failure, a timeout, an answer too large)."""
        left = deadline.left()
        if left <= 0:
            raise IconUnavailable(detail="no time left before the request's deadline")
        try:
            status, body = wait_at_most(
                left, partial(self._get, guild_id, file, left), name="discord-cdn"
            )
        except DeadlineReached:
            raise IconUnavailable(detail=f"no icon within the {left:.2f} s left") from None
        except requests.exceptions.RequestException as exc:
            raise IconUnavailable(detail=f"{type(exc).__name__}: {exc}") from None
        if status == 404:
            raise UnknownIcon(detail="Discord's CDN has no such icon")
        if status != 200:
            raise IconUnavailable(detail=f"the CDN answered HTTP {status}")
        return body

    def _get(self, guild_id: str, file: IconFile, left: float) -> tuple[int, bytes]:
        with self._session.get(
            f"{self._base_url}/icons/{guild_id}/{file.name}",
            params={"size": str(ICON_SIZE)},
            headers={"User-Agent": self._user_agent, "Accept": file.media_type},
            timeout=timeout(self._connect_timeout, self._read_timeout, left),  # type: ignore[arg-type]
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                return response.status_code, b""
            body = bytearray()
            for chunk in response.iter_content(16 * 1024):
                body += chunk
                if len(body) > MAX_ICON_BYTES:
                    # Stop reading: the caller's check refuses it by its size alone.
                    break
            return 200, bytes(body)
