"""What callers send: an invite code, the lookup's query parameters, an audit-log reason.

Parsed by hand, not by pydantic: every request passes through here, and a cold
start that serves a cache hit should not pay for building pydantic models it
never uses (models.py holds those, for Discord's payloads and rule inputs).
The patterns are the contract: the OpenAPI document publishes them, and
models.py builds its pydantic types from the same ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from invite_proxy.domain.errors import InvalidInput

# Random invite codes are 7-10 characters today (16 on old invites); vanity codes
# are letters, digits and '-', 2-32 characters. Nothing else can name an invite,
# so nothing else may reach Discord or the cache.
INVITE_CODE_PATTERN = r"^[A-Za-z0-9-]{2,32}$"
# Snowflakes are unsigned 64-bit integers, sent as decimal strings.
SNOWFLAKE_PATTERN = r"^[0-9]{1,20}$"
AUDIT_REASON_MAX_LENGTH = 512  # Discord's limit, in characters once decoded

_CODE = re.compile(INVITE_CODE_PATTERN)
_SNOWFLAKE = re.compile(SNOWFLAKE_PATTERN)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

CODE_RULE = "must be 2 to 32 letters, digits or '-'"
SNOWFLAKE_RULE = "must be a snowflake (1 to 20 digits)"
BOOLEAN_RULE = "must be true or false"


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


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    # fullmatch: with re.match, '$' would also match before a trailing newline.
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def _query_bool(value: object) -> bool | None:
    """Discord accepts true/false and 1/0; anything else is a caller's mistake (None)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def audit_reason_problem(text: str) -> str | None:
    """What is wrong with a decoded audit-log reason, or None: the one rule, for the
    DELETE header and for revocation rules alike."""
    if not text:
        return "must be at least 1 character"
    if len(text) > AUDIT_REASON_MAX_LENGTH:
        return f"must be at most {AUDIT_REASON_MAX_LENGTH} characters"
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text):
        return "must not contain control characters such as newlines"
    return None


def check_audit_reason(text: str) -> str:
    """``audit_reason_problem`` as a validator (revocation rules use it through pydantic)."""
    problem = audit_reason_problem(text)
    if problem:
        raise ValueError(problem)
    return text


@dataclass(frozen=True, slots=True)
class InviteQuery:
    """One invite lookup, in the terms Discord's GET /invites/{code} understands."""

    code: str
    with_counts: bool = False
    guild_scheduled_event_id: str | None = None

    @classmethod
    def parse(cls, code: str, params: dict[str, str] | None) -> InviteQuery:
        """Validate caller input, naming every offending field in one clear message.

        Unknown parameters (with_expiration among them) are ignored.
        """
        params = params or {}
        problems = []
        if not _matches(_CODE, code):
            problems.append(f"code: {CODE_RULE}")
        with_counts = _query_bool(params.get("with_counts", False))
        if with_counts is None:
            problems.append(f"with_counts: {BOOLEAN_RULE}")
        event_id = params.get("guild_scheduled_event_id")
        if event_id is not None and not _matches(_SNOWFLAKE, event_id):
            problems.append(f"guild_scheduled_event_id: {SNOWFLAKE_RULE}")
        if problems:
            raise InvalidInput("Invalid " + "; ".join(problems) + ".")
        if event_id is not None:
            event_id = str(int(event_id))  # a number to Discord: 0123 is 123, one cache key
        return cls(code, bool(with_counts), event_id)

    def without_event(self) -> InviteQuery:
        """The same lookup with no event: what Discord answers for an event not the guild's."""
        return InviteQuery(self.code, self.with_counts, None)

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


@dataclass(frozen=True, slots=True)
class GuildCardQuery:
    """A guild's lasting invite, asked by guild id (guild mode)."""

    guild_id: str
    with_counts: bool = False

    @classmethod
    def parse(cls, guild_id: str, params: dict[str, str] | None) -> GuildCardQuery:
        problems = []
        if not _matches(_SNOWFLAKE, guild_id):
            problems.append(f"guild_id: {SNOWFLAKE_RULE}")
        with_counts = _query_bool((params or {}).get("with_counts", False))
        if with_counts is None:
            problems.append(f"with_counts: {BOOLEAN_RULE}")
        if problems:
            raise InvalidInput("Invalid " + "; ".join(problems) + ".")
        return cls(str(int(guild_id)), bool(with_counts))


CARD_THEMES = ("dark", "light")  # the first is the default, as Discord's own card


def card_theme(params: dict[str, str] | None, *, strict: bool = True) -> str:
    """The image card's ``theme``: dark (the default) or light. Not ``strict``: any other
    value is the default (a failure's card is drawn whatever was asked)."""
    theme = (params or {}).get("theme", CARD_THEMES[0])
    if theme in CARD_THEMES:
        return theme
    if strict:
        raise InvalidInput("Invalid theme: it is dark or light.")
    return CARD_THEMES[0]


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
    problem = audit_reason_problem(decoded)
    if problem:
        raise InvalidInput(
            f"Invalid X-Audit-Log-Reason: {problem} (1 to 512 characters once decoded)."
        )
    return decoded
