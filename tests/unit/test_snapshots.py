"""SnapStart: what each instance restored from one snapshot must own."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import snapshot_restore_py

from invite_proxy.adapters import instance
from invite_proxy.adapters.discord.session import SESSION
from invite_proxy.adapters.dynamodb.lease_store import DynamoDBLeases
from invite_proxy.edges import snapshots, wiring
from invite_proxy.edges.settings import ApiSettings


def _registered(registry: list[Any]) -> list[Callable[..., Any]]:
    return [entry[0] for entry in registry]


@pytest.fixture(scope="module", autouse=True)
def wired() -> None:
    """The hooks registered, as the wiring registers them when it builds a function."""
    snapshots.register()


def test_importing_the_module_registers_nothing() -> None:
    """Only the wiring registers the hooks: an import has no effect beyond its definitions."""
    probe = (
        "import snapshot_restore_py as r, invite_proxy.edges.snapshots; "
        "assert not r._after_restore_registry and not r._before_snapshot_registry"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", probe], check=True, env=env)


def test_the_wiring_registers_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[bool] = []

    def register() -> bool:
        registered.append(True)
        return True

    monkeypatch.setattr(snapshots, "register", register)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    wiring.api_services(ApiSettings.from_env({"CACHE_TABLE_NAME": "unit-table"}))
    assert registered == [True]


def restore_as_the_runtime_does() -> None:
    for func, args, kwargs in snapshot_restore_py._after_restore_registry:
        func(*args, **kwargs)


def test_the_hooks_are_registered_with_the_runtime() -> None:
    before = _registered(snapshot_restore_py._before_snapshot_registry)
    after = _registered(snapshot_restore_py._after_restore_registry)
    assert snapshots.drop_connections in before
    assert snapshots.after_restore in after


def test_a_restored_instance_has_an_id_of_its_own() -> None:
    leases = DynamoDBLeases(object(), "table")  # type: ignore[arg-type]
    in_snapshot = instance.instance_id()
    owner = leases._id
    restore_as_the_runtime_does()
    assert instance.instance_id() != in_snapshot
    assert leases._id != owner  # its leases and probes are told from the other copies'
    assert leases._id.startswith(instance.instance_id())


def test_a_restored_instance_draws_its_own_jitter() -> None:
    random.seed(7)  # the state every copy of one snapshot would start from
    snapshot_draws = [random.random() for _ in range(3)]
    random.seed(7)
    restore_as_the_runtime_does()
    assert [random.random() for _ in range(3)] != snapshot_draws


def test_pooled_connections_are_dropped_before_the_snapshot() -> None:
    # A pool, as a request would leave one (no connection is made to create it).
    pools = SESSION.get_adapter("https://discord.com").poolmanager  # type: ignore[attr-defined]
    pools.connection_from_url("https://discord.com/api/v10")
    assert len(pools.pools) == 1
    snapshots.drop_connections()
    assert len(pools.pools) == 0
    assert SESSION.get_adapter("https://discord.com").poolmanager is pools  # type: ignore[attr-defined]


def test_outside_a_managed_runtime_there_is_nothing_to_register(monkeypatch: Any) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # as if not installed
    assert snapshots.register() is False
