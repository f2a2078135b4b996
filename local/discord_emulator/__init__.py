"""A local Discord HTTP API emulator for the invite routes.

It speaks the invite routes as Discord's OpenAPI spec describes them: the same
bodies, error JSON with Discord's codes, rate-limit headers, and invites that
expire with time. Tests and the local run use it over real HTTP.
"""

from discord_emulator.server import DiscordEmulator
from discord_emulator.state import EmulatorState, Fault

__all__ = ["DiscordEmulator", "EmulatorState", "Fault"]
