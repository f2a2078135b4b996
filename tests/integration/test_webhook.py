"""The webhook adapter over real HTTP: what it posts, and that it never waits past its time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from discord_emulator import DiscordEmulator
from invite_proxy.adapters.discord.webhook import WebhookNotifier
from invite_proxy.adapters.secrets import static_secret
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import NotificationFailed
from tests.stand_ins import HangingServer


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def notifier(url: str, *, timeout: float, deadline: Deadline) -> _Bound:
    return _Bound(WebhookNotifier(static_secret(url), timeout=timeout, user_agent="test"), deadline)


class _Bound:
    """A notifier and the deadline its sends are made within."""

    def __init__(self, notifier: WebhookNotifier, deadline: Deadline) -> None:
        self.notifier, self.deadline = notifier, deadline

    def send(self, content: str) -> None:
        self.notifier.send(content, self.deadline)


def test_a_post_that_gets_no_answer_ends_at_the_deadline(hanging: HangingServer) -> None:
    deadline = Deadline.from_remaining_ms(500, reserve=0.0)  # well inside the 10 s timeout
    started = time.monotonic()
    with pytest.raises(NotificationFailed) as failed:
        notifier(f"{hanging.url}/webhooks/1/hook-secret", timeout=10, deadline=deadline).send("x")
    assert time.monotonic() - started < 0.5 + 0.2
    assert "hook-secret" not in str(failed.value.detail)  # the URL's token stays out of errors


def test_a_post_that_gets_no_answer_ends_at_its_timeout(hanging: HangingServer) -> None:
    started = time.monotonic()
    with pytest.raises(NotificationFailed):
        notifier(hanging.url, timeout=0.3, deadline=NO_DEADLINE).send("x")
    assert time.monotonic() - started < 0.3 + 0.2


def test_mentions_never_ping(emulator: DiscordEmulator) -> None:
    url = f"{emulator.base_url}/webhooks/9/tok"
    notifier(url, timeout=2, deadline=NO_DEADLINE).send("@everyone done")
    [message] = emulator.state.webhook_messages
    assert message["allowed_mentions"] == {"parse": []}
