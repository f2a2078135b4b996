"""The OpenAPI contract: generated from the code, committed, valid, and what `make run` answers."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate

from invite_proxy.domain import errors
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy_local import openapi
from invite_proxy_local.template import Template
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env

TOKEN = "dip_contract-test-token-0000000000000000000000"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(openapi.DOCUMENT_PATH.read_text())  # type: ignore[no-any-return]


def test_the_committed_document_is_what_the_code_generates() -> None:
    # `make openapi` regenerates it; like the cookbook's compare-openapi, drift fails here.
    assert openapi.DOCUMENT_PATH.read_text() == openapi.render(openapi.build()), (
        "functions/docs/openapi.json is out of date with the code: run 'make openapi'"
    )
    check = subprocess.run(
        [sys.executable, "-m", "invite_proxy_local.openapi", "--check"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)  # openapi-spec-validator: raises on any violation
    assert document["openapi"].startswith("3.")


def test_template_app_and_document_name_the_same_routes(
    template: Template, document: dict[str, Any]
) -> None:
    declared = {(r.method, r.path) for r in template.routes() if r.function == openapi.API_FUNCTION}
    registered = {(r.method, r.path) for r in openapi.app_routes()}
    assert declared == registered == openapi.document_paths(document)
    assert declared == {
        ("GET", "/invites/{code}"),
        ("DELETE", "/invites/{code}"),
        ("GET", "/api/v10/invites/{code}"),  # Discord's own path, for its libraries
        ("GET", "/invites/{code}/badge.json"),  # shields.io's endpoint badge
        ("GET", "/guilds/{guild_id}/invite"),  # a guild's lasting invite (guild mode)
        ("GET", "/guilds/{guild_id}/badge.json"),  # and its badge
        ("GET", "/invites/{code}/card.svg"),  # the image card, for READMEs
        ("GET", "/guilds/{guild_id}/card.svg"),  # and a guild's
        ("GET", "/invites/{code}/icons/{file}"),  # a guild's icon, through the proxy
    }
    # The bearer scheme is on exactly the routes that have the admin authorizer.
    authorized = {(r.method, r.path) for r in template.routes() if r.authorizer is not None}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert ("security" in operation) == ((method.upper(), path) in authorized)


def test_a_route_in_one_place_only_fails_the_generator(tmp_path: Path) -> None:
    source = Template().doc  # !Ref and friends in their long form, which Template reads too
    events = source["Resources"]["ApiFunction"]["Properties"]["Events"]
    events["PatchInvite"] = {
        "Type": "HttpApi",
        "Properties": {"ApiId": "InviteApi", "Path": "/invites/{code}", "Method": "PATCH"},
    }
    changed = tmp_path / "template.yaml"
    changed.write_text(yaml.safe_dump(source))
    with pytest.raises(openapi.RoutesDisagree, match="PATCH"):
        openapi.build(Template(changed))


def test_every_error_callers_may_retry_carries_retry_after() -> None:
    """The contract promises Retry-After on these statuses; each such error has one."""

    def subclasses(cls: type[errors.InviteProxyError]) -> Iterator[type[errors.InviteProxyError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(errors.InviteProxyError):
        if cls.retry_later and cls is not errors.DiscordRateLimited:  # it requires one
            assert cls.default_retry_after is not None, cls.__name__
    rate_limited = errors.DiscordRateLimited.__init__.__kwdefaults__ or {}
    assert "retry_after" not in rate_limited  # a required keyword: never without one


# Raised and handled inside the proxy: none of these ever reaches a caller.
INTERNAL_ERRORS = {
    errors.TableUnavailable,  # lookups degrade around it; a DELETE reports cache_eviction_failed
    errors.TableSkipped,
    errors.NotificationFailed,  # a rule run's report
    errors.RuleRunFailed,  # the revoker's, not the API's
}


def test_every_error_the_api_can_answer_is_in_the_document(document: dict[str, Any]) -> None:
    listed = {cls for route in openapi.ROUTE_ERRORS.values() for cls in route}
    public = set(_all_errors()) - INTERNAL_ERRORS - {errors.InviteProxyError}
    assert listed == public, "an error class is missing from ROUTE_ERRORS, or listed needlessly"
    documented = {
        code
        for operations in document["paths"].values()
        for operation in operations.values()
        for response in operation["responses"].values()
        for codes in _codes(response.get("content"))
        for code in codes
    }
    assert {cls.code for cls in public} <= documented
    # What the handler answers by hand: the 500 is documented; its 404 not_found cannot
    # happen behind API Gateway, which answers unknown routes itself.
    by_hand = set(re.findall(r'plain_error\((\d+), "(\w+)"', openapi.APP_PATH.read_text()))
    assert by_hand == {("404", "not_found"), ("500", "internal_error")}
    assert "internal_error" in documented


def test_each_documented_error_code_names_a_real_error(document: dict[str, Any]) -> None:
    known = {cls.code for cls in _all_errors()}
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                for codes in _codes(schema):
                    assert set(codes) <= known, (status, codes)


def test_the_lookups_query_parameters_are_the_request_models_fields(
    document: dict[str, Any],
) -> None:
    get = document["paths"]["/invites/{code}"]["get"]
    query = {p["name"] for p in get["parameters"] if p["in"] == "query"}
    # with_expiration is accepted and ignored, as Discord now does; the model drops it.
    assert query == ({f.name for f in dataclasses.fields(InviteQuery)} - {"code"}) | {
        "with_expiration"
    }


def _all_errors() -> list[type[errors.InviteProxyError]]:
    found: list[type[errors.InviteProxyError]] = [errors.InviteProxyError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found


def _codes(schema: Any) -> Iterator[list[str]]:
    if isinstance(schema, dict):
        if "enum" in schema and isinstance(schema["enum"], list):
            yield schema["enum"]
        for value in schema.values():
            yield from _codes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _codes(value)


# -- the local run ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_run() -> Iterator[str]:
    """`make run`'s process, with the budget off so the fuzzing cannot spend it."""
    port = closed_port()
    process = Process(
        clean_env(
            PORT=str(port),
            WEB_PORT=str(closed_port()),
            LOCAL_ADMIN_TOKEN=TOKEN,
            LOOKUP_BUDGET_PER_10_MINUTES="0",
        )
    )
    try:
        process.wait_for("listening on")
        process.wait_for("CORS:")
        process.keep_reading()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a local URL)
        return response.status, response.headers["Content-Type"], response.read()


def test_the_local_run_serves_the_document_and_an_offline_viewer(local_run: str) -> None:
    status, content_type, body = _get(f"{local_run}/openapi.json")
    assert (status, content_type) == (200, "application/json")
    assert body == openapi.DOCUMENT_PATH.read_bytes()
    status, content_type, page = _get(f"{local_run}/docs")
    assert status == 200
    assert content_type.startswith("text/html")
    assert b"http://" not in page
    assert b"https://" not in page
    for asset, kind in (("swagger-ui-bundle.min.js", "javascript"), ("swagger-ui.min.css", "css")):
        assert asset.encode() in page
        status, content_type, body = _get(f"{local_run}/docs/{asset}")
        assert status == 200
        assert kind in content_type
        assert len(body) > 10_000


def _schemathesis(base_url: str, workdir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    st = Path(sys.executable).with_name("st")
    return subprocess.run(
        [
            str(st),
            "run",
            str(openapi.DOCUMENT_PATH),
            "--url",
            base_url,
            "--checks",
            "all",
            # API Gateway answers a method no route has with 404, not 405: the document
            # says so, and the local gateway does the same.
            "--exclude-checks",
            "unsupported_method",
            "--max-examples",
            os.environ.get("CONTRACT_MAX_EXAMPLES", "12"),
            "--seed",
            "20261123",
            "--generation-database",
            "none",
            "--workers",
            "1",
            "--no-color",
            *extra,
        ],
        cwd=workdir,  # where schemathesis keeps its cache: never the repository
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_local_run_keeps_to_the_contract_under_schemathesis(
    local_run: str, tmp_path: Path
) -> None:
    """Both routes, DELETE with a token and without: no 5xx and nothing the document forbids."""
    runs = {
        "with the admin token": ("-H", f"Authorization: Bearer {TOKEN}"),
        "without a token": (),
    }

    def run(name: str) -> subprocess.CompletedProcess[str]:
        workdir = tmp_path / name.replace(" ", "-")  # each run keeps its own cache
        workdir.mkdir()
        return _schemathesis(local_run, workdir, *runs[name])

    with ThreadPoolExecutor(len(runs)) as pool:
        results = dict(zip(runs, pool.map(run, runs), strict=True))
    for name, result in results.items():
        assert result.returncode == 0, f"schemathesis {name}:\n{result.stdout}\n{result.stderr}"
        assert "Tested: 9" in result.stdout, result.stdout
