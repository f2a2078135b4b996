"""The files web developers embed: small, dependency-free, and careful with the admin token."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "web"
CARD = WEB / "discord-invite-card.js"


def test_the_card_is_small_and_needs_nothing_else() -> None:
    source = CARD.read_text()
    assert len(CARD.read_bytes()) < 15_000  # unminified, no build step
    # An ES module that imports nothing and fetches nothing but the proxy.
    assert not re.search(r"^\s*import\s", source, re.MULTILINE)
    assert "export class DiscordInviteCard" in source
    hosts = set(re.findall(r"https://([a-z0-9.-]+)", source))
    assert hosts == {"discord.gg"}  # icons come through the proxy, never the CDN


def test_the_card_does_not_take_the_tag_a_popular_library_uses() -> None:
    source = CARD.read_text()
    assert re.findall(r'customElements\.define\("([^"]+)"', source) == ["discord-invite-card"]
    assert '"discord-invite"' not in source


def test_the_admin_page_never_stores_or_sends_the_token_anywhere_but_the_header() -> None:
    page = (WEB / "admin.html").read_text()
    for store in ("localStorage", "sessionStorage", "indexedDB", "document.cookie"):
        assert store not in page
    form = re.search(r"<form[^>]*>", page)
    assert form is not None
    assert "action=" not in form.group(0)  # never submitted, so never in a URL
    token = re.search(r'<input id="token"[^>]*>', page)
    assert token is not None
    assert 'type="password"' in token.group(0)
    assert 'name="' not in token.group(0)  # not a form field a browser could submit
    assert 'autocomplete="off"' in token.group(0)
