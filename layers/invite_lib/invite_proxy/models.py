"""Pydantic models for what crosses our edges: requests for invites and Discord's invites."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache
from typing import Annotated, Any
from urllib.parse import unquote

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from invite_proxy.errors import InvalidInput
from invite_proxy.validation import problems

# Random invite codes are 7-10 characters today (16 on old invites); vanity codes
# are letters, digits and '-', 2-32 characters. Nothing else can name an invite,
# so nothing else may reach Discord or the cache.
INVITE_CODE_PATTERN = r"^[A-Za-z0-9-]{2,32}$"
# Snowflakes are unsigned 64-bit integers, sent as decimal strings.
SNOWFLAKE_PATTERN = r"^[0-9]{1,20}$"

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def _query_bool(value: Any) -> Any:
    """Discord accepts true/false and 1/0; anything else is a caller's mistake."""
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("must be true or false")
    return value


def _no_control_characters(value: str) -> str:
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise ValueError("must not contain control characters such as newlines")
    return value


def _audit_reason_header_pattern() -> str:
    """The X-Audit-Log-Reason values `reason_from_header` accepts, up to 512 characters.

    Printable ASCII but '%', and percent-escapes that decode to UTF-8 text with no
    control characters (C0, DEL or C1); no space at either end, which HTTP would
    strip. The API's OpenAPI document publishes it, and a property test holds the
    two together.
    """
    hex_ = "[0-9A-Fa-f]"
    cont = f"%[89ABab]{hex_}"
    escapes = "|".join(
        (
            f"%(2{hex_}|[3-6]{hex_}|7[0-9A-Ea-e])",  # printable ASCII
            f"%[Cc]2%[AaBb]{hex_}",  # U+00A0..U+00BF (U+0080..U+009F are C1 controls)
            f"%([Cc][3-9A-Fa-f]|[Dd]{hex_}){cont}",
            f"%[Ee]0%[AaBb]{hex_}{cont}",  # no overlong forms
            f"%[Ee][1-9A-Ca-cEeFf]{cont}{cont}",
            f"%[Ee][Dd]%[89]{hex_}{cont}",  # no surrogates
            f"%[Ff]0%[9AaBb]{hex_}{cont}{cont}",
            f"%[Ff][1-3]{cont}{cont}{cont}",
            f"%[Ff]4%8{hex_}{cont}{cont}",  # nothing past U+10FFFF
        )
    )
    edge = f"([\x21-\x24\x26-\x7e]|{escapes})"
    inner = f"([\x20-\x24\x26-\x7e]|{escapes})"
    return f"^{edge}({inner}*{edge})?$"


AUDIT_REASON_HEADER_PATTERN = _audit_reason_header_pattern()
AUDIT_REASON_HEADER_MAX_LENGTH = 512

InviteCode = Annotated[str, Field(pattern=INVITE_CODE_PATTERN)]
# Discord's X-Audit-Log-Reason: 1 to 512 characters of text, once URL-decoded.
AuditReason = Annotated[
    str, Field(min_length=1, max_length=512), AfterValidator(_no_control_characters)
]
Snowflake = Annotated[str, Field(pattern=SNOWFLAKE_PATTERN)]
QueryBool = Annotated[bool, BeforeValidator(_query_bool)]

_FIELD_HINTS = {
    "code": "must be 2 to 32 letters, digits or '-'",
    "guild_scheduled_event_id": "must be a snowflake (1 to 20 digits)",
    "with_counts": "must be true or false",
}


def invalid_input_from(
    exc: ValidationError, hints: dict[str, str] | None = None, *, subject: str | None = None
) -> InvalidInput:
    """Turn pydantic's report into one clear message that names each offending field."""
    lead = f"Invalid {subject}: " if subject else "Invalid "
    return InvalidInput(lead + "; ".join(problems(exc, hints)) + ".")


def guild_of(payload: Any) -> str | None:
    """The guild an invite object belongs to, if it says."""
    if not isinstance(payload, dict):
        return None
    guild = payload.get("guild")
    guild_id = payload.get("guild_id") or (guild.get("id") if isinstance(guild, dict) else None)
    return str(guild_id) if guild_id else None


def vanity_code_of(payload: Any) -> str | None:
    """The vanity code of the guild an invite object belongs to, if it says."""
    guild = payload.get("guild") if isinstance(payload, dict) else None
    code = guild.get("vanity_url_code") if isinstance(guild, dict) else None
    return code if isinstance(code, str) and code else None


def vanity_code_of_url(payload: Any) -> str | None:
    """The code in an answer of GET /guilds/{id}/vanity-url; None when the guild has none."""
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code else None


@cache
def _audit_reason() -> TypeAdapter[str]:
    # Built on first use: only a DELETE needs it, so lookups never pay at import.
    return TypeAdapter(AuditReason)


_PRINTABLE_ASCII = frozenset(chr(c) for c in range(0x20, 0x7F))
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def reason_from_header(raw: str | None) -> str | None:
    """The audit-log reason a caller sent, decoded; None if the header is absent.

    Discord reads X-Audit-Log-Reason as URL-encoded UTF-8, and so does the proxy:
    raw non-ASCII (which HTTP headers cannot carry reliably), a '%' that starts no
    escape, escapes that are not UTF-8, control characters, an empty value or
    more than 512 characters are the caller's mistake.
    """
    if raw is None:
        return None
    if not set(raw) <= _PRINTABLE_ASCII:
        raise InvalidInput(
            "Invalid X-Audit-Log-Reason: must be URL-encoded UTF-8 "
            "(percent-encode anything that is not printable ASCII)."
        )
    if _BAD_ESCAPE.search(raw):
        raise InvalidInput(
            "Invalid X-Audit-Log-Reason: a '%' must start an escape of two hex digits "
            "(write a literal '%' as %25)."
        )
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InvalidInput(
            "Invalid X-Audit-Log-Reason: its percent-escapes do not decode as UTF-8."
        ) from None
    try:
        return _audit_reason().validate_python(decoded)
    except ValidationError as exc:
        message = problems(exc)[0]
        raise InvalidInput(
            f"Invalid X-Audit-Log-Reason: {message} (1 to 512 characters once decoded)."
        ) from None


class InviteQuery(BaseModel):
    """One invite lookup, in the terms Discord's GET /invites/{code} understands."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: InviteCode
    with_counts: QueryBool = False
    guild_scheduled_event_id: Snowflake | None = None

    @classmethod
    def parse(cls, code: str, params: dict[str, str] | None) -> InviteQuery:
        """Validate caller input. Unknown parameters (with_expiration among them) are ignored."""
        try:
            return cls.model_validate({**(params or {}), "code": code})
        except ValidationError as exc:
            raise invalid_input_from(exc, _FIELD_HINTS) from None

    @property
    def variant(self) -> str:
        """The part of the cache key that changes the response body."""
        return f"counts={int(self.with_counts)}#event={self.guild_scheduled_event_id or '-'}"

    def upstream_params(self) -> dict[str, str]:
        params = {}
        if self.with_counts:
            params["with_counts"] = "true"
        if self.guild_scheduled_event_id:
            params["guild_scheduled_event_id"] = self.guild_scheduled_event_id
        return params


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
