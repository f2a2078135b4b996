"""Who may revoke invites: bearer tokens checked against SHA-256 hashes kept in a secret.

The secret (ADMIN_TOKENS_SECRET_ID; locally ADMIN_TOKENS) is JSON:

    {"tokens": [{"name": "dashboard", "sha256": "<64 hex digits>"}, ...]}

Only hashes are stored, so whoever can read the secret still cannot call the
API. Tokens are 256 random bits, which makes a plain SHA-256 as strong as any
slow password hash would be. Several entries may be live at once: add the new
token's hash, move clients over, then remove the old one.

Run ``python -m invite_proxy.domain.admin_tokens NAME`` to make a token and its entry.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import CredentialsUnavailable
from invite_proxy.domain.validation import problems

# Makes a leaked token easy to recognise in a secret scanner.
TOKEN_PREFIX = "dip_"  # noqa: S105 - a prefix, not a secret
_MAX_TOKEN_LENGTH = 512


class AdminToken(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class AdminTokenSet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: list[AdminToken] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class _Known:
    name: str
    digest: bytes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def entry_for(name: str, token: str) -> dict[str, str]:
    return AdminToken(name=name, sha256=hash_token(token)).model_dump()


def bearer_token(authorization: str | None) -> str | None:
    """The token from ``Authorization: Bearer <token>``, or None for anything else."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return token


class AdminTokenVerifier:
    def __init__(self, source: Callable[[Deadline], str | None]) -> None:
        # The secret's JSON, read within the caller's deadline (adapters.secrets).
        self._source = source
        self._parsed: tuple[str, tuple[_Known, ...]] | None = None

    def _known(self, deadline: Deadline) -> tuple[_Known, ...]:
        raw = self._source(deadline)
        if not raw:
            raise CredentialsUnavailable(detail="no admin tokens are configured")
        if self._parsed is not None and self._parsed[0] == raw:
            return self._parsed[1]
        try:
            token_set = AdminTokenSet.model_validate_json(raw)
        except ValidationError as exc:
            problem = "; ".join(problems(exc, whole="document"))
            raise CredentialsUnavailable(detail=f"admin token secret is bad: {problem}") from None
        known = tuple(_Known(t.name, bytes.fromhex(t.sha256)) for t in token_set.tokens)
        self._parsed = (raw, known)
        return known

    def identify(self, authorization: str | None, deadline: Deadline = NO_DEADLINE) -> str | None:
        """The name of the admin token presented, or None if it is not one of ours."""
        token = bearer_token(authorization)
        known = self._known(deadline)  # read even for junk, so timing says nothing about the header
        digest = hashlib.sha256((token or "").encode()).digest()
        name = None
        for entry in known:  # no early exit: every entry costs the same
            if hmac.compare_digest(digest, entry.digest) and name is None:
                name = entry.name
        return name if token is not None else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Make a new admin token for DELETE /invites.")
    parser.add_argument("name", help="who or what will use it, e.g. dashboard")
    args = parser.parse_args(argv)
    token = new_token()
    print(f"token (give this to the client, store it nowhere else): {token}")
    print("entry (add it to the admin tokens secret's 'tokens' list):")
    print(json.dumps(entry_for(args.name, token)))


if __name__ == "__main__":
    main()
