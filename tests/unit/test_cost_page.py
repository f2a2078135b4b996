"""docs/cost.md is make bench's, from the committed results; its arithmetic, checked."""

from __future__ import annotations

import json

import pytest

from benchmarks.cost import COST_PAGE, KINDS, PRICES, kind_cost, page
from benchmarks.results import RESULTS
from invite_proxy_local.template import Template


def memory() -> dict[str, int]:
    return {name: function.memory for name, function in Template().functions().items()}


def test_the_cost_page_says_what_the_committed_results_say() -> None:
    results = json.loads(RESULTS.read_text())
    assert COST_PAGE.read_text() == page(results, memory())  # make bench writes it


def test_a_kinds_price_is_its_lambda_time_its_requests_and_its_units() -> None:
    results = {
        "handler_ms_miss": 20.0,
        "table_calls_per_miss": 4.0,
        "capacity_miss_rru": 0.5,
        "capacity_miss_wru": 20.0,
    }
    cost = kind_cost(results, "miss", discord_calls=1, memory_mb=512, prices=PRICES)
    assert cost.billed_ms == pytest.approx(20 + 4 * 4 + 80)  # measured, the calls, Discord
    gb_seconds = 0.5 * cost.billed_ms / 1000
    assert cost.lambda_usd == pytest.approx(
        gb_seconds * PRICES.lambda_gb_second + PRICES.lambda_request
    )
    assert cost.api_usd == PRICES.http_api_request
    assert cost.table_usd == pytest.approx(
        0.5 * PRICES.dynamodb_read_unit + 20 * PRICES.dynamodb_write_unit
    )


def test_every_kind_the_page_prices_is_measured_by_make_bench() -> None:
    results = json.loads(RESULTS.read_text())
    for kind, *_ in KINDS:
        for key in (f"handler_ms_{kind}", f"capacity_{kind}_rru", f"capacity_{kind}_wru"):
            assert key in results, key
