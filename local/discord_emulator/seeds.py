"""Sample guilds and invites for the local run, so a newcomer has something to look up."""

from __future__ import annotations

from discord_emulator.state import EmulatorState

# code -> what it shows off
# Fixed, so sample rules (events/revoke_rule_*.json) can name it.
SAMPLE_GUILD_ID = "1234567890123456789"
# A second guild, with an (animated) icon and a scheduled event; the demo page names the event.
EVENT_GUILD_ID = "1234567890123456790"
SAMPLE_EVENT_ID = "1234567890123456800"
SAMPLE_GUILD_IDS = (SAMPLE_GUILD_ID, EVENT_GUILD_ID)

SAMPLE_INVITES = {
    "proxy-demo": "a permanent vanity invite (expires_at: null)",
    "hourly01": "an invite that expires an hour after start-up",
    "shortlived": "an invite that expires two minutes after start-up",
    "futurefield": "an invite carrying a field Discord may add later (passed through untouched)",
    "tempjoin": "a temporary-membership invite, a day old (for revocation rules)",
    "usedup": "an invite whose uses reached max_uses (for revocation rules)",
    "gamenight": f"an invite to a guild with an icon; add ?guild_scheduled_event_id="
    f"{SAMPLE_EVENT_ID} for its scheduled event",
}


def seed_samples(state: EmulatorState) -> None:
    guild = state.add_guild(
        "Invite Proxy Demo",
        id=SAMPLE_GUILD_ID,
        vanity_url_code="proxy-demo",
        member_count=1234,
        presence_count=321,
        features=["VANITY_URL", "COMMUNITY"],
    )
    state.add_invite(guild, code="proxy-demo", channel_name="welcome")
    state.add_invite(guild, code="hourly01", channel_name="events", max_age=3600)
    state.add_invite(guild, code="shortlived", channel_name="events", max_age=120)
    state.add_invite(
        guild,
        code="futurefield",
        channel_name="lounge",
        max_age=86400,
        extra={"profile": {"id": guild.id, "tag": "DEMO", "badge_count": 3}},
    )
    state.add_invite(
        guild, code="tempjoin", temporary=True, created_at=state.now() - 86_400, uses=3
    )
    state.add_invite(guild, code="usedup", max_uses=5, uses=5, channel_name="events")

    club = state.add_guild(
        "Pixel Art Club",
        id=EVENT_GUILD_ID,
        icon="a_5f4dcc3b5aa765d61d8327deb882cf99",
        member_count=87,
        presence_count=12,
        features=["COMMUNITY"],
    )
    stage = state.snowflake()
    state.add_event(
        club,
        "Monthly Game Night",
        id=SAMPLE_EVENT_ID,
        description="Bring a game; we bring the snacks.",
        channel_id=stage,
        scheduled_start_time=state.now() + 2 * 86_400,
        scheduled_end_time=state.now() + 2 * 86_400 + 3 * 3600,
        user_count=23,
    )
    state.add_invite(
        club, code="gamenight", channel_name="game-night", channel_id=stage, max_age=7 * 86_400
    )
