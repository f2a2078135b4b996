"""Composition root: settings in, ready services out. Called once per execution environment.

``api_services``, ``rule_runner`` and ``admin_verifier`` make the real adapters
(DynamoDB, Discord, Secrets Manager) and hand them to ``build_api`` and
``build_rule_runner``, which tests call with in-memory fakes and a fake clock:
the same assembly either way. Each function imports what only it needs, so each
Lambda function's cold start pays for its own path alone.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from invite_proxy.adapters.secrets import (
    SecretSource,
    bot_token,
    secrets_manager_string,
    static_secret,
)
from invite_proxy.domain.costs import SECRETS_MANAGER_TIMEOUT
from invite_proxy.edges import snapshots

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from invite_proxy.adapters.discord.client import DiscordClient
    from invite_proxy.adapters.discord.guarded import GuardedDiscord, RawDiscord
    from invite_proxy.adapters.dynamodb.calls import TableCalls
    from invite_proxy.domain.admin_tokens import AdminTokenVerifier
    from invite_proxy.domain.fleet_state import FleetState
    from invite_proxy.edges.settings import (
        ApiSettings,
        AuthorizerSettings,
        DiscordSettings,
        RevokerSettings,
        Secret,
    )
    from invite_proxy.edges.source_address import SourceAddress
    from invite_proxy.services.guild_mode import GuildMode, MirrorStore, WorkLeases
    from invite_proxy.services.icons import GuildIcons
    from invite_proxy.services.lookup import FetchLeases, InviteCache, InviteLookupService
    from invite_proxy.services.revocation import EvictingCache, InviteRevocationService
    from invite_proxy.services.rule_run import Notifier, RuleCache, RuleRunner

    class ApiCache(InviteCache, EvictingCache, Protocol): ...

    class ApiLeases(FetchLeases, WorkLeases, Protocol): ...

    class RevokerCache(EvictingCache, RuleCache, Protocol): ...


Clock = Callable[[], float]
Sleep = Callable[[float], None]


def secret(secret_id: str | None, local_value: Secret | None, cache_seconds: int) -> SecretSource:
    """A deployed secret by id, read within the caller's deadline; or the local run's value."""
    if secret_id:
        return secrets_manager_string(
            secret_id, cache_seconds=cache_seconds, timeout=SECRETS_MANAGER_TIMEOUT
        )
    return static_secret(local_value.get_secret_value() if local_value else None)


def discord_client(settings: DiscordSettings) -> DiscordClient:
    from invite_proxy.adapters.discord.client import DiscordClient

    return DiscordClient(
        base_url=settings.discord_api_base_url,
        token=bot_token(
            secret(
                settings.discord_token_secret_id,
                settings.discord_bot_token,
                settings.token_cache_seconds,
            )
        ),
        user_agent=settings.user_agent,
        connect_timeout=settings.discord_connect_timeout,
        read_timeout=settings.discord_read_timeout,
    )


def table_calls(settings: DiscordSettings) -> TableCalls:
    """How the function's three table adapters call DynamoDB: one breaker."""
    from invite_proxy.adapters.dynamodb.calls import CircuitBreaker, TableCalls

    breaker = CircuitBreaker(settings.table_circuit_seconds)  # the table fails for all three
    return TableCalls(breaker, settings.dynamodb_call_seconds)


def guarded_discord(
    settings: DiscordSettings,
    client: RawDiscord,
    fleet: FleetState,
    *,
    lookup_budget: int = 0,
    instance_lookup_budget: int = 0,
    caller_share: int = 0,
    call_reserve_seconds: float | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
) -> GuardedDiscord:
    """The one road to Discord: the raw client behind the fleet's guard.

    Budgets and shares are counted per 10 minutes, and refill continuously.
    """
    from invite_proxy.adapters.discord.guarded import GuardedDiscord
    from invite_proxy.adapters.fleet_state.memory import InstanceFleetState
    from invite_proxy.domain.fleet_state import Allowance
    from invite_proxy.domain.guard import CALL_RESERVE_SECONDS, GuardPolicy, UpstreamGuard

    def per_10_minutes(calls: int) -> Allowance | None:
        return Allowance.per(calls, 600.0) if calls > 0 else None

    policy = GuardPolicy(
        max_wait_seconds=settings.rate_limit_wait_seconds,
        lookup_budget=per_10_minutes(lookup_budget),
        calls_per_second=settings.fleet_calls_per_second,
        instance_calls_per_second=settings.instance_calls_per_second,
        instance_lookup_budget=per_10_minutes(instance_lookup_budget),
        token_lock_seconds=settings.token_lock_seconds,
        cloudflare_block_seconds=settings.cloudflare_block_seconds,
        invalid_warn_threshold=settings.invalid_warn_threshold,
        probe_seconds=settings.attempt_seconds,
        call_reserve_seconds=call_reserve_seconds or CALL_RESERVE_SECONDS,
        caller_share=per_10_minutes(caller_share),
    )
    guard = UpstreamGuard(fleet, InstanceFleetState(), policy, clock=clock, sleep=sleep)
    return GuardedDiscord(client, guard)


def build_api(
    settings: ApiSettings,
    *,
    cache: ApiCache,
    leases: ApiLeases,
    fleet: FleetState,
    client: RawDiscord,
    mirror: MirrorStore | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
) -> tuple[InviteLookupService, InviteRevocationService]:
    """The API function's two services, sharing one cache and one road to Discord; with
    allowed guilds and a ``mirror``, lookups answer from the guilds' own lists."""
    from invite_proxy.services.lookup import CoalescingPolicy, InviteLookupService, RetryPolicy

    if settings.memory_cache_seconds > 0:
        from invite_proxy.adapters.cache_memory import MemoryTier

        # In front of the table, for lookups and this instance's DELETEs alike.
        cache = MemoryTier(cache, seconds=settings.memory_cache_seconds, clock=clock)

    discord = guarded_discord(
        settings,
        client,
        fleet,
        lookup_budget=settings.lookup_budget_per_10_minutes,
        instance_lookup_budget=settings.instance_lookup_budget,
        caller_share=settings.lookup_share_per_caller,
        clock=clock,
        sleep=sleep,
    )
    lookup = InviteLookupService(
        cache=cache,
        discord=discord,
        leases=leases,
        policy=settings.cache_policy,
        coalescing=CoalescingPolicy(
            lease_seconds=settings.lease_seconds,
            wait_seconds=settings.coalesce_wait_seconds,
            failure_hold_seconds=settings.failure_hold_seconds,
            held_note_seconds=settings.memory_cache_seconds,
        ),
        retry=RetryPolicy(
            retries=settings.upstream_retries,
            attempt_seconds=settings.attempt_seconds,
            deadline_seconds=settings.lookup_deadline_seconds,
        ),
        allowed_guilds=settings.allowed_guilds,
        guild_mode=guild_mode(settings, mirror, leases, discord, clock, sleep),
        clock=clock,
        sleep=sleep,
    )
    return lookup, revocation_service(cache, discord, clock)


def guild_mode(
    settings: ApiSettings,
    mirror: MirrorStore | None,
    leases: WorkLeases,
    discord: GuardedDiscord,
    clock: Clock,
    sleep: Sleep,
) -> GuildMode | None:
    """Guild mode, when the operator named the guilds the proxy serves."""
    guilds = settings.allowed_guilds
    if guilds is None or mirror is None:
        return None
    from invite_proxy.adapters.guild_mirror_memory import InstanceGuildMirror, InstanceLeases
    from invite_proxy.domain.guild_mirror import GuildModePolicy
    from invite_proxy.services.guild_mode import GuildMode

    def over(store: MirrorStore, on: WorkLeases, alone: GuildMode | None) -> GuildMode:
        return GuildMode(
            store=store,
            discord=discord,
            leases=on,
            policy=GuildModePolicy(
                guilds=guilds,
                min_refresh_seconds=settings.guild_list_min_refresh_seconds,
                fresh_seconds=settings.cache_fresh_seconds,
                wait_seconds=settings.coalesce_wait_seconds,
                chosen=settings.chosen_guild_invites,
                memory_seconds=settings.memory_cache_seconds,
            ),
            cache_policy=settings.cache_policy,
            lease_seconds=settings.lease_seconds,
            call_seconds=settings.lookup_deadline_seconds,
            alone=alone,
            clock=clock,
            sleep=sleep,
        )

    # While the table is down, the instance keeps the lists itself (as the guard keeps
    # its own share of the fleet's state): no lookup per code.
    return over(mirror, leases, over(InstanceGuildMirror(), InstanceLeases(), None))


def revocation_service(
    cache: EvictingCache, discord: GuardedDiscord, clock: Clock
) -> InviteRevocationService:
    """One revocation, as the API's DELETE and the rule runs both make it."""
    from invite_proxy.services.revocation import InviteRevocationService

    return InviteRevocationService(cache=cache, discord=discord, clock=clock)


@dataclass(frozen=True, slots=True)
class ApiServices:
    lookups: InviteLookupService
    revocations: InviteRevocationService
    callers: SourceAddress  # who asked: the address a lookup's share is kept for
    icons: Callable[[], GuildIcons]  # guild icons through the proxy, made when first asked


def api_services(settings: ApiSettings) -> ApiServices:
    from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
    from invite_proxy.adapters.dynamodb.calls import dynamodb_client
    from invite_proxy.adapters.dynamodb.guild_mirror import DynamoDBGuildMirror
    from invite_proxy.adapters.dynamodb.lease_store import DynamoDBLeases
    from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState

    snapshots.register()  # SnapStart's hooks, where the function has snapshots
    table = dynamodb_client(settings.dynamodb_timeout)
    calls = table_calls(settings)
    lookups, revocations = build_api(
        settings,
        cache=DynamoDBInviteCache(table, settings.table_name, calls),
        leases=DynamoDBLeases(table, settings.table_name, calls),
        fleet=DynamoDBFleetState(table, settings.table_name, calls),
        client=discord_client(settings),
        mirror=DynamoDBGuildMirror(table, settings.table_name, calls),
    )
    # Made at the first icon or image card: a lookup's cold start does not pay for it.
    icons = functools.cache(lambda: guild_icons(settings, table, calls))
    return ApiServices(lookups, revocations, source_address(settings), icons)


def guild_icons(settings: ApiSettings, table: DynamoDBClient, calls: TableCalls) -> GuildIcons:
    from invite_proxy.adapters.discord.cdn import DiscordCdn
    from invite_proxy.adapters.dynamodb.icons import DynamoDBIcons
    from invite_proxy.services.icons import GuildIcons

    cdn = DiscordCdn(
        base_url=settings.discord_cdn_url,
        user_agent=settings.user_agent,
        connect_timeout=settings.discord_connect_timeout,
        read_timeout=settings.discord_read_timeout,
    )
    return GuildIcons(
        store=DynamoDBIcons(table, settings.table_name, calls), cdn=cdn, clock=time.time
    )


def source_address(settings: ApiSettings) -> SourceAddress:
    """Where a request came from; behind the CDN, the viewer, proven by the stack's secret."""
    from invite_proxy.edges.source_address import SourceAddress

    if not (settings.cdn_origin_secret_id or settings.cdn_origin_secret):
        return SourceAddress()
    proof = secret(settings.cdn_origin_secret_id, settings.cdn_origin_secret, 300)
    return SourceAddress(proof)


def admin_verifier(settings: AuthorizerSettings) -> AdminTokenVerifier:
    from invite_proxy.domain.admin_tokens import AdminTokenVerifier

    return AdminTokenVerifier(
        secret(
            settings.admin_tokens_secret_id,
            settings.admin_tokens,
            settings.admin_tokens_cache_seconds,
        )
    )


def build_rule_runner(
    settings: RevokerSettings,
    *,
    cache: RevokerCache,
    fleet: FleetState,
    client: RawDiscord,
    notifier: Notifier | None,
    mirror: MirrorStore | None = None,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
) -> RuleRunner:
    from invite_proxy.services.rule_run import RuleRunner

    # Every call a rule run makes goes through the guard, as the API's do; a wait there
    # leaves a whole step's time, as a step starts only with it.
    discord = guarded_discord(
        settings,
        client,
        fleet,
        call_reserve_seconds=settings.step_seconds,
        clock=clock,
        sleep=sleep,
    )
    return RuleRunner(
        discord=discord,
        revoker=revocation_service(cache, discord, clock),
        cache=cache,
        notifier=notifier,
        step_seconds=settings.step_seconds,
        report_seconds=settings.report_seconds,
        parallel=settings.parallel_revocations,
        mirror=mirror,
        mirrored_guilds=settings.allowed_guilds or frozenset(),
        clock=clock,
        sleep=sleep,
    )


def rule_runner(settings: RevokerSettings) -> RuleRunner:
    from invite_proxy.adapters.discord.webhook import WebhookNotifier
    from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
    from invite_proxy.adapters.dynamodb.calls import dynamodb_client
    from invite_proxy.adapters.dynamodb.guild_mirror import DynamoDBGuildMirror
    from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState

    snapshots.register()
    table: DynamoDBClient = dynamodb_client(settings.dynamodb_timeout)
    calls = table_calls(settings)
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
    return build_rule_runner(
        settings,
        cache=DynamoDBInviteCache(table, settings.table_name, calls),
        fleet=DynamoDBFleetState(table, settings.table_name, calls),
        client=discord_client(settings),
        notifier=notifier,
        mirror=DynamoDBGuildMirror(table, settings.table_name, calls),
    )
