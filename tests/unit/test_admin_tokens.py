"""Admin tokens: bearer parsing, hashed storage, rotation, and a malformed secret."""

from __future__ import annotations

import json

import pytest

from invite_proxy.domain.admin_tokens import (
    TOKEN_PREFIX,
    AdminTokenVerifier,
    bearer_token,
    entry_for,
    hash_token,
    main,
    new_token,
)
from invite_proxy.domain.errors import CredentialsUnavailable


def secret_of(**tokens: str) -> str:
    return json.dumps({"tokens": [entry_for(name, token) for name, token in tokens.items()]})


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic abc", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("Bearer " + "x" * 513, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_the_secret_holds_hashes_not_tokens() -> None:
    token = new_token()
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) > 40
    entry = entry_for("dashboard", token)
    assert entry == {"name": "dashboard", "sha256": hash_token(token)}
    assert token not in json.dumps(entry)


def test_the_right_token_names_its_holder_and_anything_else_is_refused() -> None:
    verifier = AdminTokenVerifier(lambda _deadline: secret_of(dashboard="tok-a", cli="tok-b"))
    assert verifier.identify("Bearer tok-a") == "dashboard"
    assert verifier.identify("Bearer tok-b") == "cli"
    assert verifier.identify("Bearer tok-c") is None
    assert verifier.identify("Bearer " + hash_token("tok-a")) is None  # the hash is no token
    assert verifier.identify("Basic tok-a") is None
    assert verifier.identify(None) is None


def test_rotation_follows_the_secret() -> None:
    current = {"value": secret_of(old="tok-old")}
    verifier = AdminTokenVerifier(lambda _deadline: current["value"])
    assert verifier.identify("Bearer tok-old") == "old"
    current["value"] = secret_of(old="tok-old", new="tok-new")  # both live during the move
    assert verifier.identify("Bearer tok-old") == "old"
    assert verifier.identify("Bearer tok-new") == "new"
    current["value"] = secret_of(new="tok-new")
    assert verifier.identify("Bearer tok-old") is None
    assert verifier.identify("Bearer tok-new") == "new"


@pytest.mark.parametrize(
    ("secret", "field"),
    [
        ("not json", "document"),
        ('{"tokens": []}', "tokens"),
        ('{"tokens": [{"name": "a", "sha256": "tok-in-clear"}]}', "tokens.0.sha256"),
        ('{"tokens": [{"name": "a b", "sha256": "' + "0" * 64 + '"}]}', "tokens.0.name"),
        ('{"tokens": [{"sha256": "' + "0" * 64 + '"}]}', "tokens.0.name"),
        ('{"tokens": [], "extra": 1}', "extra"),
    ],
)
def test_a_malformed_secret_fails_loudly_without_echoing_it(secret: str, field: str) -> None:
    verifier = AdminTokenVerifier(lambda _deadline: secret)
    with pytest.raises(CredentialsUnavailable) as caught:
        verifier.identify("Bearer tok")
    assert field in (caught.value.detail or "")
    assert "tok-in-clear" not in str(caught.value.detail)


def test_no_secret_at_all_is_an_error_not_an_open_door() -> None:
    with pytest.raises(CredentialsUnavailable):
        AdminTokenVerifier(lambda _deadline: None).identify("Bearer anything")


def test_the_cli_prints_a_token_and_its_entry(capsys: pytest.CaptureFixture[str]) -> None:
    main(["dashboard"])
    lines = capsys.readouterr().out.splitlines()
    token = lines[0].rsplit(" ", 1)[1]
    entry = json.loads(lines[-1])
    assert entry == {"name": "dashboard", "sha256": hash_token(token)}
    assert (
        AdminTokenVerifier(lambda _deadline: json.dumps({"tokens": [entry]})).identify(
            f"Bearer {token}"
        )
        == "dashboard"
    )
