"""What the emulated Discord knows: guilds, invites, tokens, scripted faults, and a request log."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SNOWFLAKE_EPOCH_MS = 1_420_070_400_000
INVITE_ALPHABET = string.ascii_letters + string.digits


def iso(ts: float) -> str:
    """Discord's timestamp format: ISO 8601 with microseconds and +00:00."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


@dataclass
class Fault:
    """A scripted answer, served instead of the normal one while ``times`` lasts.

    ``route`` is "METHOD /path/pattern" in the spec's terms, e.g.
    "GET /invites/{code}", or None for any route.
    """

    status: int = 500
    body: str = '{"message": "500: Internal Server Error", "code": 0}'
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    reset: bool = False  # drop the connection without answering
    route: str | None = "GET /invites/{code}"
    times: int = 1


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    route: str | None
    status: int = 0
    body: bytes = b""
    at: float = 0.0  # the emulator's clock when it arrived


@dataclass
class AuditEntry:
    """What Discord's audit log would show for a deletion."""

    action: str
    code: str
    guild_id: str
    reason: str | None  # decoded, as the audit log displays it
    raw_reason: str | None  # the header as it arrived


@dataclass
class Guild:
    id: str
    name: str
    member_count: int = 100
    presence_count: int = 20
    vanity_url_code: str | None = None
    icon: str | None = None  # an icon hash; "a_" starts an animated one
    features: list[str] = field(default_factory=list)
    # Whether the bot has Manage Guild here: listing invites and the vanity URL need it,
    # and it may delete any invite. Without it, only channels in manage_channels.
    manage_guild: bool = True
    manage_channels: set[str] = field(default_factory=set)

    def may_delete(self, channel_id: str) -> bool:
        return self.manage_guild or channel_id in self.manage_channels

    def partial(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "splash": None,
            "banner": None,
            "description": None,
            "icon": self.icon,
            "features": self.features,
            "verification_level": 1,
            "vanity_url_code": self.vanity_url_code,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_subscription_count": 0,
        }


@dataclass
class ScheduledEvent:
    """A guild scheduled event, which GET /invites/{code} includes when asked by id."""

    id: str
    guild_id: str
    name: str
    scheduled_start_time: float
    scheduled_end_time: float | None = None
    description: str | None = None
    channel_id: str | None = None
    entity_type: int = 2  # voice
    status: int = 1  # scheduled
    user_count: int = 0

    def body(self) -> dict[str, Any]:
        end = self.scheduled_end_time
        return {
            "id": self.id,
            "guild_id": self.guild_id,
            "name": self.name,
            "description": self.description,
            "channel_id": self.channel_id,
            "creator_id": None,
            "image": None,
            "scheduled_start_time": iso(self.scheduled_start_time),
            "scheduled_end_time": iso(end) if end is not None else None,
            "status": self.status,
            "entity_type": self.entity_type,
            "entity_id": None,
            "entity_metadata": None,
            "recurrence_rule": None,
            "privacy_level": 2,
            "guild_scheduled_event_exceptions": [],
            "user_count": self.user_count,
        }


@dataclass
class StoredInvite:
    code: str
    guild_id: str
    channel: dict[str, Any]
    inviter: dict[str, Any] | None
    created_at: float
    max_age: int = 0  # seconds; 0 = never expires
    max_uses: int = 0
    uses: int = 0
    temporary: bool = False
    # Fields Discord may add tomorrow; passed through untouched by the proxy.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expires_at(self) -> float | None:
        return self.created_at + self.max_age if self.max_age else None

    def expired(self, now: float) -> bool:
        expires = self.expires_at
        return expires is not None and now >= expires


class EmulatorState:
    """Thread-safe; every server thread and the test that drives it share one."""

    def __init__(self, *, tokens: set[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.guilds: dict[str, Guild] = {}
        self.invites: dict[str, StoredInvite] = {}
        self.events: dict[str, ScheduledEvent] = {}
        # Accepted bot tokens; None accepts any, as a stand-in for "some valid bot".
        self.tokens = tokens
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self.audit_log: list[AuditEntry] = []
        self.webhook_messages: list[dict[str, Any]] = []
        self.clock_offset = 0.0
        self.latency = 0.0  # seconds every normal answer takes, as a slow Discord would
        self.rate_limit = 50  # requests per window per bucket
        self.rate_window = 1.0  # seconds
        self._windows: dict[str, tuple[float, int]] = {}
        self.window_starts: dict[str, list[float]] = {}  # per bucket: when each window began
        # Discord's global limit: requests per second per bot, across every route.
        self.global_limit = 50
        self.global_window = 1.0
        # Cloudflare's ban: this many 401/403/429 answers (shared-scope 429s aside) within
        # ban_window seconds, and every request gets an HTML error page for ban_seconds.
        # None: no ban, the default; Discord's real threshold is 10,000 per 10 minutes.
        self.ban_threshold: int | None = None
        self.ban_window = 600.0
        self.ban_seconds = 3600.0
        self.ban_status = 403
        self.banned_until = 0.0
        self._invalid_at: list[float] = []
        self._next_id = SNOWFLAKE_EPOCH_MS << 22

    # -- time ---------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    # -- data ---------------------------------------------------------------
    def snowflake(self) -> str:
        with self.lock:
            self._next_id += 1 << 22
            return str(self._next_id)

    def add_guild(self, name: str, **kwargs: Any) -> Guild:
        guild = Guild(id=kwargs.pop("id", None) or self.snowflake(), name=name, **kwargs)
        with self.lock:
            self.guilds[guild.id] = guild
        return guild

    def add_invite(
        self,
        guild: Guild,
        *,
        code: str | None = None,
        channel_name: str = "general",
        channel_id: str | None = None,
        inviter_id: str | None = None,
        max_age: int = 0,
        created_at: float | None = None,
        **kwargs: Any,
    ) -> StoredInvite:
        invite = StoredInvite(
            code=code or "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8)),
            guild_id=guild.id,
            channel={"id": channel_id or self.snowflake(), "type": 0, "name": channel_name},
            inviter=kwargs.pop("inviter", None)
            or {
                "id": inviter_id or self.snowflake(),
                "username": "inviter",
                "avatar": None,
                "discriminator": "0",
                "public_flags": 0,
                "flags": 0,
                "global_name": "Inviter",
                "primary_guild": None,
            },
            created_at=self.now() if created_at is None else created_at,
            max_age=max_age,
            **kwargs,
        )
        with self.lock:
            self.invites[invite.code] = invite
        return invite

    def add_event(self, guild: Guild, name: str, **kwargs: Any) -> ScheduledEvent:
        event = ScheduledEvent(
            id=kwargs.pop("id", None) or self.snowflake(), guild_id=guild.id, name=name, **kwargs
        )
        with self.lock:
            self.events[event.id] = event
        return event

    def find_invite(self, code: str) -> StoredInvite | None:
        with self.lock:
            invite = self.invites.get(code)
            if invite is None or invite.expired(self.now()):
                return None
            return invite

    def invite_body(
        self, invite: StoredInvite, *, with_counts: bool, event_id: str | None = None
    ) -> dict[str, Any]:
        """GET /invites/{code}: no metadata (uses, max_age, created_at); expires_at always.

        The scheduled event asked for is included when it belongs to the invite's guild.
        """
        guild = self.guilds[invite.guild_id]
        expires = invite.expires_at
        body: dict[str, Any] = {
            "type": 0,
            "code": invite.code,
            "inviter": invite.inviter,
            "expires_at": iso(expires) if expires is not None else None,
            "flags": 0,
            "guild": guild.partial(),
            "guild_id": guild.id,
            "channel": invite.channel,
        }
        if with_counts:
            body["approximate_member_count"] = guild.member_count
            body["approximate_presence_count"] = guild.presence_count
        event = self.events.get(event_id or "")
        if event is not None and event.guild_id == guild.id:
            body["guild_scheduled_event"] = event.body()
        body.update(invite.extra)
        return body

    def guild_body(self, guild: Guild, *, with_counts: bool) -> dict[str, Any]:
        """GET /guilds/{id}: the guild, with its approximate counts when asked."""
        body = guild.partial() | {"owner_id": "1", "roles": [], "emojis": [], "stickers": []}
        if with_counts:
            body["approximate_member_count"] = guild.member_count
            body["approximate_presence_count"] = guild.presence_count
        return body

    def guild_events(self, guild: Guild) -> list[ScheduledEvent]:
        """GET /guilds/{id}/scheduled-events: the guild's events, soonest first."""
        with self.lock:
            events = [e for e in self.events.values() if e.guild_id == guild.id]
        return sorted(events, key=lambda e: e.scheduled_start_time)

    def invite_metadata_body(self, invite: StoredInvite) -> dict[str, Any]:
        """An invite as guild and channel listings show it: with uses, max_age, created_at."""
        return self.invite_body(invite, with_counts=False) | {
            "uses": invite.uses,
            "max_uses": invite.max_uses,
            "max_age": invite.max_age,
            "temporary": invite.temporary,
            "created_at": iso(invite.created_at),
        }

    def guild_invites(self, guild: Guild) -> list[StoredInvite]:
        """A guild's live invites; the vanity invite is not among them, as on Discord."""
        now = self.now()
        with self.lock:
            return [
                invite
                for invite in self.invites.values()
                if invite.guild_id == guild.id
                and not invite.expired(now)
                and invite.code != guild.vanity_url_code
            ]

    def delete_invite(self, code: str, reason: str | None, raw_reason: str | None) -> None:
        with self.lock:
            invite = self.invites.pop(code)
            self.audit_log.append(
                AuditEntry("INVITE_DELETE", code, invite.guild_id, reason, raw_reason)
            )

    # -- faults, limits and the request log --------------------------------------
    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, route: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.route is None or fault.route == route:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
            return None

    def record(self, request: RecordedRequest) -> None:
        request.at = self.now()
        with self.lock:
            self.requests.append(request)

    def requests_to(self, route: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.route == route]

    def take_rate_limit(self, bucket: str) -> tuple[int, float, float, bool]:
        """Count one request in the bucket's window: (remaining, reset_after, reset_at,
        allowed). ``reset_at`` is the window's end, the same for every answer in it, as
        Discord's X-RateLimit-Reset is: clients tell windows apart by it."""
        return self._take(bucket, self.rate_limit, self.rate_window)

    def take_global(self, bot: str) -> tuple[float, bool]:
        """Count one request against the bot's global limit: (reset_after, allowed)."""
        key = f"global:{bot}"
        _, reset_after, _, allowed = self._take(key, self.global_limit, self.global_window)
        return reset_after, allowed

    def _take(self, key: str, limit: int, window: float) -> tuple[int, float, float, bool]:
        now = self.now()
        with self.lock:
            started, used = self._windows.get(key, (now, 0))
            if now - started >= window:
                started, used = now, 0
            if used == 0:
                self.window_starts.setdefault(key, []).append(started)
            allowed = used < limit
            if allowed:
                used += 1
            self._windows[key] = (started, used)
            return limit - used, max(0.0, started + window - now), started + window, allowed

    # -- Cloudflare ----------------------------------------------------------------
    def banned(self) -> bool:
        return self.now() < self.banned_until

    def count_invalid(self) -> None:
        """One 401/403/429 answer; enough of them within the window, and the IP is banned."""
        now = self.now()
        with self.lock:
            self._invalid_at = [t for t in self._invalid_at if now - t < self.ban_window]
            self._invalid_at.append(now)
            if self.ban_threshold is not None and len(self._invalid_at) >= self.ban_threshold:
                self.banned_until = now + self.ban_seconds
