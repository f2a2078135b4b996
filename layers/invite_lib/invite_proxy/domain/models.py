"""Pydantic models for what Discord sends, and the pydantic types rule inputs are built from.

Imported on a cache miss or a rule run, never on a cache hit: what every request
needs (the invite query, the audit reason) is parsed by hand in inputs.py, whose
patterns and rules the types here reuse.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from invite_proxy.domain.errors import InvalidInput
from invite_proxy.domain.inputs import INVITE_CODE_PATTERN, SNOWFLAKE_PATTERN, check_audit_reason
from invite_proxy.domain.validation import problems

InviteCode = Annotated[str, Field(pattern=INVITE_CODE_PATTERN)]
# Discord's X-Audit-Log-Reason: 1 to 512 characters of text, once URL-decoded.
AuditReason = Annotated[str, AfterValidator(check_audit_reason)]
Snowflake = Annotated[str, Field(pattern=SNOWFLAKE_PATTERN)]


def invalid_input_from(
    exc: ValidationError, hints: dict[str, str] | None = None, *, subject: str | None = None
) -> InvalidInput:
    """Turn pydantic's report into one clear message that names each offending field."""
    lead = f"Invalid {subject}: " if subject else "Invalid "
    return InvalidInput(lead + "; ".join(problems(exc, hints)) + ".")


class Invite(BaseModel):
    """The fields of Discord's invite object that decide how long we may cache it.

    Everything else Discord sends is kept (extra="allow"); the proxy passes on
    Discord's own bytes, so no field is ever lost in a round trip.
    """

    # Only a cache miss parses an invite: build the validator then, not at import.
    model_config = ConfigDict(extra="allow", defer_build=True)

    code: str
    expires_at: datetime | None = None
    # Invite metadata: absent from GET /invites/{code}, present in guild listings.
    created_at: datetime | None = None
    max_age: int | None = Field(default=None, ge=0)

    def expiry(self) -> datetime | None:
        """When the invite dies, or None if it is permanent or nothing says."""
        candidates = []
        if self.expires_at is not None:
            candidates.append(self.expires_at)
        if self.created_at is not None and self.max_age:  # max_age 0 means never
            candidates.append(self.created_at + timedelta(seconds=self.max_age))
        return min(candidates) if candidates else None


class _Ref(BaseModel):
    """A nested Discord object of which only the id matters here."""

    model_config = ConfigDict(extra="allow")

    id: str


class GuildInvite(Invite):
    """An invite from GET /guilds/{guild_id}/invites: the invite plus its metadata.

    Any of the metadata may be missing; a criterion that needs a missing field
    does not match, so a rule never revokes on a guess.
    """

    uses: int | None = Field(default=None, ge=0)
    max_uses: int | None = Field(default=None, ge=0)
    temporary: bool | None = None
    channel: _Ref | None = None
    inviter: _Ref | None = None
    guild: _Ref | None = None

    def is_permanent(self) -> bool | None:
        """Whether the invite never expires; None when nothing says."""
        if self.max_age is None and "expires_at" not in self.model_fields_set:
            return None
        return self.expiry() is None
