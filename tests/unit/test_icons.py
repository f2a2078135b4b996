"""Guild icons through the proxy (services/icons.py, domain/icons.py), over fakes and a fake
clock: only the icon an invite shows, fetched once, kept by its hash, failures held."""

from __future__ import annotations

import pytest

from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import IconUnavailable, InvalidInput, UnknownIcon
from invite_proxy.domain.icons import (
    FAILURE_HOLD_SECONDS,
    MAX_ICON_BYTES,
    IconFile,
    icon_of,
    still_of,
)
from invite_proxy.services.icons import GuildIcons
from tests.unit.fakes import FakeClock, Table

HASH = "5f4dcc3b5aa765d61d8327deb882cf99"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
GIF = b"GIF89a" + b"\x00" * 20


class FakeStore:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.items: dict[tuple[str, str], tuple[bytes, float]] = {}

    def get(self, guild_id: str, file_name: str, now: float, deadline: Deadline) -> bytes | None:
        self.table.charge(deadline=deadline)
        kept = self.items.get((guild_id, file_name))
        return kept[0] if kept and kept[1] > now else None

    def put(
        self, guild_id: str, file_name: str, data: bytes, until: float, deadline: Deadline
    ) -> None:
        self.table.charge(deadline=deadline)
        self.items[(guild_id, file_name)] = (data, until)


class FakeCdn:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.answer: bytes | Exception = PNG

    def icon(self, guild_id: str, file: IconFile, deadline: Deadline) -> bytes:
        self.asked.append((guild_id, file.name))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def table(clock: FakeClock) -> Table:
    return Table(clock)


@pytest.fixture
def store(table: Table) -> FakeStore:
    return FakeStore(table)


@pytest.fixture
def cdn() -> FakeCdn:
    return FakeCdn()


def icons(store: FakeStore, cdn: FakeCdn, clock: FakeClock, **more: int) -> GuildIcons:
    return GuildIcons(store=store, cdn=cdn, clock=clock, **more)


def invite(icon: str | None = HASH, guild_id: str = "42") -> dict[str, object]:
    return {"code": "abc", "guild": {"id": guild_id, "name": "G", "icon": icon}}


# -- what a request may name ---------------------------------------------------------------


def test_an_icon_file_is_a_hash_and_png_or_an_animated_ones_gif() -> None:
    assert IconFile.parse(f"{HASH}.png") == IconFile(HASH, "png")
    assert IconFile.parse(f"a_{HASH}.gif").media_type == "image/gif"
    assert IconFile.parse(f"a_{HASH}.png").name == f"a_{HASH}.png"  # an animated one, still
    for bad in (f"{HASH}.gif", f"{HASH}.webp", f"{HASH}", "x.png", f"{HASH.upper()}.png",
                f"../{HASH}.png", f"{HASH}.png.png", ""):  # fmt: skip
        with pytest.raises(InvalidInput):
            IconFile.parse(bad)


def test_what_the_cdn_sends_must_be_an_image_of_the_format_and_small() -> None:
    png, gif = IconFile(HASH, "png"), IconFile("a_" + HASH, "gif")
    assert png.holds(PNG)
    assert gif.holds(GIF)
    assert not png.holds(GIF)
    assert not gif.holds(PNG)
    assert not png.holds(b"<html>not an image</html>")
    assert not png.holds(PNG + b"\x00" * MAX_ICON_BYTES)


def test_the_icon_an_invite_shows() -> None:
    assert icon_of(invite()) == ("42", HASH)
    assert icon_of(invite(icon=None)) is None
    assert icon_of(invite(icon="../../etc")) is None  # Discord's field, but checked all the same
    assert icon_of({"code": "x"}) is None
    assert still_of(invite("a_" + HASH)) == IconFile("a_" + HASH, "png")


# -- the service -----------------------------------------------------------------------------


def test_only_the_icon_the_invite_shows_is_served_and_nothing_is_fetched_otherwise(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock
) -> None:
    service = icons(store, cdn, clock)
    other = "0" * 32
    with pytest.raises(UnknownIcon):
        service.of_invite(invite(), IconFile(other, "png"), NO_DEADLINE)
    with pytest.raises(UnknownIcon):
        service.of_invite(invite(icon=None), IconFile(HASH, "png"), NO_DEADLINE)
    assert cdn.asked == []
    assert store.table.calls == 0
    assert service.of_invite(invite(), IconFile(HASH, "png"), NO_DEADLINE) == PNG
    assert cdn.asked == [("42", f"{HASH}.png")]


def test_fetched_once_kept_in_the_table_for_every_instance_and_in_memory_for_this_one(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock, table: Table
) -> None:
    file = IconFile(HASH, "png")
    first = icons(store, cdn, clock)
    assert first.icon("42", file, NO_DEADLINE) == PNG
    assert (len(cdn.asked), table.calls) == (1, 2)  # a read that missed, then the write
    assert first.icon("42", file, NO_DEADLINE) == PNG
    assert (len(cdn.asked), table.calls) == (1, 2)  # memory: no call at all
    second = icons(store, cdn, clock)  # another instance
    assert second.icon("42", file, NO_DEADLINE) == PNG
    assert (len(cdn.asked), table.calls) == (1, 3)  # the table's copy


def test_a_failed_fetch_is_held_so_a_flood_of_it_is_one_fetch(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock
) -> None:
    service = icons(store, cdn, clock)
    file = IconFile(HASH, "png")
    cdn.answer = IconUnavailable(detail="CDN down")
    for _ in range(50):
        with pytest.raises(IconUnavailable) as raised:
            service.icon("42", file, NO_DEADLINE)
    assert len(cdn.asked) == 1
    assert raised.value.retry_after is not None
    assert 0 < raised.value.retry_after <= FAILURE_HOLD_SECONDS
    cdn.answer = PNG
    clock.advance(FAILURE_HOLD_SECONDS + 1)
    assert service.icon("42", file, NO_DEADLINE) == PNG
    assert len(cdn.asked) == 2


def test_what_is_not_an_image_is_refused_held_and_never_kept(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock
) -> None:
    service = icons(store, cdn, clock)
    cdn.answer = b"<html><script>alert(1)</script></html>"
    for _ in range(3):
        with pytest.raises(IconUnavailable):
            service.icon("42", IconFile(HASH, "png"), NO_DEADLINE)
    assert len(cdn.asked) == 1
    assert store.items == {}


def test_with_the_table_down_icons_still_come_from_the_cdn(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock, table: Table
) -> None:
    table.down = True
    assert icons(store, cdn, clock).icon("42", IconFile(HASH, "png"), NO_DEADLINE) == PNG


def test_memory_is_bounded_in_bytes_oldest_first(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock, table: Table
) -> None:
    service = icons(store, cdn, clock, memory_bytes=3 * len(PNG))
    hashes = [f"{n:032x}" for n in range(4)]
    for hash_ in hashes:
        service.icon("42", IconFile(hash_, "png"), NO_DEADLINE)
    calls = table.calls
    service.icon("42", IconFile(hashes[3], "png"), NO_DEADLINE)  # kept
    assert table.calls == calls
    service.icon("42", IconFile(hashes[0], "png"), NO_DEADLINE)  # dropped: read again
    assert table.calls == calls + 1


def test_a_fetch_cut_short_by_the_requests_own_deadline_is_not_held(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock
) -> None:
    """One card whose lookup used its time must not leave every card iconless a minute."""
    service = icons(store, cdn, clock)
    file = IconFile(HASH, "png")
    cdn.answer = IconUnavailable(detail="no time left before the request's deadline")
    with pytest.raises(IconUnavailable):
        service.icon("42", file, Deadline(clock.now, clock))  # no time left
    cdn.answer = PNG
    assert service.icon("42", file, NO_DEADLINE) == PNG
    assert len(cdn.asked) == 2


def test_a_cards_icon_is_the_still_or_none_never_a_failure(
    store: FakeStore, cdn: FakeCdn, clock: FakeClock
) -> None:
    service = icons(store, cdn, clock)
    assert service.still_for(invite("a_" + HASH), NO_DEADLINE) == PNG
    assert cdn.asked == [("42", f"a_{HASH}.png")]  # an animated icon's still
    assert service.still_for(invite(icon=None), NO_DEADLINE) is None
    cdn.answer = IconUnavailable(detail="CDN down")
    assert service.still_for(invite(HASH), NO_DEADLINE) is None
