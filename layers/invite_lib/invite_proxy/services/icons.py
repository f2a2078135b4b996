"""Guild icons through the proxy, so a visitor's browser never asks Discord for one.

An icon is served only as the guild of an invite the proxy has just answered shows
it (``of_invite``): a stranger naming any guild and hash gets a 404 and costs no
fetch. Each file is fetched from Discord's CDN once, then kept by its hash in the
table for every instance and in this instance's memory (bounded in bytes). A failed
fetch is answered from for a minute, so a flood of one broken icon is one fetch.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import (
    IconUnavailable,
    InviteProxyError,
    TableUnavailable,
)
from invite_proxy.domain.icons import (
    FAILURE_HOLD_SECONDS,
    KEEP_SECONDS,
    IconFile,
    shown_by,
    still_of,
)
from invite_proxy.observability import count, logger

# Some hundred icons: a busy page's worth, at a few kB each.
MEMORY_BYTES = 2 * 1024 * 1024
# Failures remembered at most: a bound on what a flood of broken icons can make us keep.
HELD_FAILURES = 1024


class IconStore(Protocol):
    def get(
        self, guild_id: str, file_name: str, now: float, deadline: Deadline
    ) -> bytes | None: ...

    def put(
        self, guild_id: str, file_name: str, data: bytes, until: float, deadline: Deadline
    ) -> None: ...


class IconSource(Protocol):
    def icon(self, guild_id: str, file: IconFile, deadline: Deadline) -> bytes: ...


class GuildIcons:
    def __init__(
        self,
        *,
        store: IconStore,
        cdn: IconSource,
        clock: Callable[[], float],
        memory_bytes: int = MEMORY_BYTES,
    ) -> None:
        self._store = store
        self._cdn = cdn
        self._clock = clock
        self._memory_bytes = memory_bytes
        self._recent: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._recent_bytes = 0
        self._held: OrderedDict[tuple[str, str], tuple[float, InviteProxyError]] = OrderedDict()

    def of_invite(self, invite: Mapping[str, Any], file: IconFile, deadline: Deadline) -> bytes:
        """The file's bytes, if it is the icon the invite's guild shows now."""
        return self.icon(shown_by(invite, file), file, deadline)

    def still_for(self, invite: Mapping[str, Any], deadline: Deadline) -> bytes | None:
        """What an image card embeds: the guild's icon as a still, or None (no icon, or
        none to be had now: the card draws the initials instead)."""
        file = still_of(invite)
        if file is None:
            return None
        try:
            return self.of_invite(invite, file, deadline)
        except InviteProxyError as exc:
            logger.info("card drawn without its icon", extra={"detail": exc.detail})
            return None

    def icon(self, guild_id: str, file: IconFile, deadline: Deadline) -> bytes:
        key = (guild_id, file.name)
        if (data := self._recent.get(key)) is not None:
            self._recent.move_to_end(key)
            return data
        now = self._clock()
        held = self._held.get(key)
        if held is not None and held[0] > now:
            until, failure = held
            retry_after = until - now if failure.retry_after is not None else None
            raise type(failure)(
                failure.public_message, detail=f"held: {failure.detail}", retry_after=retry_after
            )
        data = self._kept(guild_id, file, now, deadline)
        if data is None:
            data = self._fetched(guild_id, file, now, deadline)
        self._remember(key, data)
        return data

    def _kept(self, guild_id: str, file: IconFile, now: float, deadline: Deadline) -> bytes | None:
        try:
            data = self._store.get(guild_id, file.name, now, deadline)
        except TableUnavailable:
            return None  # the CDN still has it
        return data if data is not None and file.holds(data) else None

    def _fetched(self, guild_id: str, file: IconFile, now: float, deadline: Deadline) -> bytes:
        key = (guild_id, file.name)
        try:
            data = self._cdn.icon(guild_id, file, deadline)
            if not file.holds(data):
                raise IconUnavailable(detail=f"not a {file.format} of at most the size allowed")
        except InviteProxyError as exc:
            count("IconFetchFailed")
            logger.warning("icon fetch failed", extra={"icon": file.name, "detail": exc.detail})
            if deadline.left() > 0:
                # The CDN's own answer (a failure, a timeout of its own): held. One cut
                # short by this request's deadline says nothing of the CDN, and is not.
                self._held[key] = (now + FAILURE_HOLD_SECONDS, exc)
                while len(self._held) > HELD_FAILURES:
                    self._held.popitem(last=False)
            raise
        self._held.pop(key, None)
        count("IconFetched")
        # Not kept: the next instance that needs it fetches it again.
        with contextlib.suppress(TableUnavailable):
            self._store.put(guild_id, file.name, data, now + KEEP_SECONDS, deadline)
        return data

    def _remember(self, key: tuple[str, str], data: bytes) -> None:
        self._recent[key] = data
        self._recent_bytes += len(data)
        while self._recent_bytes > self._memory_bytes:
            _, dropped = self._recent.popitem(last=False)
            self._recent_bytes -= len(dropped)
