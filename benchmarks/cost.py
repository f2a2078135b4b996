"""docs/cost.md, written from bench/results.json by make bench (benchmarks/conftest.py),
never by hand; tests/unit/test_cost_page.py checks that the committed page says what the
committed results say.

What is measured comes from the run (each request kind's handler time, DynamoDB calls
and request units). What is not (AWS's prices, Discord's latency, the traffic's mix) is
stated here, once, with where it comes from; change it here and run make bench.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COST_PAGE = REPO / "docs" / "cost.md"


@dataclass(frozen=True, slots=True)
class Prices:
    """AWS's on-demand list prices in one region, in USD."""

    region: str
    as_of: str  # when AWS published them as given here
    lambda_gb_second: float  # arm64, the stack's architecture
    lambda_request: float
    http_api_request: float  # the first 300 million a month
    dynamodb_read_unit: float  # on-demand, standard table class
    dynamodb_write_unit: float
    cloudfront_request: float  # HTTPS, North America and Europe (PriceClass_100)
    cloudfront_function: float  # the viewer function, each request
    transfer_out_gb_api: float  # to the internet, from the region (the first 10 TB)
    transfer_out_gb_cloudfront: float  # from CloudFront's edge (the first 10 TB)


PRICES = Prices(
    region="us-east-1 (N. Virginia)",
    # As AWS's pricing pages gave them when this page's model was written (DynamoDB's
    # on-demand prices after AWS halved them on 2024-11-01); not read again by make bench,
    # whose machine reaches no AWS page. Check them against the pages below.
    as_of="2024-11 (the pages below)",
    lambda_gb_second=0.0000133334,
    lambda_request=0.20 / 1e6,
    http_api_request=1.00 / 1e6,
    dynamodb_read_unit=0.125 / 1e6,
    dynamodb_write_unit=0.625 / 1e6,
    cloudfront_request=0.0100 / 1e4,
    cloudfront_function=0.10 / 1e6,
    transfer_out_gb_api=0.09,
    transfer_out_gb_cloudfront=0.085,
)
PRICE_PAGES = (
    "https://aws.amazon.com/lambda/pricing/",
    "https://aws.amazon.com/api-gateway/pricing/",
    "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "https://aws.amazon.com/cloudfront/pricing/",
)

# What the run cannot measure, stated.
DISCORD_MS = 80.0  # one Discord call from us-east-1, the answer's time (Lambda bills it)
TABLE_CALL_MS = 4.0  # one DynamoDB call in-region, added to the local run's (about 1 ms)
RESPONSE_KB = 1.5  # a lookup's answer with its headers, to the browser
HIT_RATIO = 0.90  # lookups answered from the cache, of which
MEMORY_SHARE = 0.5  # this share from an instance's memory (a hot invite: most of them)
EDGE_HIT_RATIO = 0.90  # with the CDN: lookups the edge answers, never reaching the API

# Each kind: what the run calls it, its Discord calls, the function that runs it.
KINDS = (
    ("memory_hit", "a hit from an instance's memory", 0, "ApiFunction"),
    ("hit", "a hit from the table", 0, "ApiFunction"),
    ("miss", "a miss (one Discord lookup)", 1, "ApiFunction"),
    ("refused_miss", "a miss the caller's share refuses (a flood)", 0, "ApiFunction"),
    ("delete", "a DELETE (the eviction included)", 1, "ApiFunction"),
    ("rule_per_invite", "a rule run, per invite it revokes", 1, "RevokerFunction"),
)


@dataclass(frozen=True, slots=True)
class KindCost:
    """One request of a kind, in USD, by part; and what it was priced from."""

    handler_ms: float
    billed_ms: float
    table_calls: float
    read_units: float
    write_units: float
    lambda_usd: float
    api_usd: float
    table_usd: float

    @property
    def usd(self) -> float:
        return self.lambda_usd + self.api_usd + self.table_usd


def kind_cost(
    results: Mapping[str, Any],
    kind: str,
    discord_calls: int,
    memory_mb: int,
    prices: Prices,
    authorizer_mb: int = 0,
) -> KindCost:
    handler_ms = results[f"handler_ms_{kind}"]
    calls = results.get(f"table_calls_per_{kind}", 0.0)
    billed_ms = handler_ms + calls * TABLE_CALL_MS + discord_calls * DISCORD_MS
    reads, writes = results[f"capacity_{kind}_rru"], results[f"capacity_{kind}_wru"]
    per_invocation = kind != "rule_per_invite"  # a rule run is one invocation for many
    lambda_usd = (memory_mb / 1024) * (billed_ms / 1000) * prices.lambda_gb_second
    if per_invocation:
        lambda_usd += prices.lambda_request
    if kind == "delete" and authorizer_mb:  # API Gateway runs the authorizer first
        lambda_usd += (authorizer_mb / 1024) * (
            results["handler_ms_authorizer"] / 1000
        ) * prices.lambda_gb_second + prices.lambda_request
    return KindCost(
        handler_ms=handler_ms,
        billed_ms=billed_ms,
        table_calls=calls,
        read_units=reads,
        write_units=writes,
        lambda_usd=lambda_usd,
        api_usd=prices.http_api_request if per_invocation else 0.0,
        table_usd=reads * prices.dynamodb_read_unit + writes * prices.dynamodb_write_unit,
    )


def _lookups(costs: Mapping[str, KindCost], prices: Prices) -> float:
    """A lookup at the stated mix, at the origin, with its answer's transfer."""
    hit = MEMORY_SHARE * costs["memory_hit"].usd + (1 - MEMORY_SHARE) * costs["hit"].usd
    origin = HIT_RATIO * hit + (1 - HIT_RATIO) * costs["miss"].usd
    return origin + RESPONSE_KB / 1024 / 1024 * prices.transfer_out_gb_api


def _through_cdn(costs: Mapping[str, KindCost], prices: Prices) -> float:
    edge = prices.cloudfront_request + prices.cloudfront_function
    edge += RESPONSE_KB / 1024 / 1024 * prices.transfer_out_gb_cloudfront
    # The origin's answers reach the edge from AWS: no transfer charge for them.
    origin = _lookups(costs, prices) - RESPONSE_KB / 1024 / 1024 * prices.transfer_out_gb_api
    return edge + (1 - EDGE_HIT_RATIO) * origin


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def _costs(
    results: Mapping[str, Any], memory: Mapping[str, int], prices: Prices
) -> dict[str, KindCost]:
    authorizer = memory["AdminAuthorizerFunction"]
    return {
        kind: kind_cost(results, kind, discord, memory[function], prices, authorizer)
        for kind, _, discord, function in KINDS
    }


def million_lookups(
    results: Mapping[str, Any], memory: Mapping[str, int], prices: Prices = PRICES
) -> tuple[float, float]:
    """USD for a million lookups at the stated mix: straight to the API, through the CDN."""
    costs = _costs(results, memory, prices)
    return _lookups(costs, prices) * 1e6, _through_cdn(costs, prices) * 1e6


def page(results: Mapping[str, Any], memory: Mapping[str, int], prices: Prices = PRICES) -> str:
    costs = _costs(results, memory, prices)
    million = 1e6
    rows = [
        "| request | handler (ms) | billed (ms) | table calls | read units | write units "
        "| Lambda | API Gateway | DynamoDB | all |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, what, _, _ in KINDS:
        cost = costs[kind]
        rows.append(
            f"| {what} | {cost.handler_ms:.2f} | {cost.billed_ms:.1f} | {cost.table_calls:.2f} "
            f"| {cost.read_units:.2f} | {cost.write_units:.2f} "
            f"| {_usd(cost.lambda_usd * million)} | {_usd(cost.api_usd * million)} "
            f"| {_usd(cost.table_usd * million)} | {_usd(cost.usd * million)} |"
        )
    direct, cdn = million_lookups(results, memory, prices)
    hits = HIT_RATIO * 100
    machine = results.get("_machine", "the bench machine")
    return f"""# What it costs

<!-- Written by make bench (benchmarks/cost.py) from bench/results.json; do not edit. -->

A million lookups at a {hits:.0f}% hit ratio cost about **{_usd(direct)} USD**
straight to the API, and about **{_usd(cdn)} USD** through the CDN (`Cdn=enabled`)
when its edge answers {EDGE_HIT_RATIO * 100:.0f}% of them, in {prices.region}, at
AWS's list prices of {prices.as_of}. The table below is what each kind of request
costs; the rest of this page is how those figures are made, and what lowers them.

## Each request, per million

USD per million requests of the kind (a rule run's: per million invites revoked).

{chr(10).join(rows)}

* **handler** is the run's own measure (`handler_ms_*`, the median through the real
  handler against moto and the Discord emulator, on {machine});
  **billed** adds what the run cannot see: {TABLE_CALL_MS:g} ms for each DynamoDB call
  in the region (the local run's own calls take about 1 ms) and {DISCORD_MS:g} ms for
  each Discord call. Lambda bills the whole, at the function's memory
  (ApiFunction {memory["ApiFunction"]} MB, RevokerFunction {memory["RevokerFunction"]} MB,
  arm64), plus its price per invocation.
* **table calls** and **read/write units** are the run's (`table_calls_per_*`,
  `capacity_*_rru`, `capacity_*_wru`): each call the handlers made, charged by
  DynamoDB's published rules from the items it touched (benchmarks/capacity.py; moto's
  own consumed-capacity answers are constants). A deployed stack reports DynamoDB's
  own answers instead: each invocation's `TableReadUnits` and `TableWriteUnits`
  metrics ([operations](operations.md)).
* A miss's write units are mostly its two transactions: DynamoDB charges a
  transaction twice a plain write, for every item in it, condition checks included.
  They buy a miss's {costs["miss"].table_calls:.1f} calls where thirteen were (each a few
  milliseconds of its latency): the claim takes the lease and everything the Discord
  call takes from the fleet at once, and refuses a flood's miss without anything to
  give back ([protections](protections.md)).
* A DELETE's Lambda price includes the admin authorizer API Gateway runs first
  (`AdminAuthorizerFunction`, {memory["AdminAuthorizerFunction"]} MB,
  `handler_ms_authorizer` {results["handler_ms_authorizer"]:.2f} ms, no table call);
  DELETEs are an admin's, a handful a day.

## A million lookups

* **Straight to the API: {_usd(direct)} USD.** {hits:.0f}% hits ({MEMORY_SHARE * 100:.0f}%
  of them from an instance's memory), {100 - hits:.0f}% misses, and each answer's
  {RESPONSE_KB:g} KB out of the region ({prices.transfer_out_gb_api} USD a GB).
* **Through the CDN: {_usd(cdn)} USD.** Every lookup is a CloudFront request
  and its viewer function, and its answer's transfer from the edge
  ({prices.transfer_out_gb_cloudfront} USD a GB); the {100 - EDGE_HIT_RATIO * 100:.0f}%
  the edge does not answer reach the API as above (the origin's answers to the edge
  are not charged as transfer).

How much the edge answers depends on how many lookups share an invite: a busy page
is nearly all edge hits, a directory of a thousand invites each looked up once a day
nearly none ([operations](operations.md#capacity)). Misses are capped whatever the
traffic: by the lookup budget (`LOOKUP_BUDGET_PER_10_MINUTES`, 200 by default), so a
flood of new codes costs its refused misses' handler time and reads, not Discord calls.

## What lowers it

* **The CDN** (`Cdn=enabled`), once lookups share invites: each edge hit costs a
  CloudFront request instead of an API Gateway request, a Lambda invocation and a
  DynamoDB read.
* **A longer freshness** (`CacheFreshSeconds`, 60 s): fewer misses, and longer edge
  copies; a revoked invite can be shown that much longer (the bound in
  [operations](operations.md)).
* **A longer memory** (`MemoryCacheSeconds`, 1 s): more hits from memory, no read;
  other instances may answer a revoked invite that much longer.
* **Less memory** (`MemorySize`, {memory["ApiFunction"]} MB): Lambda bills GB-seconds,
  and a lookup waits on DynamoDB and Discord more than it computes; 256 MB halves
  the price of each millisecond, and slows what the CPU does.
* **Provisioned capacity** for a steady load: on demand is priced for spikes; a table
  busy all day costs less provisioned (with auto scaling), at the price of planning.

## The prices

{prices.region}, AWS's list prices as of {prices.as_of}, in USD, before any free tier:
Lambda (arm64) {prices.lambda_gb_second:.10f} a GB-second and
{prices.lambda_request * 1e6:.2f} a million invocations; HTTP API
{prices.http_api_request * 1e6:.2f} a million requests; DynamoDB on demand
{prices.dynamodb_read_unit * 1e6:.3f} a million read units and
{prices.dynamodb_write_unit * 1e6:.3f} a million write units; CloudFront
{prices.cloudfront_request * 1e6:.2f} a million HTTPS requests and
{prices.cloudfront_function * 1e6:.2f} a million function invocations. From
{", ".join(PRICE_PAGES)}. make bench does not read them (its machine reaches no AWS
page): they are `benchmarks/cost.py`'s `PRICES`; for another region or a later
date, change them there and run make bench.

The measured figures are this run's: {results.get("_date", "")}, `bench/results.json`.
"""


def write_page(results: Mapping[str, Any], memory: Mapping[str, int]) -> None:
    COST_PAGE.write_text(page(results, memory))
