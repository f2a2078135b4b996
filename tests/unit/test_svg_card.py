"""The image card (edges/svg_card.py, edges/svg_text.py): anyone's text made safe and cut
to its box, every answer an image, and nothing in it that could run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from invite_proxy.domain.cache_policy import CacheEntry, EntryKind
from invite_proxy.domain.errors import (
    CallerShareExhausted,
    DiscordUnavailable,
    InvalidInput,
    UnknownInvite,
)
from invite_proxy.edges import svg_card, svg_text
from invite_proxy.services.lookup import CacheStatus, LookupResult

SVG = "{http://www.w3.org/2000/svg}"
NOW = 1_800_000_000.0
HOSTILE = [
    '<script>alert(1)</script><svg onload="alert(2)"> & "quotes" \'x\' ]]> <!--',
    "نادي فن البكسل للألعاب والمسابقات الأسبوعية الكبرى في المدينة",
    "W" * 100,
    "🎮👾🕹️ Pixel 👩‍👩‍👧‍👦 Club 🇯🇵 日本語のサーバー名前テスト" * 2,
    "bad \x00\x07 chars \ud800 and \ufffe, \u202e reversed",
    "{" * 100,
    "Ǆ" * 100,
    "‱Ⅷᐁᐂᐃ⸻﷽" * 15,
]


def invite(name: str, **more: object) -> dict[str, object]:
    return {
        "code": "abc",
        "guild": {"id": "42", "name": name, "icon": None},
        "channel": {"id": "7", "name": name},
        "approximate_member_count": 1234,
        "approximate_presence_count": 321,
        "expires_at": "2026-12-12T02:18:00.123000+00:00",
        **more,
    }


def parsed(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode())  # noqa: S314 (well-formed, or this raises)


def texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(SVG + "text"))


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("theme", ["dark", "light"])
def test_anyones_text_is_well_formed_inert_and_cut_to_its_box(name: str, theme: str) -> None:
    event = {"name": name, "scheduled_start_time": "2026-12-07T02:18:00+00:00"}
    root = parsed(svg_card.invite_card(invite(name, guild_scheduled_event=event), theme, None))
    every = list(root.iter())
    assert not [e for e in every if e.tag.lower().endswith(("script", "foreignobject"))]
    assert not [a for e in every for a in e.attrib if a.lower().startswith("on")]
    assert not [e for e in every if e.tag.endswith("a") or "href" in e.attrib]  # no icon here
    for text in texts(root):
        drawn = "".join(text.itertext())
        size = float(text.attrib["font-size"])
        bold = text.attrib.get("font-weight") in ("600", "700")
        right = float(text.attrib["x"]) + svg_text.width(drawn, size, bold=bold)
        if text.attrib.get("text-anchor") == "middle":
            right = float(text.attrib["x"]) + svg_text.width(drawn, size, bold=bold) / 2
        assert right <= svg_card.WIDTH - svg_card.PAD + 0.01, (drawn, right)
        assert "\x00" not in drawn
        assert "\ud800" not in drawn


def test_the_card_says_what_the_component_says() -> None:
    event = {"name": "Game Night", "scheduled_start_time": "2026-12-07T02:18:00+00:00"}
    svg = svg_card.invite_card(
        invite("Pixel Art Club", guild_scheduled_event=event), "dark", b"\x89PNG\r\n\x1a\nicon"
    )
    root = parsed(svg)
    drawn = [
        ("".join(t.itertext())).replace("\u2068", "").replace("\u2069", "") for t in texts(root)
    ]
    assert drawn == [
        "YOU'VE BEEN INVITED TO JOIN A SERVER",
        "Pixel Art Club",
        "321 Online",
        "1,234 Members",
        "#Pixel Art Club · Expires Dec 12, 02:18 UTC",
        "Join",
        "Event: Game Night, Dec 7, 02:18 UTC",
    ]
    # Anyone's text is cut to its box by estimate, and clipped to it whatever a font does.
    clipped = [t.attrib.get("clip-path") for t in texts(root)]
    beside, below = "url(#beside)", "url(#below)"
    assert clipped == [None, beside, beside, beside, below, None, below]
    [image] = root.iter(SVG + "image")
    assert image.attrib["href"].startswith("data:image/png;base64,")  # embedded: loads nothing
    assert root.attrib["height"] == str(svg_card.HEIGHT + svg_card.EVENT_HEIGHT)
    assert root.find(SVG + "title").text == "Invite to Pixel Art Club: 1,234 members, 321 online"  # type: ignore[union-attr]


def test_counts_too_wide_in_full_are_shown_as_the_badge_shows_them() -> None:
    svg = svg_card.invite_card(
        invite("G", approximate_member_count=12_345_678, approximate_presence_count=1_234_567),
        "light",
        None,
    )
    drawn = ["".join(t.itertext()) for t in texts(parsed(svg))]
    assert "1.2M Online" in drawn
    assert "12.3M Members" in drawn


def test_a_permanent_invite_never_expires_and_no_icon_draws_the_initials() -> None:
    svg = svg_card.invite_card(invite("Pixel art  club", expires_at=None), "dark", None)
    drawn = ["".join(t.itertext()).strip("\u2068\u2069") for t in texts(parsed(svg))]
    assert "Pac" in drawn  # each word's first letter, as the component and Discord draw it
    assert "#Pixel art club · Never expires" in [
        d.replace("\u2068", "").replace("\u2069", "") for d in drawn
    ]


def test_a_name_keeps_its_own_direction() -> None:
    name = "نادي فن البكسل"
    svg = svg_card.invite_card(invite(name), "dark", None)
    assert f"\u2068{name}\u2069" in svg


def test_fit_cuts_with_an_ellipsis_and_never_leaves_a_joiner() -> None:
    assert svg_text.fit("short", 16, 400) == "short"
    cut = svg_text.fit("W" * 100, 16, 200, bold=True)
    assert cut.endswith("\u2026")
    assert svg_text.width(cut, 16, bold=True) <= 200
    family = "👩\u200d👩\u200d👧\u200d👦" * 10
    for room in range(10, 200, 3):
        assert not svg_text.fit(family, 16, room).removesuffix("\u2026").endswith("\u200d")
    assert svg_text.clean("a\x00b\ud800c\n\t d") == "abc d"


def result(entry_kind: EntryKind, body: str = "", fresh_seconds: int = 60) -> LookupResult:
    entry = CacheEntry(
        code="abc",
        variant="counts=1#event=-",
        kind=entry_kind,
        body=body,
        etag='"x"',
        fetched_at=NOW,
        fresh_until=NOW + fresh_seconds,
        expires_at=int(NOW) + 3600,
    )
    return LookupResult(entry=entry, cache_status=CacheStatus.HIT, now=NOW)


def test_the_image_is_kept_as_long_as_the_invite_is_fresh_and_can_run_nothing() -> None:
    shown = invite("G")
    response = svg_card.card_response(
        result(EntryKind.INVITE, json.dumps(shown)), shown, "dark", None
    )
    headers = response.for_api_gateway()["headers"]
    assert response.status_code == 200
    assert headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=60"
    assert headers["Content-Security-Policy"] == "default-src 'none'; img-src data:"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_an_icon_that_could_not_be_had_is_tried_again_sooner() -> None:
    with_icon = invite("G")
    with_icon["guild"] = {"id": "42", "name": "G", "icon": "0" * 32}
    fresh_an_hour = result(EntryKind.INVITE, json.dumps(with_icon), fresh_seconds=3600)
    drawn = svg_card.card_response(fresh_an_hour, with_icon, "dark", b"\x89PNG\r\n\x1a\n")
    assert drawn.headers["Cache-Control"] == "public, max-age=3600"
    without = svg_card.card_response(fresh_an_hour, with_icon, "dark", None)
    assert without.headers["Cache-Control"] == "public, max-age=60"  # the icon's hold


def test_times_that_are_not_times_are_left_out() -> None:
    for odd in ("0001-01-01T00:30:00+01:00", "soon", "9999-12-31T23:59:59-14:00", 12):
        svg = svg_card.invite_card(invite("G", expires_at=odd), "dark", None)
        assert "Never expires" in svg  # as if none: never a failure


def test_counts_with_no_room_left_are_not_drawn_as_an_ellipsis() -> None:
    huge = invite("G", approximate_member_count=10**30, approximate_presence_count=10**30)
    drawn = ["".join(t.itertext()) for t in texts(parsed(svg_card.invite_card(huge, "dark", None)))]
    assert "\u2026" not in drawn


def test_unknown_is_the_invalid_card_and_a_failure_an_unavailable_card_no_cache_keeps() -> None:
    unknown = svg_card.card_response(result(EntryKind.UNKNOWN), None, "light", None)
    assert unknown.status_code == 200
    assert "Invalid invite" in unknown.body
    assert unknown.headers["Cache-Control"] == "public, max-age=60"
    gone = svg_card.error_card(UnknownInvite(), "dark")  # a guild with no lasting invite
    assert gone.status_code == 200
    assert "Invalid invite" in gone.body
    bad = svg_card.error_card(InvalidInput("Invalid theme: it is dark or light."), "dark")
    assert bad.status_code == 400
    assert "Invalid theme: it is dark or light." in bad.body
    for failure in (DiscordUnavailable(), CallerShareExhausted()):
        answer = svg_card.error_card(failure, "dark")
        assert answer.status_code == 200
        assert "Invite unavailable" in answer.body
        assert answer.headers["Cache-Control"] == "no-store"
        assert "Content-Security-Policy" in answer.headers
        parsed(answer.body)
    assert svg_card.error_card(CallerShareExhausted(), "dark").headers["Retry-After"] == "30"
    # Rounded up, as every Retry-After the proxy sends: never too soon.
    waiting = svg_card.error_card(CallerShareExhausted(retry_after=2.1), "dark")
    assert waiting.headers["Retry-After"] == "3"
