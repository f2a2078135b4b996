"""Running a revocation rule: choose the invites, revoke them a few at a time, report.

Knows nothing of Lambda: the caller passes the invocation's deadline, and the run
stops cleanly before it. A step (one Discord call and what follows it) starts only
with ``step_seconds`` in hand (domain/costs.py, rule_step_seconds); a run that
cannot start a single step fails, so the scheduler retries it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import ValidationError

from invite_proxy import observability as obs
from invite_proxy.domain.costs import REPORTING_SECONDS
from invite_proxy.domain.errors import (
    CacheEvictionFailed,
    DiscordError,
    DiscordRateLimited,
    InvalidInput,
    InviteProxyError,
    Outcome,
    RuleRunFailed,
    TableUnavailable,
    UnknownInvite,
)
from invite_proxy.domain.models import GuildInvite
from invite_proxy.domain.payloads import vanity_code_of
from invite_proxy.domain.rules import RevocationRule, partition_codes, select
from invite_proxy.services.rule_summary import OUT_OF_TIME, RunSummary
from invite_proxy.services.steps import GiveBack, StepsOutcome, run_steps

if TYPE_CHECKING:
    from invite_proxy.domain.deadline import Deadline
    from invite_proxy.domain.payloads import DiscordResponse
    from invite_proxy.services.guild_mode import MirrorStore
    from invite_proxy.services.revocation import InviteRevocationService

_T = TypeVar("_T")


class RuleDiscord(Protocol):
    def list_guild_invites(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse: ...
    def guild_vanity_code(self, guild_id: str, *, deadline: Deadline) -> str | None: ...
    def get_invite(self, code: str, *, deadline: Deadline) -> DiscordResponse: ...


class RuleCache(Protocol):
    def shorten_ttl(self, code: str, ttl: int, *, deadline: Deadline = ...) -> int: ...


class Notifier(Protocol):
    def send(self, content: str, deadline: Deadline) -> None: ...


class _NoTimeForAStep(Exception):
    """The run ran out of time before it finished a single step: a signal, not an error."""


class RuleRunner:
    def __init__(
        self,
        *,
        discord: RuleDiscord,
        revoker: InviteRevocationService,
        cache: RuleCache,
        notifier: Notifier | None,
        step_seconds: float,
        report_seconds: float = REPORTING_SECONDS,
        max_rate_limit_wait: float = 5.0,
        parallel: int = 1,
        mirror: MirrorStore | None = None,
        mirrored_guilds: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._discord = discord
        self._revoker = revoker
        self._cache = cache
        self._notifier = notifier
        self._step_seconds = step_seconds
        self._report_seconds = report_seconds
        self._max_wait = max_rate_limit_wait
        # Revocations in flight at once (services/steps.py).
        self._parallel = max(1, parallel)
        # Guild mode's mirror: a listing of one of these guilds refreshes it (one read, both).
        self._mirror = mirror
        self._mirrored_guilds = mirrored_guilds
        self._tally = threading.Lock()  # the summary, counted from every thread
        self._clock = clock
        self._sleep = sleep

    def run_event(self, event: Any, deadline: Deadline) -> RunSummary:
        """Run the rule a schedule delivered; a bad rule fails the invocation, naming the field."""
        obs.count("RuleRun")
        try:
            rule = RevocationRule.parse(event)
        except InvalidInput as exc:
            obs.count("RuleInvalid")
            obs.logger.error("invalid revocation rule", extra={"error": exc.public_message})
            raise
        obs.logger.append_keys(rule=rule.name, dry_run=rule.dry_run)
        return self.run(rule, deadline)

    def run(self, rule: RevocationRule, deadline: Deadline) -> RunSummary:
        """Run ``rule``; its report ends by ``deadline``, and every call before it earlier."""
        summary = RunSummary(rule=rule.name, dry_run=rule.dry_run)
        # No table or Discord call may run into the time kept for the report.
        calls_by = deadline.reserve(self._report_seconds)
        failure: InviteProxyError | None = None
        detail: str | None = None
        try:
            if rule.guild_id is not None:
                self._run_listing(rule, rule.guild_id, summary, calls_by)
            else:
                self._run_codes(rule, summary, calls_by)
        except InviteProxyError as exc:
            failure = exc
            summary.stopped, summary.error_code = "error", exc.code
            detail = f"stopped on {exc.code}: {exc.detail}"
        except _NoTimeForAStep:
            # Nothing done for want of time: the invocation fails, so the scheduler retries.
            summary.stopped, summary.error_code = "deadline", OUT_OF_TIME
            detail = (
                f"had no time for a step: {max(calls_by.left(), 0.0):.1f} s left before the "
                f"report, a step needs {self._step_seconds:.1f} s"
            )
        self._report(summary, detail, deadline)
        if detail is not None:
            raise RuleRunFailed(
                detail=f"rule {rule.name!r} {detail}",
                retry_after=failure.retry_after if failure else None,
            ) from None
        return summary

    # -- choosing ----------------------------------------------------------------------
    def _run_listing(
        self, rule: RevocationRule, guild_id: str, summary: RunSummary, deadline: Deadline
    ) -> None:
        # Each of the two calls before any revocation is a step of its own: it starts
        # only with a step's time in hand, and the run fails when not even they can.
        self._start_or_fail(deadline)
        vanity_codes = self._vanity_code(guild_id, deadline)
        self._start_or_fail(deadline)
        invites, listed_vanity_codes = self._listing(guild_id, deadline)
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
            self._steps(
                selection.codes,
                summary,
                deadline,
                lambda code: self._revoke_one(rule, code, summary, deadline),
            )
        revoking = set(selection.codes)
        self._refresh_ttls([i for i in invites if i.code not in revoking], summary, deadline)

    def _listing(self, guild_id: str, deadline: Deadline) -> tuple[list[GuildInvite], set[str]]:
        """The guild's invites, and the vanity codes they show."""
        listed_at = self._clock()
        payload = self._discord.list_guild_invites(guild_id, deadline=deadline).payload
        if not isinstance(payload, list):
            raise DiscordError(detail="the guild invite listing is not a list")
        self._mirror_listing(guild_id, payload, listed_at, deadline)
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

    def _mirror_listing(
        self, guild_id: str, payload: list[Any], listed_at: float, deadline: Deadline
    ) -> None:
        if self._mirror is None or guild_id not in self._mirrored_guilds:
            return
        from invite_proxy.services.guild_mode import mirror_listing

        try:
            mirror_listing(self._mirror, guild_id, payload, listed_at, self._clock(), deadline)
        except TableUnavailable as exc:
            # The rule comes first; lookups read the list themselves when it is due.
            obs.count("CacheError")
            obs.logger.warning("mirror not refreshed", extra={"detail": exc.detail})

    def _vanity_code(self, guild_id: str, deadline: Deadline) -> set[str]:
        try:
            vanity = self._discord.guild_vanity_code(guild_id, deadline=deadline)
        except InviteProxyError as exc:
            if exc.retry_later:
                raise
            # Without Manage Guild this fails; the listing needs it too, so this is rare.
            obs.logger.warning("vanity code lookup failed", extra={"detail": exc.detail})
            return set()
        return {vanity} if vanity else set()

    def _run_codes(self, rule: RevocationRule, summary: RunSummary, deadline: Deadline) -> None:
        """Named codes: each is looked up first, because only that shows a vanity code."""
        codes, excluded = partition_codes(rule)
        summary.excluded = len(excluded)

        def check_then_revoke(code: str) -> None:
            try:
                lookup = self._patiently(
                    lambda: self._discord.get_invite(code, deadline=deadline), deadline
                )
            except UnknownInvite:
                with self._tally:
                    summary.matched += 1
                if not rule.dry_run:
                    self._record_gone(rule, code, summary, deadline)
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
            if not self._has_time(deadline):  # the lookup took its share
                raise GiveBack
            self._revoke_one(rule, code, summary, deadline)

        self._steps(codes, summary, deadline, check_then_revoke)

    # -- revoking ----------------------------------------------------------------------
    def _steps(
        self,
        codes: list[str],
        summary: RunSummary,
        deadline: Deadline,
        step: Callable[[str], None],
    ) -> None:
        """Step through the codes (services/steps.py); the run stops on the first error,
        stops cleanly when out of time, and fails when out of time before a step ended."""
        outcome: StepsOutcome = run_steps(
            codes, step, parallel=self._parallel, has_time=lambda: self._has_time(deadline)
        )
        summary.left = outcome.left if (outcome.failure or outcome.out_of_time) else 0
        if outcome.failure is not None:
            raise outcome.failure
        if outcome.out_of_time:
            summary.stopped = "deadline"
            if outcome.left == outcome.total:
                raise _NoTimeForAStep

    def _revoke_one(
        self, rule: RevocationRule, code: str, summary: RunSummary, deadline: Deadline
    ) -> None:
        """Revoke one invite. Errors that will recur for every invite stop the run."""
        try:
            self._patiently(
                lambda: self._revoker.revoke(
                    code, rule.audit_reason, actor=rule.actor, source="schedule", deadline=deadline
                ),
                deadline,
            )
        except InviteProxyError as exc:
            with self._tally:
                if exc.revocation_outcome is Outcome.ALREADY_GONE:
                    summary.already_gone += 1
                    return
                summary.failed += 1
                if isinstance(exc, CacheEvictionFailed):
                    summary.not_evicted.append(code)
            if exc.revocation_outcome is not Outcome.FORBIDDEN:
                raise
            # Forbidden: this invite's channel only; the rest may be fine.
        else:
            with self._tally:
                summary.revoked += 1

    def _record_gone(
        self, rule: RevocationRule, code: str, summary: RunSummary, deadline: Deadline
    ) -> None:
        try:
            self._revoker.record_gone(
                code, rule.audit_reason, actor=rule.actor, source="schedule", deadline=deadline
            )
        except InviteProxyError as exc:
            with self._tally:
                summary.failed += 1
                if isinstance(exc, CacheEvictionFailed):
                    summary.not_evicted.append(code)
            raise

    def _patiently(self, action: Callable[[], _T], deadline: Deadline) -> _T:
        """A Discord call; a rate limit that fits the time left is waited out, once."""
        try:
            return action()
        except DiscordRateLimited as exc:
            wait = exc.retry_after or 0.0
            if wait > self._max_wait or not deadline.fits(wait + self._step_seconds):
                raise
            self._sleep(wait)
        return action()

    def _refresh_ttls(
        self, invites: list[GuildInvite], summary: RunSummary, deadline: Deadline
    ) -> None:
        """The listing has each invite's created_at and max_age: cached copies die with it."""
        for invite in invites:
            expiry = invite.expiry()
            if expiry is None:
                continue
            if not self._has_time(deadline):
                return
            try:
                ttl = math.floor(expiry.timestamp())
                shortened = self._cache.shorten_ttl(invite.code, ttl, deadline=deadline)
                summary.cache_ttls_shortened += shortened
            except TableUnavailable as exc:
                obs.logger.warning("cache TTL refresh failed", extra={"detail": exc.detail})
                return

    # -- time and reporting ------------------------------------------------------------
    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _has_time(self, deadline: Deadline) -> bool:
        """Whether a step started now would end, at a slow table's pace, by the deadline."""
        return deadline.fits(self._step_seconds)

    def _start_or_fail(self, deadline: Deadline) -> None:
        if not self._has_time(deadline):
            raise _NoTimeForAStep

    def _report(self, summary: RunSummary, failure: str | None, deadline: Deadline) -> None:
        extra: dict[str, Any] = {"summary": summary.as_dict()}
        if failure is not None:
            obs.logger.error("revocation rule run failed", extra={**extra, "detail": failure})
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
            self._notifier.send(summary.message(), deadline)
        except InviteProxyError as exc:
            obs.count("NotificationError")
            obs.logger.warning("webhook notification failed", extra={"detail": exc.detail})
