"""Revocation rules: their shape, their validation, and which invites they match.

Pure: no I/O. A rule is the JSON an EventBridge Scheduler schedule delivers as
its Input; see docs/revocation-rules.md for the format and examples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from invite_proxy.domain.errors import InvalidInput
from invite_proxy.domain.models import (
    AuditReason,
    GuildInvite,
    InviteCode,
    Snowflake,
    invalid_input_from,
)

RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
# A guild has about 1,000 invites at most; a longer list is a mistake.
CodeList = Annotated[list[InviteCode], Field(min_length=1, max_length=1000)]
IdList = Annotated[list[Snowflake], Field(min_length=1, max_length=1000)]
_ENVELOPE_KEYS = frozenset({"detail-type", "source", "detail"})


class MatchCriteria(BaseModel):
    """Every criterion given must hold for an invite to match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channel_ids: IdList | None = None
    inviter_ids: IdList | None = None
    older_than_seconds: int | None = Field(None, ge=0)
    created_before: AwareDatetime | None = None
    min_uses: int | None = Field(None, ge=0)
    max_uses_reached: bool | None = None
    temporary: bool | None = None
    expires_within_seconds: int | None = Field(None, ge=0)
    permanent: bool | None = None

    def criteria(self) -> list[str]:
        return [name for name, value in self if value is not None]

    def matches(self, invite: GuildInvite, now: datetime) -> bool:
        return all(self._holds(name, invite, now) for name in self.criteria())

    def _holds(self, name: str, invite: GuildInvite, now: datetime) -> bool:
        """One criterion. Metadata the listing did not give never matches."""
        created = invite.created_at
        match name:
            case "channel_ids":
                return invite.channel is not None and invite.channel.id in (self.channel_ids or ())
            case "inviter_ids":
                return invite.inviter is not None and invite.inviter.id in (self.inviter_ids or ())
            case "older_than_seconds":
                age = (now - created).total_seconds() if created else None
                return age is not None and age >= (self.older_than_seconds or 0)
            case "created_before":
                return (
                    created is not None
                    and self.created_before is not None
                    and (created < self.created_before)
                )
            case "min_uses":
                return invite.uses is not None and invite.uses >= (self.min_uses or 0)
            case "max_uses_reached":
                if invite.uses is None or invite.max_uses is None:
                    return False
                reached = invite.max_uses > 0 and invite.uses >= invite.max_uses
                return reached == self.max_uses_reached
            case "temporary":
                return invite.temporary is not None and invite.temporary == self.temporary
            case "expires_within_seconds":
                expiry = invite.expiry()
                return expiry is not None and (expiry - now).total_seconds() <= (
                    self.expires_within_seconds or 0
                )
            case "permanent":
                permanent = invite.is_permanent()
                return permanent is not None and permanent == self.permanent
        raise AssertionError(f"unknown criterion {name}")


class RevocationRule(BaseModel):
    """Which invites to revoke, and how. Unknown fields are errors: a misspelt
    criterion silently ignored would revoke more than was meant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: RuleName
    guild_id: Snowflake | None = None
    codes: CodeList | None = None
    match: MatchCriteria | None = None
    exclude_codes: list[InviteCode] = Field(default_factory=list, max_length=1000)
    dry_run: bool = False
    reason: AuditReason | None = None

    @model_validator(mode="after")
    def _choose_invites(self) -> Self:
        if self.guild_id is None and self.codes is None:
            raise ValueError("give guild_id (with match criteria), or codes, or both")
        if self.match is not None and self.guild_id is None:
            raise ValueError(
                "match needs guild_id: criteria are checked against the guild's invite listing"
            )
        if (
            self.guild_id is not None
            and self.codes is None
            and not (self.match and self.match.criteria())
        ):
            raise ValueError(
                "match needs at least one criterion: a rule naming only a guild would revoke "
                'every invite in it (to mean that, say so with "older_than_seconds": 0)'
            )
        return self

    @classmethod
    def parse(cls, event: Any) -> RevocationRule:
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            error = invalid_input_from(exc, subject=f"revocation rule {_name_of(event)}")
        if isinstance(event, Mapping) and set(event) >= _ENVELOPE_KEYS:
            error = InvalidInput(
                error.public_message + " This is an EventBridge event envelope, not a rule: "
                "deliver the rule itself as the Input of an EventBridge Scheduler schedule."
            )
        raise error

    @property
    def actor(self) -> str:
        """Who the audit log says revoked: the rule."""
        return f"rule:{self.name}"

    @property
    def audit_reason(self) -> str:
        return self.reason or f"Revocation rule {self.name}"


def _name_of(event: Any) -> str:
    name = event.get("name") if isinstance(event, Mapping) else None
    return repr(name[:64]) if isinstance(name, str) else "(unnamed)"


@dataclass
class Selection:
    """What a rule picked from a listing, in the order to revoke (oldest first)."""

    codes: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    vanity_skipped: list[str] = field(default_factory=list)


def select(
    rule: RevocationRule,
    listing: Iterable[GuildInvite],
    now: datetime,
    vanity_codes: set[str],
) -> Selection:
    """The invites of a guild listing that the rule revokes.

    exclude_codes always wins, and the vanity code is never touched.
    """
    wanted = set(rule.codes) if rule.codes is not None else None
    excluded = set(rule.exclude_codes)
    selection = Selection()
    oldest_first = sorted(
        listing, key=lambda inv: (inv.created_at is None, inv.created_at or now, inv.code)
    )
    for invite in oldest_first:
        if wanted is not None and invite.code not in wanted:
            continue
        if rule.match is not None and not rule.match.matches(invite, now):
            continue
        if invite.code in vanity_codes:
            selection.vanity_skipped.append(invite.code)
        elif invite.code in excluded:
            selection.excluded.append(invite.code)
        else:
            selection.codes.append(invite.code)
    return selection


def partition_codes(rule: RevocationRule) -> tuple[list[str], list[str]]:
    """A codes-only rule: (codes to consider, in order and without repeats; codes excluded)."""
    excluded = set(rule.exclude_codes)
    ordered = list(dict.fromkeys(rule.codes or ()))
    return [c for c in ordered if c not in excluded], [c for c in ordered if c in excluded]
