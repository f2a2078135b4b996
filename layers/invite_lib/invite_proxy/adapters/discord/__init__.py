"""Adapters for Discord's HTTP API: routes, the raw client, the guarded client, the webhook.

Services use ``GuardedDiscord`` alone: it is the one road to Discord.
"""
