"""Composition root: settings in, ready services out. Called once per execution environment.

Each function imports what only it needs, so each Lambda function's cold start
pays for its own path alone (the API never loads the rule models, say).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from invite_proxy.discord_client import DiscordClient
from invite_proxy.dynamodb_cache import DynamoDBInviteCache, dynamodb_client
from invite_proxy.dynamodb_leases import DynamoDBLeases
from invite_proxy.fleet_state import DynamoDBFleetState
from invite_proxy.guarded_discord import GuardedDiscord
from invite_proxy.lookup_service import CoalescingPolicy, InviteLookupService, RetryPolicy
from invite_proxy.revocation_service import InviteRevocationService
from invite_proxy.secret_source import SecretSource, secrets_manager_string, static_secret
from invite_proxy.settings import Settings
from invite_proxy.upstream_guard import GuardPolicy, UpstreamGuard

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from pydantic import SecretStr

    from invite_proxy.admin_tokens import AdminTokenVerifier
    from invite_proxy.rule_runner import RuleRunner

# Read once per cache period and only when needed, so it can afford more than DynamoDB gets.
SECRETS_MANAGER_TIMEOUT = 2.0
# Time a rule run keeps back at the end for the summary and metrics, with slack.
REPORTING_SECONDS = 1.0
# DynamoDB calls in one revocation's eviction (query, deletes, the revoked mark), at worst.
EVICTION_CALLS = 4
# DynamoDB calls the guard makes around one Discord call (blocks, rate, bucket, headers).
GUARD_CALLS = 4


def secret(
    secret_id: str | None, local_value: SecretStr | None, cache_seconds: int
) -> SecretSource:
    """A deployed secret by id, or the local run's value of it."""
    if secret_id:
        return secrets_manager_string(
            secret_id, cache_seconds=cache_seconds, timeout=SECRETS_MANAGER_TIMEOUT
        )
    return static_secret(local_value.get_secret_value() if local_value else None)


def discord_client(settings: Settings) -> DiscordClient:
    return DiscordClient(
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


def upstream_guard(settings: Settings, client: DynamoDBClient) -> UpstreamGuard:
    return UpstreamGuard(
        DynamoDBFleetState(client, settings.table_name),
        GuardPolicy(
            max_wait_seconds=settings.rate_limit_wait_seconds,
            lookup_budget=settings.lookup_budget_per_10_minutes,
            calls_per_second=settings.fleet_calls_per_second,
            token_lock_seconds=settings.token_lock_seconds,
            cloudflare_block_seconds=settings.cloudflare_block_seconds,
            invalid_warn_threshold=settings.invalid_warn_threshold,
            probe_seconds=settings.discord_connect_timeout + settings.discord_read_timeout,
        ),
    )


def api_services(settings: Settings) -> tuple[InviteLookupService, InviteRevocationService]:
    """The API function's two services, sharing one DynamoDB client and one Discord client."""
    client = dynamodb_client(settings.dynamodb_timeout)
    cache = DynamoDBInviteCache(client, settings.table_name)
    discord = discord_client(settings)
    guard = upstream_guard(settings, client)
    lookup = InviteLookupService(
        cache=cache,
        discord=discord,
        policy=settings.cache_policy,
        guard=guard,
        leases=DynamoDBLeases(client, settings.table_name),
        coalescing=CoalescingPolicy(
            # The holder's whole lookup (Discord with retries), its write, and slack:
            # a live holder never loses its lease, a crashed one loses it soon.
            lease_seconds=settings.lookup_deadline_seconds + 2 * settings.dynamodb_timeout + 1.0,
            wait_seconds=settings.coalesce_wait_seconds,
            failure_hold_seconds=settings.failure_hold_seconds,
        ),
        retry=RetryPolicy(
            retries=settings.upstream_retries,
            attempt_seconds=settings.discord_connect_timeout + settings.discord_read_timeout,
            deadline_seconds=settings.lookup_deadline_seconds,
        ),
        allowed_guilds=settings.allowed_guilds,
    )
    revocations = InviteRevocationService(cache=cache, discord=GuardedDiscord(discord, guard))
    return lookup, revocations


def admin_verifier(settings: Settings) -> AdminTokenVerifier:
    from invite_proxy.admin_tokens import AdminTokenVerifier

    return AdminTokenVerifier(
        secret(
            settings.admin_tokens_secret_id,
            settings.admin_tokens,
            settings.admin_tokens_cache_seconds,
        )
    )


def rule_runner(settings: Settings) -> RuleRunner:
    from invite_proxy.rule_runner import RuleRunner
    from invite_proxy.webhook_notifier import WebhookNotifier

    client = dynamodb_client(settings.dynamodb_timeout)
    cache = DynamoDBInviteCache(client, settings.table_name)
    # Every call a rule run makes goes through the guard, as the API's do.
    discord = GuardedDiscord(discord_client(settings), upstream_guard(settings, client))
    notifier = None
    if settings.revocation_webhook_secret_id or settings.revocation_webhook_url:
        notifier = WebhookNotifier(
            secret(
                settings.revocation_webhook_secret_id,
                settings.revocation_webhook_url,
                settings.token_cache_seconds,
            ),
            timeout=settings.webhook_timeout,
            user_agent=settings.user_agent,
        )
    # The worst case of one step (the guard, a Discord call that times out, its eviction,
    # a token re-read) and the report after it: a run stops while it still has all of that.
    reserve = (
        settings.discord_connect_timeout
        + settings.discord_read_timeout
        + (EVICTION_CALLS + GUARD_CALLS) * settings.dynamodb_timeout
        + SECRETS_MANAGER_TIMEOUT
        + (settings.webhook_timeout if notifier else 0.0)
        + REPORTING_SECONDS
    )
    return RuleRunner(
        discord=discord,
        revoker=InviteRevocationService(cache=cache, discord=discord),
        cache=cache,
        notifier=notifier,
        reserve_seconds=reserve,
    )
