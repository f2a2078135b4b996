"""A flood of random codes from one address, through the local run: it spends its share of
the lookup budget and no more, and the others' lookups go on.

Callers are told apart by the address the gateway saw, so each caller here connects
from an address of its own on the loopback network (127.0.0.2, 127.0.0.3, ...).
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy_local.runner import LocalRun

ROUTE = "GET /invites/{code}"
SHARE = 5


def get_from(
    source: str, run: LocalRun, code: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """GET /invites/{code}, sent from ``source``: the caller's own address."""
    url = urlsplit(run.url)
    conn = http.client.HTTPConnection(
        url.hostname or "127.0.0.1", url.port, timeout=15, source_address=(source, 0)
    )
    try:
        conn.request("GET", f"/invites/{code}", headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_a_flooding_caller_spends_its_share_and_the_others_are_served(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api(LOOKUP_BUDGET_PER_10_MINUTES="40", LOOKUP_SHARE_PER_CALLER=str(SHARE))
    real = [f"share-real-{n}" for n in range(6)]
    for code in real:
        emulator.state.add_invite(guild, code=code)

    def flood(_: int) -> tuple[int, str]:
        status, headers, body = get_from("127.0.0.2", run, f"rand{secrets.token_hex(5)}")
        return status, body.get("error", {}).get("code", "") or headers.get("Retry-After", "")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(flood, range(60)))
    statuses = Counter(status for status, _ in answers)
    assert statuses[404] == SHARE  # its share went to Discord, and found nothing
    assert statuses[429] == 60 - SHARE
    assert {code for status, code in answers if status == 429} == {"lookup_share_exhausted"}
    flood_calls = len(emulator.state.requests_to(ROUTE))
    assert flood_calls == SHARE

    # Other callers, each from an address of its own, are served as if nothing happened.
    for n, code in enumerate(real):
        status, headers, body = get_from(f"127.0.0.{3 + n}", run, code)
        assert (status, body["code"], headers["X-Cache"]) == (200, code, "MISS")
    # And the flooder's cached answers stay free to it.
    status, headers, _ = get_from("127.0.0.2", run, real[0])
    assert (status, headers["X-Cache"]) == (200, "HIT")
    refused_status, refused_headers, _ = get_from("127.0.0.2", run, "rand-once-more")
    assert refused_status == 429
    assert 0 < int(refused_headers["Retry-After"]) <= 600 // SHARE


def test_behind_the_cdn_each_viewer_has_its_share_and_a_forged_viewer_none(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    """One address (CloudFront's edge, here) carries many viewers: with the origin secret
    each viewer spends its own share; a viewer named without it is the address's."""
    run = start_api(CDN_ORIGIN_SECRET="edge-proof", LOOKUP_SHARE_PER_CALLER="2")

    def ask(viewer: str, proof: str) -> int:
        headers = {"X-Viewer-Address": viewer, "X-Origin-Verify": proof}
        return get_from("127.0.0.8", run, f"rand{secrets.token_hex(5)}", headers)[0]

    through_cdn = [ask(f"198.51.100.{n}", "edge-proof") for n in range(1, 6) for _ in range(2)]
    assert through_cdn == [404] * 10  # five viewers, two misses each: all within their shares
    forged = [ask(f"198.51.100.{n}", "a-guess") for n in range(10, 14)]
    assert forged == [404, 404, 429, 429]  # straight to the API: the address's share alone
