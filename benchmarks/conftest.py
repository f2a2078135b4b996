"""Benchmarks run with `make bench`; they measure and report, they never gate the test suite."""

import os

import pytest

# Powertools reads these when invite_proxy.observability is first imported, which may be
# while benchmark modules are collected, before any fixture runs.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "invite-proxy")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Bench")
# The benchmarks' own boto3 clients talk to local moto servers only.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")


def pytest_sessionstart() -> None:
    from benchmarks.results import start_run

    start_run()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A whole `make bench` run that passed writes the README's table, and docs/cost.md,
    from its results."""
    from benchmarks.report import HEADLINES, write_readme
    from benchmarks.results import RESULTS

    if exitstatus != 0 or os.environ.get("BENCH_RESULTS") or not RESULTS.exists():
        return  # a failed, partial or smoke run changes no README
    import json

    results = json.loads(RESULTS.read_text())
    if all(key in results for key, *_ in HEADLINES):
        write_readme(results)
    from benchmarks.cost import KINDS, write_page
    from invite_proxy_local.template import Template

    if all(f"capacity_{kind}_wru" in results for kind, *_ in KINDS):
        write_page(results, {name: f.memory for name, f in Template().functions().items()})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cold start first, on a quiet machine: the fleet run and the sweep start and stop
    servers and processes whose teardown would otherwise still be running beside it."""
    items.sort(key=lambda item: item.path.name != "test_import_cost.py")
