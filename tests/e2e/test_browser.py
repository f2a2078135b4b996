"""The invite card and the admin page in a real browser (Debian's Chromium, driven by Playwright),
served from a second origin, calling the local API across origins with real preflights.

Screenshots of each card state, in both colour schemes, land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.seeds import (
    EVENT_GUILD_ID,
    SAMPLE_EVENT_ID,
    SAMPLE_GUILD_ID,
    SAMPLE_GUILD_IDS,
    seed_samples,
)
from discord_emulator.server import CDN_ROUTE
from invite_proxy_local import runner
from invite_proxy_local.gateway import HttpResponse
from tests.conftest import closed_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("REQUIRE_BROWSER") or os.environ.get("CI"):
        pytest.fail(
            "REQUIRE_BROWSER is set but chromium is not installed; .ci/run installs it "
            "(apt-get install -y chromium)",
            pytrace=False,
        )
    pytest.skip(
        "browser tests need Chromium: apt-get install chromium (Debian/Ubuntu), then make test",
        allow_module_level=True,
    )

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import (  # noqa: E402
    Browser,
    BrowserContext,
    Dialog,
    Page,
    Playwright,
    sync_playwright,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"
TOKEN = "dip_browser-test-token-000000000000000000000000"
DOCS_HOST = "invite-proxy.test"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    assert CHROMIUM is not None
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            # A name that is not loopback, for pages that behave differently on localhost.
            f"--host-resolver-rules=MAP {DOCS_HOST} 127.0.0.1",
        ],
    )
    yield launched
    launched.close()


@dataclass
class Seen:
    """What reached the local API gateway, preflights included."""

    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def of(self, method: str, path: str) -> list[dict[str, str]]:
        """The headers of each request to ``path`` (whatever its query)."""
        return [h for m, t, h in self.requests if m == method and t.split("?")[0] == path]


@dataclass
class Site:
    run: runner.LocalRun
    emulator: DiscordEmulator
    seen: Seen
    # Lookups wait here while it is clear: a card can be caught in `loading`.
    open_: threading.Event = field(default_factory=threading.Event)

    @property
    def web(self) -> str:
        assert self.run.web_url is not None
        return self.run.web_url

    def page_url(self, name: str = "") -> str:
        return f"{self.web}/{name}?api={self.run.url}"


def start_site(
    start_api: Callable[..., runner.LocalRun], emulator: DiscordEmulator, **env: str
) -> Site:
    """`make run`'s API and pages: the pages on their own origin, which CORS allows."""
    seed_samples(emulator.state)
    web_port = closed_port()
    run = start_api(WEB_PORT=str(web_port), ALLOWED_ORIGINS=f"http://127.0.0.1:{web_port}", **env)
    site = Site(run, emulator, Seen())
    site.open_.set()
    handle = run.gateway.handle

    def recording(
        method: str, target: str, headers: list[tuple[str, str]], *args: Any
    ) -> HttpResponse:
        site.seen.requests.append((method, target, {k.lower(): v for k, v in headers}))
        if method == "GET":
            site.open_.wait(10)
        return handle(method, target, headers, *args)

    run.gateway.handle = recording  # type: ignore[method-assign,assignment]
    return site


@pytest.fixture
def site(start_api: Callable[..., runner.LocalRun], emulator: DiscordEmulator) -> Site:
    """Open mode, one attempt per fetch, no failure held: each test scripts Discord."""
    return start_site(
        start_api,
        emulator,
        LOCAL_ADMIN_TOKEN=TOKEN,
        UPSTREAM_RETRIES="0",
        LOOKUP_FAILURE_HOLD_SECONDS="0",
    )


def _context(browser: Browser, scheme: str = "light") -> BrowserContext:
    # No page.route() here: with routing on, Playwright answers CORS preflights itself and
    # turns the HTTP cache off, and these tests are about both.
    return browser.new_context(color_scheme=scheme, viewport={"width": 1000, "height": 1100})  # type: ignore[arg-type]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = _context(browser)
    yield context.new_page()
    context.close()


def card(page: Page, card_id: str) -> dict[str, Any]:
    """A card's state and what its shadow root shows."""
    return page.evaluate(  # type: ignore[no-any-return]
        """id => {
            const el = document.getElementById(id), root = el.shadowRoot;
            const q = (s) => root.querySelector(s);
            const img = q("img");
            return {
              state: el.getAttribute("state"),
              name: q(".name").textContent.trim(),
              counts: q(".counts").textContent.trim(),
              channel: q(".channel").textContent,
              expiry: q(".expiry").textContent,
              event: q(".event").hidden ? null : q(".event").textContent,
              join: q(".join").hidden ? null : q(".join").href,
              icon: img.getAttribute("src"),
              iconShown: !img.hidden,
              initials: q(".initials").hidden ? null : q(".initials").textContent,
              message: q(".message").textContent,
              text: q(".card").textContent,
              retry: q(".retry").hidden ? null : {text: q(".retry").textContent,
                disabled: q(".retry").getAttribute("aria-disabled") === "true"},
            };
        }""",
        card_id,
    )


def wait_state(page: Page, card_id: str, state: str, timeout: float = 10_000) -> dict[str, Any]:
    page.wait_for_function(
        "([id, state]) => document.getElementById(id)?.getAttribute('state') === state",
        arg=[card_id, state],
        timeout=timeout,
    )
    return card(page, card_id)


def screenshot(page: Page, card_id: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"#{card_id}").screenshot(path=str(ARTIFACTS / f"{name}.png"))


# -- the cards -----------------------------------------------------------------------------


def test_live_permanent_and_event_invites_render_like_discord(site: Site, page: Page) -> None:
    page.goto(site.page_url())
    live = wait_state(page, "live", "ready")
    assert live["name"] == "Invite Proxy Demo"
    assert live["counts"] == "321 Online 1,234 Members"
    assert live["channel"] == "#events"
    assert live["expiry"].startswith("· Expires in 59m") or live["expiry"] == "· Expires in 1h 00m"
    assert live["join"] == "https://discord.gg/hourly01"
    assert live["icon"] is None  # no icon hash: Discord's initials instead
    assert live["initials"] == "IPD"
    assert not live["iconShown"]
    assert live["message"] == "Invite to Invite Proxy Demo."

    permanent = wait_state(page, "permanent", "ready")
    assert permanent["expiry"] == "· Never expires"
    assert permanent["join"] == "https://discord.gg/proxy-demo"

    event = wait_state(page, "event", "ready")
    assert event["name"] == "Pixel Art Club"
    assert event["counts"] == "12 Online 87 Members"
    assert event["event"].startswith("Event: Monthly Game Night, ")
    assert event["join"] == f"https://discord.gg/gamenight?event={SAMPLE_EVENT_ID}"
    # An a_ hash is animated: a GIF, through the proxy (the visitor never asks Discord).
    hash_ = site.emulator.state.guilds[EVENT_GUILD_ID].icon
    assert event["icon"] == f"{site.run.url}/invites/gamenight/icons/{hash_}.gif"
    assert event["iconShown"]
    assert event["initials"] is None
    icon = "document.getElementById('event').shadowRoot.querySelector('img')"
    page.wait_for_function(f"() => {icon}.complete && {icon}.naturalWidth > 0", timeout=10_000)

    # What the card asked the proxy for: counts, and the event it names.
    [asked] = [t for m, t, _ in site.seen.requests if t.startswith("/invites/gamenight?")]
    assert (
        asked == f"/invites/gamenight?with_counts=true&guild_scheduled_event_id={SAMPLE_EVENT_ID}"
    )


def test_icon_rules_follow_discords_cdn(page: Page, site: Site) -> None:
    page.goto(site.page_url())
    urls = page.evaluate(
        """async () => {
            const m = await import("./discord-invite-card.js");
            return [m.iconUrl("https://p.example", "abc", "f00"),
                    m.iconUrl("https://p.example", "abc", "a_f00"),
                    m.iconUrl("https://p.example", "abc", "a_f00", false),
                    m.iconUrl("https://p.example", "a b", "f00"),
                    m.iconUrl("https://p.example", "abc", null), m.initials("Pixel  Art club"),
                    m.joinUrl("a b", "9"), m.formatLeft(3_723_000), m.formatLeft(59_500)];
        }"""
    )
    assert urls == [
        "https://p.example/invites/abc/icons/f00.png",
        "https://p.example/invites/abc/icons/a_f00.gif",  # animated
        "https://p.example/invites/abc/icons/a_f00.png",  # prefers-reduced-motion: a still
        "https://p.example/invites/a%20b/icons/f00.png",
        None,
        "PAc",
        "https://discord.gg/a%20b?event=9",
        "1h 02m",
        "1m 00s",
    ]


def test_an_icon_the_proxy_cannot_get_leaves_the_initials(site: Site, page: Page) -> None:
    site.emulator.state.inject(Fault(status=503, body="busy", route=CDN_ROUTE, times=5))
    page.goto(site.page_url())
    wait_state(page, "event", "ready")
    # The icon fails to load, and the initials stand in, as in Discord.
    page.wait_for_function(
        "() => document.getElementById('event').shadowRoot.querySelector('img').hidden"
    )
    assert card(page, "event")["initials"] == "PAC"


def test_unknown_and_short_lived_invites(site: Site, page: Page) -> None:
    state = site.emulator.state
    state.add_invite(state.guilds[SAMPLE_GUILD_ID], code="blink", channel_name="flash", max_age=3)
    page.goto(site.page_url())
    unknown = wait_state(page, "unknown", "unknown")
    assert unknown["message"] == "This invite is invalid or has been revoked."
    assert unknown["name"] == "Invalid invite"
    assert unknown["join"] is None
    # Changing `code` re-renders the card: this one lives three seconds.
    page.evaluate("document.getElementById('short').setAttribute('code', 'blink')")
    ready = wait_state(page, "short", "ready")
    assert ready["channel"] == "#flash"
    assert ready["expiry"].startswith("· Expires in ")
    expired = wait_state(page, "short", "expired", timeout=8_000)
    assert expired["message"] == "This invite has expired."
    assert expired["name"] == "Invite Proxy Demo"
    assert expired["join"] is None


def test_an_error_offers_a_retry_that_waits_for_retry_after(site: Site, page: Page) -> None:
    site.emulator.state.inject(
        Fault(status=503, body='{"message": "overloaded", "code": 130000}', times=100)
    )
    page.goto(site.page_url())
    failed = wait_state(page, "live", "error")
    assert failed["retry"] == {"text": "Try again in 2s", "disabled": True}  # Retry-After: 2
    assert failed["message"].startswith("The invite could not be loaded right now.")
    assert failed["name"] == "Invite unavailable"
    assert "overloaded" not in failed["text"]
    assert "upstream" not in failed["text"]
    assert "{" not in failed["text"]  # never a raw error body
    assert failed["message"].endswith("Try again in 2 seconds.")
    site.emulator.state.faults.clear()
    retry = page.locator("#live").get_by_role("button", name="Try again")
    retry.focus()
    page.keyboard.press("Enter")  # too early: the button waits out Retry-After
    assert card(page, "live")["state"] == "error"
    page.wait_for_function(
        "() => !document.getElementById('live').shadowRoot.querySelector('.retry')"
        ".hasAttribute('aria-disabled')"
    )
    page.keyboard.press("Enter")
    assert wait_state(page, "live", "ready")["name"] == "Invite Proxy Demo"
    # Focus did not fall out of the card: it moved from Try again to Join.
    assert (
        page.evaluate(
            "() => document.getElementById('live').shadowRoot.activeElement?.getAttribute('part')"
        )
        == "join"
    )


def test_a_wrong_api_url_is_an_error_not_an_unknown_invite(site: Site, page: Page) -> None:
    site.emulator.state.inject(
        Fault(status=503, body='{"message": "overloaded", "code": 130000}', times=100)
    )
    page.goto(site.page_url())
    assert wait_state(page, "permanent", "error")["retry"]["disabled"]  # Retry-After: 2
    # API Gateway's own 404 (no such route) is not Discord's unknown invite.
    page.evaluate(
        f"document.getElementById('permanent').setAttribute('api', '{site.run.url}/prod')"
    )
    wrong = wait_state(page, "permanent", "error")
    assert wrong["retry"] == {"text": "Try again", "disabled": False}  # no Retry-After now


def test_no_layout_shift_between_loading_and_ready(site: Site, page: Page) -> None:
    page.add_init_script(
        "window.shifts = [];"
        "new PerformanceObserver(list => window.shifts.push("
        "...list.getEntries().map(e => e.value))).observe({type: 'layout-shift'});"
    )
    site.open_.clear()  # the proxy holds every lookup until the loading cards are measured
    page.goto(site.page_url(), wait_until="domcontentloaded")
    page.wait_for_function("() => document.fonts.status === 'loaded'")
    wait_state(page, "event", "loading")
    loading = {i: page.locator(f"#{i}").bounding_box() for i in ("live", "event")}
    page.evaluate("window.shifts = []")  # from here on: loading to ready
    site.open_.set()
    page.wait_for_function(
        "() => ['live', 'event'].every("
        "id => document.getElementById(id).getAttribute('state') === 'ready')",
        polling=100,
    )
    ready = {i: page.locator(f"#{i}").bounding_box() for i in ("live", "event")}
    assert ready == loading
    # The browser's own measure: cumulative layout shift (0.1 is Google's "good" line). A
    # text line's baseline may settle by a pixel or two when its text arrives, scored
    # 0.0002 to 0.0011 in runs here; a line or box that moves scores tens of times more.
    shifts = page.evaluate("window.shifts")
    assert sum(shifts) < 0.005, shifts


def test_the_browser_cache_answers_while_the_proxy_says_fresh(site: Site, page: Page) -> None:
    page.goto(site.page_url())
    wait_state(page, "permanent", "ready")
    page.goto(site.page_url())  # a new visit, not a reload (which revalidates everything)
    wait_state(page, "permanent", "ready")
    # Cache-Control: public, max-age=N: the second visit's card is answered by the browser.
    assert len(site.seen.of("GET", "/invites/proxy-demo")) == 1


def test_keyboard_reaches_join_with_a_visible_focus(site: Site, page: Page) -> None:
    page.goto(site.page_url())
    wait_state(page, "live", "ready")
    page.locator("#admin-link").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate(
        """() => {
            const host = document.activeElement, inner = host.shadowRoot?.activeElement;
            const style = inner && getComputedStyle(inner);
            return {host: host.id, part: inner?.getAttribute("part"),
                    outline: style?.outlineStyle, width: style?.outlineWidth};
        }"""
    )
    assert focused == {"host": "live", "part": "join", "outline": "solid", "width": "3px"}


def test_a_page_on_an_origin_not_allowed_is_blocked_by_the_browser(
    site: Site, browser: Browser
) -> None:
    handler = partial(SimpleHTTPRequestHandler, directory=str(REPO / "web"))
    other = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    context = _context(browser)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    try:
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/?api={site.run.url}")
        failed = wait_state(page, "permanent", "error")
        assert failed["message"] == "The invite could not be loaded right now."
        assert any("blocked by CORS policy" in line for line in console), console
        # The proxy did answer; it is the browser that withheld the answer from the page.
        answered = site.seen.of("GET", "/invites/proxy-demo")
        assert answered
        assert all(h["origin"] == f"http://127.0.0.1:{other.server_address[1]}" for h in answered)
    finally:
        context.close()
        other.shutdown()
        other.server_close()


# -- the admin page ------------------------------------------------------------------------


def revoke(page: Page, code: str, token: str, reason: str = "", api: str = "") -> str:
    if api:
        page.fill("#api", api)
    page.fill("#token", token)
    page.fill("#code", code)
    page.fill("#reason", reason)
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_function("() => document.getElementById('outcome').dataset.status")
    text = page.locator("#outcome").text_content() or ""
    page.evaluate("delete document.getElementById('outcome').dataset.status")
    return text


def test_the_admin_page_revokes_with_a_preflight_and_the_card_then_shows_unknown(
    site: Site, browser: Browser
) -> None:
    context = _context(browser)
    page = context.new_page()
    page.goto(site.page_url())
    assert wait_state(page, "live", "ready")["name"] == "Invite Proxy Demo"
    page.goto(site.page_url("admin.html"))
    # The page never takes the API's address from its own URL; the admin types it.
    assert page.input_value("#api") == "http://127.0.0.1:3000"
    outcome = revoke(page, "hourly01", TOKEN, "Event is over: 100% done", api=site.run.url)
    assert outcome.startswith("Revoked hourly01."), outcome
    [preflight] = site.seen.of("OPTIONS", "/invites/hourly01")
    assert preflight["access-control-request-method"] == "DELETE"
    assert set(preflight["access-control-request-headers"].split(",")) == {
        "authorization",
        "x-audit-log-reason",
    }
    [delete] = site.seen.of("DELETE", "/invites/hourly01")
    assert delete["authorization"] == f"Bearer {TOKEN}"
    assert delete["x-audit-log-reason"] == "Event%20is%20over%3A%20100%25%20done"
    [entry] = site.emulator.state.audit_log
    assert entry.reason == "Event is over: 100% done"
    # The token lived in the page's memory only.
    stored = page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie, location.href]"
    )
    assert stored[:3] == [0, 0, ""]
    assert TOKEN not in stored[3]
    context.close()

    # A browser that had not cached the card asks the proxy, which knows it is gone.
    fresh = _context(browser)
    page = fresh.new_page()
    page.goto(site.page_url())
    assert wait_state(page, "live", "unknown")["join"] is None
    fresh.close()


def test_the_admin_page_says_what_each_answer_means(site: Site, page: Page) -> None:
    page.goto(site.page_url("admin.html"))
    assert "not an admin token" in revoke(page, "proxy-demo", "dip_wrong-token", api=site.run.url)
    assert "No admin token was sent" in revoke(page, "proxy-demo", "")
    assert "There is no invite nosuchcode" in revoke(page, "nosuchcode", TOKEN)
    state = site.emulator.state
    rate_limited = '{"message": "You are being rate limited.", "retry_after": 3, "global": false}'
    state.inject(
        Fault(
            status=429,
            body=rate_limited,
            headers={"X-RateLimit-Scope": "user", "Retry-After": "3"},
            route="DELETE /invites/{code}",
        )
    )
    assert "Discord is rate limiting the proxy. Try again in 3 s." in revoke(
        page, "gamenight", TOKEN
    )
    state.inject(
        Fault(
            status=503,
            body='{"message": "overloaded", "code": 130000}',
            route="DELETE /invites/{code}",
        )
    )
    # Within the 429's block the proxy answers for Discord; after it, the 503 is Discord's.
    page.wait_for_timeout(3_100)
    outcome = revoke(page, "gamenight", TOKEN)
    assert outcome.startswith("The proxy cannot reach Discord right now. Try again in")
    assert site.emulator.state.find_invite("gamenight") is not None  # nothing was deleted


# -- accessibility and the look of each state ----------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_have_no_serious_accessibility_violations_and_each_state_is_pictured(
    site: Site, browser: Browser, scheme: str
) -> None:
    state = site.emulator.state
    context = _context(browser, scheme)
    page = context.new_page()
    page.goto(site.page_url())
    for card_id, state_name in (
        ("live", "ready"),
        ("permanent", "ready"),
        ("event", "ready"),
        ("unknown", "unknown"),
    ):
        wait_state(page, card_id, state_name)
    axe = Axe()
    results = axe.run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, results.generate_report()
    for card_id, name in (("live", "ready"), ("event", "ready-event"), ("unknown", "unknown")):
        screenshot(page, card_id, f"{name}-{scheme}")
    state.add_invite(state.guilds[SAMPLE_GUILD_ID], code="blink", max_age=3)
    page.evaluate("document.getElementById('short').setAttribute('code', 'blink')")
    wait_state(page, "short", "expired")
    screenshot(page, "short", f"expired-{scheme}")
    state.inject(Fault(status=503, body='{"message": "x", "code": 130000}', times=10))
    page.evaluate("document.getElementById('short').setAttribute('code', 'erroring')")
    wait_state(page, "short", "error")
    screenshot(page, "short", f"error-{scheme}")
    state.faults.clear()
    site.open_.clear()
    page.evaluate("document.getElementById('short').setAttribute('code', 'tempjoin')")
    wait_state(page, "short", "loading")
    screenshot(page, "short", f"loading-{scheme}")
    site.open_.set()

    page.goto(site.page_url("admin.html"))
    revoke(page, "nosuchcode", TOKEN, api=site.run.url)
    results = axe.run(page)
    serious = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not serious, results.generate_report()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"admin-{scheme}.png"), full_page=True)
    context.close()


def test_the_api_docs_viewer_works_with_no_internet(site: Site, browser: Browser) -> None:
    context = browser.new_context()
    outside: list[str] = []

    docs = site.run.url.replace("127.0.0.1", DOCS_HOST)

    def only_loopback(route: Any) -> None:
        if route.request.url.startswith(docs):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.goto(f"{docs}/docs")  # not loopback: Swagger UI would call its online validator
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    operations = page.locator(".opblock-summary-method").all_text_contents()
    document = json.loads((REPO / "functions/docs/openapi.json").read_text())
    documented = [method.upper() for ops in document["paths"].values() for method in ops]
    assert sorted(operations) == sorted(documented)  # every operation the document has
    assert outside == []
    context.close()


# -- the image cards, where no script runs -----------------------------------------------------

NAMES = {
    "hostile": '<script>alert(1)</script><svg onload="alert(2)"> & <img src=x onerror=alert(3)>',
    "rtl": "نادي فن البكسل للألعاب والمسابقات الأسبوعية الكبرى في المدينة القديمة",
    "long": "W" * 100,
    "emoji": "🎮👾🕹️ Pixel 👩‍👩‍👧‍👦 Club 🇯🇵 日本語のサーバー名前テスト ✨✨✨✨",
    "mixed": "Club שלום עולם 123 hello world ✨ " * 3,
    "braces": "{" * 100,
    "wide": "Ǆ‱Ⅷᐁᐂ⸻" * 20,  # among the widest glyphs in the fonts a browser picks
}
CARD_WIDTH, CARD_PAD = 432, 16


def _named_invites(site: Site) -> dict[str, str]:
    """An invite to a guild of each awkward name (its channel and event named alike)."""
    state = site.emulator.state
    codes = {}
    for label, name in NAMES.items():
        guild = state.add_guild(name[:100], icon=("a_" if label == "rtl" else "") + "ab" * 16)
        event = state.add_event(guild, name[:100], scheduled_start_time=state.now() + 86_400)
        invite = state.add_invite(guild, channel_name=name[:100], max_age=3600)
        codes[label] = f"{invite.code}/card.svg?guild_scheduled_event_id={event.id}"
    return codes


@pytest.mark.parametrize("theme", ["dark", "light"])
def test_the_image_card_on_another_origin_keeps_every_name_inside_it(
    site: Site, browser: Browser, theme: str
) -> None:
    codes = _named_invites(site)
    context = _context(browser, theme)
    page = context.new_page()
    page.goto(site.page_url())  # a page of the web origin; the images are the proxy's
    page.evaluate(
        """([api, paths, theme]) => {
            const list = document.createElement("div");
            list.id = "images";
            for (const [label, path] of Object.entries(paths)) {
                const img = document.createElement("img");
                img.id = `img-${label}`;
                img.alt = `Discord invite (${label})`;
                img.src = `${api}/invites/${path}&theme=${theme}`;
                list.append(img);
            }
            document.body.prepend(list);
        }""",
        [site.run.url, codes, theme],
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#images img')].every(i => i.complete)"
    )
    sizes = page.evaluate(
        "() => [...document.querySelectorAll('#images img')]"
        ".map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[CARD_WIDTH, 144]] * len(NAMES)  # each drew, with its event line
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for label in NAMES:
        page.locator(f"#img-{label}").screenshot(path=str(ARTIFACTS / f"svg-{label}-{theme}.png"))

    # The same images opened as documents, so their rendered text can be measured.
    for label, path in codes.items():
        page.goto(f"{site.run.url}/invites/{path}&theme={theme}")
        boxes = page.evaluate(
            """() => {
                const join = [...document.querySelectorAll("rect")].find(r =>
                    r.nextElementSibling?.textContent === "Join");
                return {
                    join: join.getBBox().x,
                    texts: [...document.querySelectorAll("text")].map(t => {
                        const b = t.getBBox();
                        return {text: t.textContent, left: b.x, right: b.x + b.width,
                                top: b.y, bottom: b.y + b.height};
                    }),
                };
            }"""
        )
        for box in boxes["texts"]:
            assert box["left"] >= CARD_PAD - 1, (label, box)
            assert box["right"] <= CARD_WIDTH - CARD_PAD + 1, (label, box)
            beside_join = box["top"] < 90 and box["bottom"] > 54 and box["text"] != "Join"
            if beside_join and box["left"] > CARD_PAD + 56:  # the name and the counts
                assert box["right"] <= boxes["join"], (label, box)
    context.close()


def test_opening_an_image_card_runs_no_script_whatever_the_guild_is_called(
    site: Site, page: Page
) -> None:
    codes = _named_invites(site)
    said: list[str] = []

    def dialog(shown: Dialog) -> None:
        said.append(f"dialog: {shown.message}")
        shown.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda message: said.append(f"console: {message.text}"))
    answer = page.goto(f"{site.run.url}/invites/{codes['hostile']}")
    assert answer is not None
    assert answer.headers["content-type"].startswith("image/svg+xml")
    page.wait_for_timeout(500)
    assert said == []
    assert page.evaluate("document.querySelectorAll('script, foreignObject, [onload]').length") == 0
    title = page.evaluate("document.querySelector('title').textContent")
    assert "<script>alert(1)</script>" in title  # shown as text, never run


@pytest.fixture
def guild_site(start_api: Callable[..., runner.LocalRun], emulator: DiscordEmulator) -> Site:
    """`make run` as it starts with nothing configured: guild mode over the sample guilds."""
    return start_site(start_api, emulator, ALLOWED_GUILD_IDS=",".join(SAMPLE_GUILD_IDS))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_demo_page_talks_only_to_its_origin_and_the_proxy_and_passes_axe(
    guild_site: Site, browser: Browser, scheme: str
) -> None:
    context = _context(browser, scheme)
    page = context.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(guild_site.page_url())
    for card_id in ("live", "permanent", "event", "by-guild"):
        wait_state(page, card_id, "ready")
    wait_state(page, "unknown", "unknown")
    # guild="…": the guild's lasting invite, its vanity code first.
    assert card(page, "by-guild")["join"] == "https://discord.gg/proxy-demo"
    icon = "document.getElementById('event').shadowRoot.querySelector('img')"
    page.wait_for_function(f"() => {icon}.complete && {icon}.naturalWidth > 0")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img[data-path]')]"
        ".every(i => i.complete && i.naturalWidth)"
    )
    page.wait_for_function("() => !document.getElementById('badge').ariaLabel.endsWith('loading')")
    badge = page.evaluate("document.getElementById('badge').getAttribute('aria-label')")
    assert badge == "discord: 1.2k members, 321 online"
    origins = {"/".join(url.split("/")[:3]) for url in asked}
    assert origins == {guild_site.web, guild_site.run.url}  # nothing to Discord, or anyone
    results = Axe().run(page)
    assert results.response["violations"] == [], results.generate_report()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-{scheme}.png"), full_page=True)
    context.close()
