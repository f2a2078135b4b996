"""Running a revocation rule: choose the invites, revoke them a few at a time, report.

Knows nothing of Lambda: the caller passes a function that says how much time
is left, and the run stops cleanly before it runs out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import ValidationError

from invite_proxy.adapters.discord.payloads import vanity_code_of
from invite_proxy.domain.deadline import RequestDeadline
from invite_proxy.domain.errors import (
    CacheEvictionFailed,
    DiscordError,
    DiscordRateLimited,
    InvalidInput,
    InviteProxyError,
    RuleRunFailed,
    TableUnavailable,
    UnknownInvite,
)
from invite_proxy.domain.models import GuildInvite
from invite_proxy.domain.rules import RevocationRule, partition_codes, select
from invite_proxy.edges import observability as obs

if TYPE_CHECKING:
    from invite_proxy.adapters.discord.client import DiscordResponse
    from invite_proxy.services.revocation import InviteRevocationService

RemainingMillis = Callable[[], int]
# Time a rule run keeps back at the end for the summary and metrics, with slack (the
# webhook's time comes on top: RevokerSettings.report_seconds).
REPORTING_SECONDS = 1.0
_T = TypeVar("_T")


class _Deadline(Exception):
    """Not enough time left for the next step: stop cleanly, leave the rest."""


class RuleDiscord(Protocol):
    def list_guild_invites(self, guild_id: str, *, deadline: float) -> DiscordResponse: ...
    def guild_vanity_code(self, guild_id: str, *, deadline: float) -> str | None: ...
    def get_invite(self, code: str, *, deadline: float) -> DiscordResponse: ...


class RuleCache(Protocol):
    def shorten_ttl(self, code: str, ttl: int) -> int: ...


class Notifier(Protocol):
    def send(self, content: str) -> None: ...


@dataclass
class RunSummary:
    rule: str
    dry_run: bool
    matched: int = 0
    revoked: int = 0
    already_gone: int = 0
    failed: int = 0
    left: int = 0
    excluded: int = 0
    vanity_skipped: int = 0
    not_listed: int = 0  # named codes the guild's listing does not have: left alone
    cache_ttls_shortened: int = 0
    would_revoke: list[str] = field(default_factory=list)
    # Gone on Discord, but their cached copies could not be evicted: the run fails, so the
    # scheduler's retry (or the dead-letter queue) sees them, and a retry evicts them.
    not_evicted: list[str] = field(default_factory=list)
    stopped: str | None = None  # "deadline" or "error"
    error_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        if not self.dry_run:
            del result["would_revoke"]
        return result

    def message(self) -> str:
        """The summary, as a human reads it in a Discord channel."""
        if self.dry_run:
            count = len(self.would_revoke)
            codes = ", ".join(self.would_revoke[:50]) or "none"
            more = f" and {count - 50} more" if count > 50 else ""
            text = f"Revocation rule `{self.rule}` (dry run): would revoke {count}: {codes}{more}."
            if self.already_gone:
                text += f" Already gone: {self.already_gone}."
        else:
            text = (
                f"Revocation rule `{self.rule}`: matched {self.matched}, revoked {self.revoked}, "
                f"already gone {self.already_gone}, failed {self.failed}, left {self.left}."
            )
        if self.not_evicted:
            text += f" Gone on Discord but still cached: {', '.join(self.not_evicted)}."
        if self.stopped == "deadline":
            text += " Stopped before the Lambda deadline; the next run picks up the rest."
        elif self.stopped == "error":
            text += f" Stopped on an error ({self.error_code}); the scheduler will retry."
        return text


class RuleRunner:
    def __init__(
        self,
        *,
        discord: RuleDiscord,
        revoker: InviteRevocationService,
        cache: RuleCache,
        notifier: Notifier | None,
        reserve_seconds: float,
        deadline: RequestDeadline,
        report_seconds: float = REPORTING_SECONDS,
        report_deadline: RequestDeadline | None = None,
        max_rate_limit_wait: float = 5.0,
        parallel: int = 1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._discord = discord
        self._revoker = revoker
        self._cache = cache
        self._notifier = notifier
        self._reserve = reserve_seconds
        self._request = deadline  # the table's and Discord's, shared with the adapters
        self._report_seconds = report_seconds
        # The report's own (the webhook's): it ends as the invocation must, whatever the run did.
        self._report_by = report_deadline or RequestDeadline(clock)
        self._max_wait = max_rate_limit_wait
        # Revocations in flight at once: one at a time cannot keep up with a bucket that
        # refills faster than one revocation's table calls and DELETE take.
        self._parallel = max(1, parallel)
        self._tally = threading.Lock()  # the summary, counted from every thread
        self._clock = clock
        self._sleep = sleep

    def run_event(self, event: Any, remaining_ms: RemainingMillis) -> RunSummary:
        """Run the rule a schedule delivered; a bad rule fails the invocation, naming the field."""
        # No table or Discord call may run into the time kept for the report.
        self._request.begin(remaining_ms(), reserve=self._report_seconds)
        self._report_by.begin(remaining_ms())
        obs.count("RuleRun")
        try:
            rule = RevocationRule.parse(event)
        except InvalidInput as exc:
            obs.count("RuleInvalid")
            obs.logger.error("invalid revocation rule", extra={"error": exc.public_message})
            raise
        obs.logger.append_keys(rule=rule.name, dry_run=rule.dry_run)
        return self.run(rule, remaining_ms)

    def run(self, rule: RevocationRule, remaining_ms: RemainingMillis) -> RunSummary:
        summary = RunSummary(rule=rule.name, dry_run=rule.dry_run)
        failure: InviteProxyError | None = None
        try:
            if rule.guild_id is not None:
                self._run_listing(rule, rule.guild_id, summary, remaining_ms)
            else:
                self._run_codes(rule, summary, remaining_ms)
        except InviteProxyError as exc:
            failure = exc
            summary.stopped, summary.error_code = "error", exc.code
        self._report(summary, failure)
        if failure is not None:
            raise RuleRunFailed(
                detail=f"rule {rule.name!r} stopped on {failure.code}: {failure.detail}",
                retry_after=failure.retry_after,
            ) from None
        return summary

    # -- choosing ----------------------------------------------------------------------
    def _run_listing(
        self,
        rule: RevocationRule,
        guild_id: str,
        summary: RunSummary,
        remaining_ms: RemainingMillis,
    ) -> None:
        # Each of the two calls before any revocation is a step of its own: it starts
        # only with the reserve in hand, and the run stops cleanly when it is not.
        if self._out_of_time(remaining_ms):
            self._stop_for_deadline(summary, 0)
            return
        vanity_codes = self._vanity_code(guild_id, remaining_ms)
        if self._out_of_time(remaining_ms):
            self._stop_for_deadline(summary, 0)
            return
        invites, listed_vanity_codes = self._listing(guild_id, remaining_ms)
        vanity_codes |= listed_vanity_codes
        selection = select(rule, invites, self._now(), vanity_codes)
        if rule.codes is not None:
            listed = {invite.code for invite in invites}
            summary.not_listed = len({code for code in rule.codes if code not in listed})
        summary.matched = len(selection.codes)
        summary.excluded = len(selection.excluded)
        summary.vanity_skipped = len(selection.vanity_skipped)
        if rule.dry_run:
            summary.would_revoke = list(selection.codes)
        else:
            self._for_each(
                selection.codes,
                summary,
                remaining_ms,
                lambda code: self._revoke_one(rule, code, summary, remaining_ms),
            )
        revoking = set(selection.codes)
        self._refresh_ttls([i for i in invites if i.code not in revoking], summary, remaining_ms)

    def _listing(
        self, guild_id: str, remaining_ms: RemainingMillis
    ) -> tuple[list[GuildInvite], set[str]]:
        """The guild's invites, and the vanity codes they show."""
        deadline = self._deadline(remaining_ms)
        payload = self._discord.list_guild_invites(guild_id, deadline=deadline).payload
        if not isinstance(payload, list):
            raise DiscordError(detail="the guild invite listing is not a list")
        invites = []
        vanity_codes = set()
        for item in payload:
            if vanity := vanity_code_of(item):
                vanity_codes.add(vanity)
            try:
                invites.append(GuildInvite.model_validate(item))
            except ValidationError:
                # Never revoked on a guess; visible to operators.
                obs.count("RuleUnreadableInvite")
                obs.logger.warning("unreadable invite in guild listing", extra={"item": item})
        return invites, vanity_codes

    def _vanity_code(self, guild_id: str, remaining_ms: RemainingMillis) -> set[str]:
        try:
            vanity = self._discord.guild_vanity_code(
                guild_id, deadline=self._deadline(remaining_ms)
            )
        except InviteProxyError as exc:
            if exc.retry_later:
                raise
            # Without Manage Guild this fails; the listing needs it too, so this is rare.
            obs.logger.warning("vanity code lookup failed", extra={"detail": exc.detail})
            return set()
        return {vanity} if vanity else set()

    def _run_codes(
        self, rule: RevocationRule, summary: RunSummary, remaining_ms: RemainingMillis
    ) -> None:
        """Named codes: each is looked up first, because only that shows a vanity code."""
        codes, excluded = partition_codes(rule)
        summary.excluded = len(excluded)

        def check_then_revoke(code: str) -> None:
            try:
                lookup = self._patiently(
                    lambda: self._discord.get_invite(code, deadline=self._deadline(remaining_ms)),
                    remaining_ms,
                )
            except UnknownInvite:
                with self._tally:
                    summary.matched += 1
                if not rule.dry_run:
                    self._record_gone(rule, code, summary)
                with self._tally:
                    summary.already_gone += 1
                return
            except InviteProxyError:
                with self._tally:
                    summary.failed += 1
                raise
            with self._tally:
                if vanity_code_of(lookup.payload) == code:
                    summary.vanity_skipped += 1
                    return
                summary.matched += 1
                if rule.dry_run:
                    summary.would_revoke.append(code)
                    return
            if self._out_of_time(remaining_ms):  # the lookup took its share
                raise _Deadline
            self._revoke_one(rule, code, summary, remaining_ms)

        self._for_each(codes, summary, remaining_ms, check_then_revoke)

    # -- revoking ----------------------------------------------------------------------
    def _for_each(
        self,
        codes: list[str],
        summary: RunSummary,
        remaining_ms: RemainingMillis,
        step: Callable[[str], None],
    ) -> None:
        """Step through the codes until done, out of time (the rest is left), or an error
        (the steps in flight finish, the rest is left, and the error is raised).

        Steps overlap, up to ``parallel`` at once, but a run starts with one and lets one
        more in after each step that ends well: a Discord or table that fails for every
        invite is met by one request, as a run one at a time would meet it.
        """
        started = gave_back = in_flight = 0
        allowed = 1
        failures: list[InviteProxyError] = []
        out_of_time = False
        turn = threading.Condition()

        def next_code() -> str | None:
            nonlocal started, in_flight, out_of_time
            with turn:
                turn.wait_for(lambda: in_flight < allowed or failures or out_of_time)
                if failures or out_of_time or started == len(codes):
                    return None
                if self._out_of_time(remaining_ms):
                    out_of_time = True
                    turn.notify_all()
                    return None
                started, in_flight = started + 1, in_flight + 1
                return codes[started - 1]

        def work() -> None:
            nonlocal gave_back, in_flight, allowed, out_of_time
            while (code := next_code()) is not None:
                try:
                    step(code)
                except _Deadline:
                    with turn:
                        gave_back, out_of_time = gave_back + 1, True
                        in_flight -= 1
                        turn.notify_all()
                    return
                except InviteProxyError as exc:
                    with turn:
                        failures.append(exc)
                        in_flight -= 1
                        turn.notify_all()
                    return
                with turn:
                    in_flight -= 1
                    allowed = min(self._parallel, allowed + 1)
                    turn.notify_all()

        workers = min(self._parallel, len(codes))
        if workers <= 1:
            work()
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="revoke") as pool:
                for done in [pool.submit(work) for _ in range(workers)]:
                    done.result()
        left = len(codes) - started + gave_back
        if failures:
            summary.left = left
            raise failures[0]
        if out_of_time:
            self._stop_for_deadline(summary, left)

    def _revoke_one(
        self,
        rule: RevocationRule,
        code: str,
        summary: RunSummary,
        remaining_ms: RemainingMillis,
    ) -> None:
        """Revoke one invite. Errors that will recur for every invite stop the run."""
        try:
            self._patiently(
                lambda: self._revoker.revoke(
                    code,
                    rule.audit_reason,
                    actor=rule.actor,
                    source="schedule",
                    deadline=self._deadline(remaining_ms),
                ),
                remaining_ms,
            )
        except InviteProxyError as exc:
            with self._tally:
                if exc.revocation_outcome == "already_gone":
                    summary.already_gone += 1
                    return
                summary.failed += 1
                if isinstance(exc, CacheEvictionFailed):
                    summary.not_evicted.append(code)
            if exc.revocation_outcome != "forbidden":
                raise
            # Forbidden: this invite's channel only; the rest may be fine.
        else:
            with self._tally:
                summary.revoked += 1

    def _record_gone(self, rule: RevocationRule, code: str, summary: RunSummary) -> None:
        try:
            self._revoker.record_gone(code, rule.audit_reason, actor=rule.actor, source="schedule")
        except InviteProxyError as exc:
            with self._tally:
                summary.failed += 1
                if isinstance(exc, CacheEvictionFailed):
                    summary.not_evicted.append(code)
            raise

    def _patiently(self, action: Callable[[], _T], remaining_ms: RemainingMillis) -> _T:
        """A Discord call; a rate limit that fits the time left is waited out, once."""
        try:
            return action()
        except DiscordRateLimited as exc:
            wait = exc.retry_after or 0.0
            if wait > self._max_wait or not self._fits(wait, remaining_ms):
                raise
            self._sleep(wait)
        return action()

    def _refresh_ttls(
        self, invites: list[GuildInvite], summary: RunSummary, remaining_ms: RemainingMillis
    ) -> None:
        """The listing has each invite's created_at and max_age: cached copies die with it."""
        for invite in invites:
            expiry = invite.expiry()
            if expiry is None:
                continue
            if self._out_of_time(remaining_ms):
                return
            try:
                ttl = math.floor(expiry.timestamp())
                summary.cache_ttls_shortened += self._cache.shorten_ttl(invite.code, ttl)
            except TableUnavailable as exc:
                obs.logger.warning("cache TTL refresh failed", extra={"detail": exc.detail})
                return

    # -- time and reporting ------------------------------------------------------------
    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _deadline(self, remaining_ms: RemainingMillis) -> float:
        """The latest a wait inside the next step may end: it still leaves the reserve."""
        return self._clock() + remaining_ms() / 1000 - self._reserve

    def _out_of_time(self, remaining_ms: RemainingMillis) -> bool:
        return remaining_ms() / 1000 < self._reserve

    def _fits(self, wait: float, remaining_ms: RemainingMillis) -> bool:
        return remaining_ms() / 1000 - wait >= self._reserve

    @staticmethod
    def _stop_for_deadline(summary: RunSummary, left: int) -> None:
        summary.left = left
        summary.stopped = "deadline"

    def _report(self, summary: RunSummary, failure: InviteProxyError | None) -> None:
        extra: dict[str, Any] = {"summary": summary.as_dict()}
        if failure is not None:
            obs.logger.error(
                "revocation rule run failed", extra={**extra, "detail": failure.detail}
            )
        else:
            obs.logger.info("revocation rule run", extra=extra)
        obs.counts_by(
            {
                "RuleMatched": summary.matched,
                "RuleRevoked": summary.revoked,
                "RuleAlreadyGone": summary.already_gone,
                "RuleFailed": summary.failed,
                "RuleLeft": summary.left,
            },
            {"Rule": summary.rule, "DryRun": str(summary.dry_run).lower()},
        )
        if self._notifier is None:
            return
        try:
            self._notifier.send(summary.message())
        except InviteProxyError as exc:
            obs.count("NotificationError")
            obs.logger.warning("webhook notification failed", extra={"detail": exc.detail})
