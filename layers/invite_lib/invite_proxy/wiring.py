"""Composition root: settings in, ready services out. Called once per execution environment.

Each function imports what only it needs, so each Lambda function's cold start
pays for its own path alone (the API never loads the rule models, say).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invite_proxy.secret_source import SecretSource, secrets_manager_string, static_secret
from invite_proxy.settings import SECRETS_MANAGER_TIMEOUT

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from pydantic import SecretStr

    from invite_proxy.admin_tokens import AdminTokenVerifier
    from invite_proxy.discord.guarded import GuardedDiscord
    from invite_proxy.lookup_service import InviteLookupService
    from invite_proxy.revocation_service import InviteRevocationService
    from invite_proxy.rule_runner import RuleRunner
    from invite_proxy.settings import (
        ApiSettings,
        AuthorizerSettings,
        DiscordSettings,
        RevokerSettings,
    )


def secret(
    secret_id: str | None, local_value: SecretStr | None, cache_seconds: int
) -> SecretSource:
    """A deployed secret by id, or the local run's value of it."""
    if secret_id:
        return secrets_manager_string(
            secret_id, cache_seconds=cache_seconds, timeout=SECRETS_MANAGER_TIMEOUT
        )
    return static_secret(local_value.get_secret_value() if local_value else None)


def guarded_discord(
    settings: DiscordSettings, table: DynamoDBClient, *, lookup_budget: int = 0
) -> GuardedDiscord:
    """The one road to Discord: the raw client behind the fleet's guard."""
    from invite_proxy.discord.client import DiscordClient
    from invite_proxy.discord.guarded import GuardedDiscord
    from invite_proxy.dynamodb.fleet_state import DynamoDBFleetState
    from invite_proxy.upstream_guard import GuardPolicy, UpstreamGuard

    client = DiscordClient(
        base_url=settings.discord_api_base_url,
        token=secret(
            settings.discord_token_secret_id,
            settings.discord_bot_token,
            settings.token_cache_seconds,
        ),
        user_agent=settings.user_agent,
        connect_timeout=settings.discord_connect_timeout,
        read_timeout=settings.discord_read_timeout,
    )
    guard = UpstreamGuard(
        DynamoDBFleetState(table, settings.table_name),
        GuardPolicy(
            max_wait_seconds=settings.rate_limit_wait_seconds,
            lookup_budget=lookup_budget,
            calls_per_second=settings.fleet_calls_per_second,
            token_lock_seconds=settings.token_lock_seconds,
            cloudflare_block_seconds=settings.cloudflare_block_seconds,
            invalid_warn_threshold=settings.invalid_warn_threshold,
            probe_seconds=settings.attempt_seconds,
        ),
    )
    return GuardedDiscord(client, guard)


def api_services(settings: ApiSettings) -> tuple[InviteLookupService, InviteRevocationService]:
    """The API function's two services, sharing one DynamoDB client and one road to Discord."""
    from invite_proxy.dynamodb.cache import DynamoDBInviteCache
    from invite_proxy.dynamodb.calls import dynamodb_client
    from invite_proxy.dynamodb.leases import DynamoDBLeases
    from invite_proxy.lookup_service import CoalescingPolicy, InviteLookupService, RetryPolicy
    from invite_proxy.revocation_service import InviteRevocationService

    table = dynamodb_client(settings.dynamodb_timeout)
    cache = DynamoDBInviteCache(table, settings.table_name)
    discord = guarded_discord(settings, table, lookup_budget=settings.lookup_budget_per_10_minutes)
    lookup = InviteLookupService(
        cache=cache,
        discord=discord,
        leases=DynamoDBLeases(table, settings.table_name),
        policy=settings.cache_policy,
        coalescing=CoalescingPolicy(
            lease_seconds=settings.lease_seconds,
            wait_seconds=settings.coalesce_wait_seconds,
            failure_hold_seconds=settings.failure_hold_seconds,
        ),
        retry=RetryPolicy(
            retries=settings.upstream_retries,
            attempt_seconds=settings.attempt_seconds,
            deadline_seconds=settings.lookup_deadline_seconds,
        ),
        allowed_guilds=settings.allowed_guilds,
    )
    revocations = InviteRevocationService(cache=cache, discord=discord)
    return lookup, revocations


def admin_verifier(settings: AuthorizerSettings) -> AdminTokenVerifier:
    from invite_proxy.admin_tokens import AdminTokenVerifier

    return AdminTokenVerifier(
        secret(
            settings.admin_tokens_secret_id,
            settings.admin_tokens,
            settings.admin_tokens_cache_seconds,
        )
    )


def rule_runner(settings: RevokerSettings) -> RuleRunner:
    from invite_proxy.discord.webhook import WebhookNotifier
    from invite_proxy.dynamodb.cache import DynamoDBInviteCache
    from invite_proxy.dynamodb.calls import dynamodb_client
    from invite_proxy.revocation_service import InviteRevocationService
    from invite_proxy.rule_runner import RuleRunner

    table = dynamodb_client(settings.dynamodb_timeout)
    cache = DynamoDBInviteCache(table, settings.table_name)
    # Every call a rule run makes goes through the guard, as the API's do.
    discord = guarded_discord(settings, table)
    notifier = None
    if settings.has_webhook:
        notifier = WebhookNotifier(
            secret(
                settings.revocation_webhook_secret_id,
                settings.revocation_webhook_url,
                settings.token_cache_seconds,
            ),
            timeout=settings.webhook_timeout,
            user_agent=settings.user_agent,
        )
    return RuleRunner(
        discord=discord,
        revoker=InviteRevocationService(cache=cache, discord=discord),
        cache=cache,
        notifier=notifier,
        reserve_seconds=settings.reserve_seconds,
    )
