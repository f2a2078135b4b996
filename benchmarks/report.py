"""The README's table of headline figures, written from bench/results.json by make bench
(benchmarks/conftest.py), never by hand; tests/unit/test_bench_report.py checks that the
committed README says what the committed results say."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _ratio(value: float) -> str:
    return f"{value:.2f}"


def _fine(value: float) -> str:
    return f"{value:.3f}"  # a target of 0.1 is not read off a figure rounded to 0.10


def _ms(value: float) -> str:
    return f"{value:.0f} ms"


def _whole(value: float) -> str:
    return f"{value:,.0f}"


# key, what it is, its target, how it is shown
HEADLINES: tuple[tuple[str, str, str, Callable[[float], str]], ...] = (
    ("cold_start_ratio", "API cold start ÷ importing boto3, requests, pydantic", "≤ 1.3", _ratio),
    ("warm_hit_ratio", "a hit from the table ÷ one bare GetItem", "≤ 1.25", _ratio),
    ("memory_hit_ratio", "a hit from the instance's memory ÷ one bare GetItem", "≤ 0.1", _fine),
    (
        "hit_rps_per_instance_ratio",
        "hits a second per instance (locust, local run) ÷ GetItems a second on one thread",
        "reported",
        _ratio,
    ),
    ("hit_p99_ms", "a hit's p99 through the local run, under that load", "reported", _ms),
    ("table_calls_per_miss", "DynamoDB calls per miss (mean)", "≤ 5", _ratio),
    (
        "table_calls_per_refused_miss",
        "DynamoDB calls per miss its caller's share refuses (mean, a flood)",
        "≤ 2",
        _ratio,
    ),
    (
        "upstream_calls_per_distinct_key",
        "Discord calls per distinct invite, fleet run",
        "1.00",
        _ratio,
    ),
    ("upstream_429s", "429s Discord sent in every benchmark", "0", _whole),
    (
        "flood_flooder_spend_ratio",
        "a flooder's Discord calls ÷ its share (open mode)",
        "≤ 1.0",
        _ratio,
    ),
    (
        "guild_flood_upstream_ratio",
        "Discord calls in a flood ÷ the stated bound (guild mode)",
        "≤ 1.0",
        _ratio,
    ),
)


def table(results: Mapping[str, float]) -> str:
    rows = ["| figure | measured | target |", "| --- | --- | --- |"]
    for key, what, target, shown in HEADLINES:
        rows.append(f"| {what} (`{key}`) | {shown(results[key])} | {target} |")
    rows += _cost_rows(results)
    return "\n".join(rows)


def _cost_rows(results: Mapping[str, float]) -> list[str]:
    """What docs/cost.md says a million lookups cost, from the same results."""
    from benchmarks.cost import EDGE_HIT_RATIO, HIT_RATIO, million_lookups
    from invite_proxy_local.template import Template

    memory = {name: function.memory for name, function in Template().functions().items()}
    direct, cdn = million_lookups(results, memory)
    hits, edge = f"{HIT_RATIO:.0%}", f"{EDGE_HIT_RATIO:.0%}"
    return [
        f"| a million lookups, {hits} hits, on AWS ([cost.md](docs/cost.md)) | "
        f"{direct:.2f} USD | reported |",
        f"| the same through the CDN, {edge} answered at the edge | {cdn:.2f} USD | reported |",
    ]


def block(results: Mapping[str, float]) -> str:
    return f"{START}\n{table(results)}\n{END}"


def with_table(readme: str, results: Mapping[str, float]) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise ValueError(f"README.md has no {START} ... {END} block")
    return pattern.sub(lambda _: block(results), readme)


def write_readme(results: Mapping[str, float], readme: Path = README) -> None:
    readme.write_text(with_table(readme.read_text(), results))
