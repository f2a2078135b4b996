"""Composition root: settings in, a ready service out. Called once per execution environment."""

from __future__ import annotations

from invite_proxy.discord_client import DiscordClient
from invite_proxy.dynamodb_cache import DynamoDBInviteCache, dynamodb_client
from invite_proxy.lookup_service import InviteLookupService
from invite_proxy.settings import Settings
from invite_proxy.token_source import TokenSource, secrets_manager_token, static_token

# Read once per TOKEN_CACHE_SECONDS and only on a miss, so it can afford more than DynamoDB gets.
SECRETS_MANAGER_TIMEOUT = 2.0


def token_source(settings: Settings) -> TokenSource:
    if settings.discord_token_secret_id:
        return secrets_manager_token(
            settings.discord_token_secret_id,
            cache_seconds=settings.token_cache_seconds,
            timeout=SECRETS_MANAGER_TIMEOUT,
        )
    token = settings.discord_bot_token
    return static_token(token.get_secret_value() if token else None)


def discord_client(settings: Settings) -> DiscordClient:
    return DiscordClient(
        base_url=settings.discord_api_base_url,
        token=token_source(settings),
        user_agent=settings.user_agent,
        connect_timeout=settings.discord_connect_timeout,
        read_timeout=settings.discord_read_timeout,
    )


def lookup_service(settings: Settings) -> InviteLookupService:
    return InviteLookupService(
        cache=DynamoDBInviteCache(dynamodb_client(settings.dynamodb_timeout), settings.table_name),
        discord=discord_client(settings),
        policy=settings.cache_policy,
    )
