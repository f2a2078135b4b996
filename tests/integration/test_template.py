"""template.yaml: what it declares, and SAM CLI's own validator and builder on it."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from invite_proxy.domain.rules import RevocationRule
from invite_proxy_local.template import REPO_ROOT, Template


def test_functions_run_the_newest_buildable_python_on_arm64(template: Template) -> None:
    function_globals = template.doc["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    layer = template.resources["InviteLibLayer"]
    assert layer["Metadata"] == {
        "BuildMethod": "makefile",  # build/Makefile: the runtime's build plus bytecode
        "ContextPath": "build",
        "BuildArchitecture": "arm64",
    }
    for function in template.functions():
        metadata = template.resources[function]["Metadata"]
        assert metadata == {"BuildMethod": "makefile", "ContextPath": "build"}, function
    assert function_globals["Layers"] == [{"Ref": "InviteLibLayer"}]


def test_table_is_on_demand_with_ttl(template: Template) -> None:
    table = template.table()
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_cors_origins_come_from_a_parameter_with_no_wildcard_default(template: Template) -> None:
    body = template.resources["InviteApi"]["Properties"]["DefinitionBody"]
    assert body["x-amazon-apigateway-cors"]["allowOrigins"] == {"Ref": "AllowedOrigins"}
    origins = template.doc["Parameters"]["AllowedOrigins"]
    assert "Default" not in origins


def test_parameters_and_outputs(template: Template) -> None:
    params = template.doc["Parameters"]
    for name in (
        "AllowedOrigins",
        "CacheFreshSeconds",
        "CacheMaxAgeSeconds",
        "DiscordTokenSecretArn",
    ):
        assert name in params
    assert {"ApiUrl", "CacheTableName"} <= set(template.doc["Outputs"])


def _table_actions(template: Template, function: str) -> list[str]:
    policies: list[dict[str, Any]] = template.resources[function]["Properties"]["Policies"]
    [dynamo] = [p for p in policies if "Statement" in p]
    [statement] = dynamo["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": ["InviteCacheTable", "Arn"]}
    return sorted(statement["Action"])


def _secrets(template: Template, function: str) -> list[Any]:
    policies: list[dict[str, Any]] = template.resources[function]["Properties"]["Policies"]
    found = []
    for policy in policies:
        if "Fn::If" in policy:  # an optional secret: the policy only when it is set
            policy = policy["Fn::If"][1]
        if "AWSSecretsManagerGetSecretValuePolicy" in policy:
            found.append(policy["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Ref"])
    return found


def test_each_function_gets_only_what_it_uses(template: Template) -> None:
    assert _table_actions(template, "ApiFunction") == [
        "dynamodb:BatchGetItem",  # guild mode: a refresh checks what it wrote is not revoked
        "dynamodb:BatchWriteItem",  # and writes what changed in a guild's list
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    # The CDN's origin secret only with the CDN: the proof a request came through it.
    assert _secrets(template, "ApiFunction") == ["DiscordTokenSecretArn", "CdnOriginSecret"]
    assert _table_actions(template, "RevokerFunction") == [
        "dynamodb:BatchGetItem",  # a rule run's listing refreshes the guild's mirror
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",  # the guild's digests, to write only what changed
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ]
    assert _secrets(template, "RevokerFunction") == [
        "DiscordTokenSecretArn",
        "RevocationWebhookSecretArn",
    ]
    authorizer = template.resources["AdminAuthorizerFunction"]["Properties"]
    assert "Statement" not in str(authorizer["Policies"])  # no table, no bot token
    assert _secrets(template, "AdminAuthorizerFunction") == ["AdminTokensSecretArn"]


def test_routes_and_who_may_call_them(template: Template) -> None:
    assert {r.route_key: r.authorizer for r in template.routes()} == {
        "GET /invites/{code}": None,  # public
        "DELETE /invites/{code}": "AdminToken",
        "GET /api/v10/invites/{code}": None,  # the same lookup, answered as Discord does
        "GET /invites/{code}/badge.json": None,  # the same lookup, as a shields.io badge
        "GET /guilds/{guild_id}/invite": None,  # a guild's lasting invite (guild mode)
        "GET /guilds/{guild_id}/badge.json": None,  # and its badge
        "GET /invites/{code}/card.svg": None,  # the same lookup, as one SVG image
        "GET /guilds/{guild_id}/card.svg": None,  # a guild's, as one SVG image
        "GET /invites/{code}/icons/{file}": None,  # the icon the invite shows
        # Only with ApiDocs=enabled (see test_api_docs_exist_only_when_the_parameter_asks).
        "GET /openapi.json": None,
        "GET /docs": None,
        "GET /docs/{asset}": None,
    }
    [authorizer] = template.authorizers().values()
    assert authorizer.function == "AdminAuthorizerFunction"
    assert authorizer.identity_headers == ("authorization",)
    assert (authorizer.payload_version, authorizer.simple_responses) == ("2.0", True)
    assert authorizer.ttl_seconds == 0  # a removed token must stop working promptly


def test_revocation_schedules(template: Template) -> None:
    events = template.resources["RevokerFunction"]["Properties"]["Events"]
    params = template.doc["Parameters"]
    expressions = []
    for event in events.values():
        assert event["Type"] == "ScheduleV2"
        props = event["Properties"]
        assert props["State"] == {"Ref": "RevocationSchedulesState"}
        assert props["ScheduleExpressionTimezone"] == {"Ref": "RevocationTimezone"}
        assert props["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert props["DeadLetterConfig"] == {
            "Arn": {"Fn::GetAtt": ["RevocationDeadLetterQueue", "Arn"]}
        }
        expressions.append(params[props["ScheduleExpression"]["Ref"]]["Default"])
        # The Input is a rule; with a guild filled in, it must be a valid one.
        text = props["Input"]["Fn::Sub"].replace("${RevocationGuildId}", "123456789012345678")
        rule = RevocationRule.parse(json.loads(text))
        assert rule.guild_id == "123456789012345678"
    assert params["RevocationSchedulesState"]["Default"] == "DISABLED"  # ship disabled
    assert sorted(e.split("(")[0] for e in expressions) == ["cron", "rate"]
    queue = template.resources["RevocationDeadLetterQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] == 1_209_600
    # Scheduler invokes asynchronously: a run that fails is Lambda's to retry and dead-letter.
    invoke_config = template.resources["RevokerFunction"]["Properties"]["EventInvokeConfig"]
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["RevocationDeadLetterQueue", "Arn"]},
    }
    [rule] = template.doc["Rules"].values()
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "RevocationSchedulesState"}, "ENABLED"]}


def test_layer_requirements_are_generated_from_the_lock_file() -> None:
    requirements = (REPO_ROOT / "layers/invite_lib/requirements.txt").read_text()
    assert requirements.startswith("# This file was autogenerated by uv")
    pinned = {line.split("==")[0] for line in requirements.splitlines() if "==" in line}
    assert {"aws-lambda-powertools", "boto3", "pydantic", "requests"} <= pinned
    assert not pinned & {"moto", "pytest", "pyyaml", "ruff", "mypy", "flask"}


# -- SAM CLI -------------------------------------------------------------------------------

FUNCTIONS = ("ApiFunction", "ApiDocsFunction", "AdminAuthorizerFunction", "RevokerFunction")


@pytest.fixture(scope="session")
def sam() -> str:
    # make test names it; plain pytest finds the one `make install-sam` put in the repo.
    sam_bin = os.environ.get("SAM_BIN") or str(REPO_ROOT / ".tools/sam/bin/sam")
    if not Path(sam_bin).exists():
        sam_bin = shutil.which("sam") or ""
    if not sam_bin or not Path(sam_bin).exists():
        if os.environ.get("CI"):
            pytest.fail("SAM_BIN is not set; run the tests through `make test`")
        pytest.skip("aws-sam-cli not installed (make install-sam); `make test` always runs these")
    return sam_bin


def _runtime_python_dir() -> str:
    found = subprocess.run(
        [str(REPO_ROOT / "scripts/find-python"), "3.13"],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(Path(found.stdout.strip()).parent)


def _run_sam(sam: str, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", **extra_env)
    # sam build needs a python3.13 with pip on PATH, to match the runtime.
    python_bin = os.environ.get("SAM_PYTHON_BIN") or _runtime_python_dir()
    env["PATH"] = f"{python_bin}:{env['PATH']}"
    return subprocess.run(
        [sam, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.sam
def test_sam_validate_lint(sam: str) -> None:
    result = _run_sam(sam, "validate", "--lint", "--region", "us-east-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


@pytest.fixture(scope="session")
def sam_build(sam: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("sam-build")
    result = _run_sam(
        sam, "build", "--build-dir", str(build_dir), "--cache-dir", str(build_dir / ".cache")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


@pytest.fixture(scope="session")
def native_build(sam: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same build for this machine's architecture, so its binaries load here."""
    build_dir = tmp_path_factory.mktemp("sam-build-native")
    result = _run_sam(
        sam,
        "build",
        "--build-dir",
        str(build_dir),
        "--cache-dir",
        str(build_dir / ".cache"),
        LAMBDA_ARCH=platform.machine(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return build_dir


# Counts what the import machinery compiles from source, then imports the handler as
# Lambda does: the function's folder and the layer's python/ on sys.path, -B because
# /var/task and /opt are read-only.
COLD_IMPORT = """
import importlib.machinery, json, sys
compiled = []
original = importlib.machinery.SourceFileLoader.source_to_code
def counting(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return original(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = counting
sys.path[:0] = sys.argv[1:3]
import app
print(json.dumps({"compiled": compiled, "modules": sorted(sys.modules)}))
"""

# What no handler's import path may pull in: boto3 (clients come from botocore, without
# s3transfer), and for the API, Powertools' event handler package (it routes by routeKey)
# and pydantic (a cache hit parses nothing with it; a miss imports it then).
NOT_IMPORTED = {
    "ApiFunction": {"boto3", "s3transfer", "aws_lambda_powertools.event_handler", "pydantic"},
    "AdminAuthorizerFunction": {"boto3", "s3transfer"},
    "RevokerFunction": {"boto3", "s3transfer"},
}


def _run_built(script: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    """Run a script as Lambda would run the built artifact: its runtime's Python, isolated,
    writing no bytecode (read-only), with the given folders first on sys.path."""
    python = Path(os.environ.get("SAM_PYTHON_BIN") or _runtime_python_dir()) / "python3.13"
    result = subprocess.run(
        [str(python), "-I", "-B", "-c", script, *map(str, paths)],
        env=BUILT_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


# A Lambda environment's variables, for running the built artifact here.
BUILT_ENV = {
    "PATH": os.environ["PATH"],
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "cold-start",
    "AWS_SECRET_ACCESS_KEY": "cold-start",
    "CACHE_TABLE_NAME": "invites",
    "DISCORD_TOKEN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bot",
    "ADMIN_TOKENS_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:admins",
    "POWERTOOLS_SERVICE_NAME": "invite-proxy",
    "POWERTOOLS_METRICS_NAMESPACE": "InviteProxy",
}
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1")
MAKE_EVERY_CLIENT = """
import json, sys
sys.path[:0] = sys.argv[1:2]
from invite_proxy.adapters import aws_clients
services = aws_clients.SERVICES + aws_clients.CREDENTIAL_SERVICES
session = aws_clients._session()
print(json.dumps({
    f"{service} {region}": session.create_client(service, region_name=region).meta.endpoint_url
    for service in services
    for region in sys.argv[2:]
}))
"""


def _endpoints(services: tuple[str, ...]) -> dict[str, str]:
    """Where botocore with all its data sends each service in each region."""
    import botocore.session

    session = botocore.session.get_session()
    return {
        f"{service} {region}": session.create_client(service, region_name=region).meta.endpoint_url
        for service in services
        for region in REGIONS
    }


@pytest.mark.sam
def test_the_layer_keeps_botocore_data_for_what_the_functions_call(
    sam_build: Path, native_build: Path
) -> None:
    """The build drops every other service's model and endpoints: each client the code
    may make still builds from the artifact, for the same endpoint as with all the data,
    and nothing else is left."""
    from invite_proxy.adapters.aws_clients import CREDENTIAL_SERVICES, SERVICES

    data = sam_build / "InviteLibLayer" / "python" / "botocore" / "data"
    assert {p.name for p in data.iterdir() if p.is_dir()} == {*SERVICES, *CREDENTIAL_SERVICES}
    endpoints = json.loads((data / "endpoints.json").read_text())
    assert {p["partition"] for p in endpoints["partitions"]} >= {"aws", "aws-cn", "aws-us-gov"}
    for partition in endpoints["partitions"]:
        assert set(partition["services"]) <= {*SERVICES, *CREDENTIAL_SERVICES}
    layer = native_build / "InviteLibLayer" / "python"
    result = _run_built(MAKE_EVERY_CLIENT, layer, *map(Path, REGIONS))
    built = json.loads(result.stdout.splitlines()[-1])
    assert built == _endpoints(SERVICES + CREDENTIAL_SERVICES)


@pytest.mark.sam
def test_built_artifacts_carry_bytecode_that_zipping_cannot_invalidate(sam_build: Path) -> None:
    sources = [
        path
        for resource in ("InviteLibLayer", *FUNCTIONS)
        for path in (sam_build / resource).rglob("*.py")
    ]
    assert len(sources) > 500
    for source in sources:
        cached = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        header = cached.read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, cached
        # Flags 0b01: checked by the source's hash, and never against it (unchecked-hash),
        # so the modification times a zip rounds cannot make Python recompile.
        assert int.from_bytes(header[4:8], "little") == 0b01, cached


@pytest.mark.sam
@pytest.mark.parametrize("function", ["ApiFunction", "AdminAuthorizerFunction", "RevokerFunction"])
def test_a_cold_import_from_the_built_artifact_compiles_nothing(
    native_build: Path, function: str
) -> None:
    result = _run_built(
        COLD_IMPORT, native_build / function, native_build / "InviteLibLayer" / "python"
    )
    imported = json.loads(result.stdout.splitlines()[-1])
    assert imported["compiled"] == []
    assert not NOT_IMPORTED[function] & set(imported["modules"])


@pytest.mark.sam
def test_sam_build_packs_the_layer_for_arm64(sam_build: Path) -> None:
    python = sam_build / "InviteLibLayer" / "python"
    assert (python / "invite_proxy" / "services" / "lookup.py").exists()
    for package in ("aws_lambda_powertools", "pydantic", "requests", "boto3"):
        assert (python / package).is_dir(), package
    assert list(python.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"))


@pytest.mark.sam
def test_nothing_local_only_ships(sam_build: Path) -> None:
    layer_top = {p.name for p in (sam_build / "InviteLibLayer" / "python").iterdir()}
    local_only = {
        "discord_emulator",
        "invite_proxy_local",
        "moto",
        "pytest",
        "_pytest",
        "yaml",
        "tests",
    }
    assert not layer_top & local_only
    for function in ("ApiFunction", "AdminAuthorizerFunction", "RevokerFunction"):
        files = {p.name for p in (sam_build / function).rglob("*") if p.is_file()}
        assert files == {"app.py", "app.cpython-313.pyc"}, function
    # The optional docs function ships the committed document beside its handler.
    files = {p.name for p in (sam_build / "ApiDocsFunction").rglob("*") if p.is_file()}
    assert files == {"app.py", "app.cpython-313.pyc", "openapi.json"}


def _translate(sam: str, layer_key: str = "key") -> dict[str, Any]:
    """template.yaml as SAM's own translator turns it into CloudFormation; the code and
    layer stand at s3://bucket/key (the layer at `layer_key`), as `sam package` puts them."""
    script = """
import json, re, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
source = open("template.yaml").read()
source = re.sub(r"(CodeUri|ContentUri): \\S+", r"\\1: s3://bucket/key", source)
source = source.replace("ContentUri: s3://bucket/key", "ContentUri: s3://bucket/" + sys.argv[1])
class NoManagedPolicies:
    def load(self): return {}
json.dump(transform(yaml_parse(source), {}, NoManagedPolicies()), sys.stdout)
"""
    python = Path(sam).parent / "python"
    result = subprocess.run(
        [str(python), "-c", script, layer_key],
        cwd=REPO_ROOT,
        env=dict(os.environ, AWS_DEFAULT_REGION="us-east-1"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["Resources"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def translated(sam: str) -> dict[str, Any]:
    return _translate(sam)


@pytest.mark.sam
def test_translated_api_keeps_every_cors_setting(translated: dict[str, Any]) -> None:
    """SAM's CorsConfiguration would keep only AllowOrigins when it is a !Ref."""
    body = translated["InviteApi"]["Properties"]["Body"]
    assert body["x-amazon-apigateway-cors"] == {
        "allowOrigins": {"Ref": "AllowedOrigins"},
        "allowMethods": ["GET", "DELETE", "OPTIONS"],
        "allowHeaders": ["authorization", "content-type", "if-none-match", "x-audit-log-reason"],
        "exposeHeaders": ["etag", "x-cache", "retry-after"],
        "maxAge": 600,
    }


@pytest.mark.sam
def test_translated_api_guards_delete_only(translated: dict[str, Any]) -> None:
    body = translated["InviteApi"]["Properties"]["Body"]
    path = body["paths"]["/invites/{code}"]
    assert "security" not in path["get"]
    assert path["delete"]["security"] == [{"AdminToken": []}]
    scheme = body["components"]["securitySchemes"]["AdminToken"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["identitySource"] == ["$request.header.Authorization"]
    assert authorizer["authorizerResultTtlInSeconds"] == 0
    assert authorizer["enableSimpleResponses"] is True
    assert "InviteApiAdminTokenAuthorizerPermission" in translated


@pytest.mark.sam
def test_translated_schedules_may_dead_letter(translated: dict[str, Any]) -> None:
    schedules = {k: v for k, v in translated.items() if v["Type"] == "AWS::Scheduler::Schedule"}
    assert len(schedules) == 2
    for logical_id, schedule in schedules.items():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"]["Arn"] == {
            "Fn::GetAtt": ["RevocationDeadLetterQueue", "Arn"]
        }
        role = translated[f"{logical_id}Role"]["Properties"]
        actions = {
            statement["Action"]
            for policy in role["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        }
        assert actions == {"lambda:InvokeFunction", "sqs:SendMessage"}
    # Failed runs reach the same queue through the function's own async config.
    failure = translated["RevokerFunctionEventInvokeConfig"]["Properties"]["DestinationConfig"]
    assert failure["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["RevocationDeadLetterQueue", "Arn"]
    }
    role = translated["RevokerFunctionRole"]["Properties"]["Policies"]
    assert any("OnFailureSQSPolicy" in p.get("PolicyName", "") for p in role)


def test_alarms_watch_what_gets_bots_banned(template: Template) -> None:
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in template.resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    by_metric = {(a["Namespace"], a["MetricName"]): a for a in alarms.values()}
    invalid = by_metric[("InviteProxy", "InvalidResponse")]
    assert (invalid["Period"], invalid["Threshold"]) == (600, 1000)  # a tenth of the ban
    limited = by_metric[("InviteProxy", "UpstreamError")]
    assert {"Name": "ErrorKind", "Value": "rate_limited"} in limited["Dimensions"]
    dead_letters = by_metric[("AWS/SQS", "ApproximateNumberOfMessagesVisible")]
    assert dead_letters["Dimensions"][0]["Value"] == {
        "Fn::GetAtt": ["RevocationDeadLetterQueue", "QueueName"]
    }
    namespace = template.doc["Globals"]["Function"]["Environment"]["Variables"]
    assert namespace["POWERTOOLS_METRICS_NAMESPACE"] == "InviteProxy"
    assert namespace["POWERTOOLS_SERVICE_NAME"] == "invite-proxy"


def _deployed(translated: dict[str, Any], template: Template, **parameters: str) -> dict[str, Any]:
    """The translated resources as CloudFormation would create them with these parameters."""
    values = {
        name: str(spec.get("Default", "")) for name, spec in template.doc["Parameters"].items()
    }
    values.update(parameters)

    def holds(condition: Any) -> bool:
        if isinstance(condition, str):
            return holds(template.doc["Conditions"][condition])
        [(fn, args)] = condition.items()
        if fn == "Fn::Equals":
            left, right = (values[a["Ref"]] if isinstance(a, dict) else str(a) for a in args)
            return left == right
        if fn == "Fn::Not":
            return not holds(args[0])
        raise NotImplementedError(fn)

    no_value = object()

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, yes, no = node["Fn::If"]
                return resolve(yes if holds(name) else no)
            if node == {"Ref": "AWS::NoValue"}:
                return no_value
            pairs = ((k, resolve(v)) for k, v in node.items())
            return {k: v for k, v in pairs if v is not no_value}
        if isinstance(node, list):
            return [v for v in (resolve(item) for item in node) if v is not no_value]
        return node

    return {
        logical_id: resolve(resource)
        for logical_id, resource in translated.items()
        if "Condition" not in resource or holds(resource["Condition"])
    }


# Every path the API function serves, in the translated API's body.
API_PATHS = {
    "/invites/{code}",
    "/api/v10/invites/{code}",
    "/invites/{code}/badge.json",
    "/guilds/{guild_id}/invite",
    "/guilds/{guild_id}/badge.json",
    "/invites/{code}/card.svg",
    "/guilds/{guild_id}/card.svg",
    "/invites/{code}/icons/{file}",
}


@pytest.mark.sam
def test_api_docs_exist_only_when_the_parameter_asks(
    translated: dict[str, Any], template: Template
) -> None:
    docs_routes = {"/openapi.json", "/docs", "/docs/{asset}"}
    default = _deployed(translated, template)
    assert not {k for k in default if k.startswith("ApiDocs")}
    paths = default["InviteApi"]["Properties"]["Body"]["paths"]
    assert {p for p, ops in paths.items() if ops} == API_PATHS

    enabled = _deployed(translated, template, ApiDocs="enabled")
    assert enabled["ApiDocsFunction"]["Type"] == "AWS::Lambda::Function"
    paths = enabled["InviteApi"]["Properties"]["Body"]["paths"]
    assert {p for p, ops in paths.items() if ops} == API_PATHS | docs_routes
    for path in docs_routes:
        assert set(paths[path]) == {"get"}
        assert "security" not in paths[path]["get"]
        uri = paths[path]["get"]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        assert "${ApiDocsFunction.Arn}" in uri
    # It reads files only: no table, no secret.
    role = enabled["ApiDocsFunctionRole"]["Properties"]
    assert "Policies" not in role or not role["Policies"]


@pytest.mark.sam
@pytest.mark.parametrize(
    ("value", "applied"), [("disabled", "None"), ("enabled", "PublishedVersions")]
)
def test_snapstart_is_an_option_of_the_api_function_served_through_its_alias(
    translated: dict[str, Any], template: Template, value: str, applied: str
) -> None:
    deployed = _deployed(translated, template, ApiSnapStart=value)
    assert deployed["ApiFunction"]["Properties"]["SnapStart"] == {"ApplyOn": applied}
    others = [k for k, v in deployed.items() if v["Type"] == "AWS::Lambda::Function"]
    assert all("SnapStart" not in deployed[k]["Properties"] for k in others if k != "ApiFunction")
    # SnapStart snapshots published versions: the API calls the alias, never $LATEST.
    [(alias_id, alias)] = [(k, v) for k, v in deployed.items() if v["Type"] == "AWS::Lambda::Alias"]
    assert alias["Properties"]["Name"] == "live"
    path = deployed["InviteApi"]["Properties"]["Body"]["paths"]["/invites/{code}"]
    for method in ("get", "delete"):
        uri = path[method]["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        assert f"${{{alias_id}}}" in uri
    callers = [
        v["Properties"]["FunctionName"]
        for k, v in deployed.items()
        if v["Type"] == "AWS::Lambda::Permission" and k.startswith("ApiFunction")
    ]
    assert callers
    assert all(name == {"Ref": alias_id} for name in callers)


@pytest.mark.sam
def test_a_new_layer_alone_moves_the_api_alias_to_a_new_version(sam: str) -> None:
    """Most of the code is in the layer: a deploy that changes only the layer must still
    publish a version (and with SnapStart, a snapshot) that uses it."""

    def version(resources: dict[str, Any]) -> str:
        [logical_id] = [k for k, v in resources.items() if v["Type"] == "AWS::Lambda::Version"]
        return logical_id

    assert version(_translate(sam, "layer-1")) != version(_translate(sam, "layer-2"))


# The Serverless Application Repository's rules for each field (SAM's "Metadata section
# properties", and the CreateApplication API's): required, lengths and patterns.
SAR_FIELDS: dict[str, tuple[bool, int, str | None]] = {
    "Name": (True, 140, r"[a-zA-Z0-9\-]+"),
    "Description": (True, 256, None),
    "Author": (True, 127, r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?"),
    "SpdxLicenseId": (False, 128, None),
    "LicenseUrl": (False, 1000, None),
    "ReadmeUrl": (False, 1000, None),
    "HomePageUrl": (False, 1000, r"https://\S+"),
    "SemanticVersion": (False, 64, r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"),
    "SourceCodeUrl": (False, 1000, r"https://\S+"),
}


def test_the_template_can_be_published_to_the_serverless_application_repository(
    template: Template,
) -> None:
    import tomllib

    from invite_proxy.edges.settings import PROJECT_URL, VERSION

    app = template.doc["Metadata"]["AWS::ServerlessRepo::Application"]
    assert set(app) <= {*SAR_FIELDS, "Labels"}, "a field SAR does not know"
    for field, (required, longest, pattern) in SAR_FIELDS.items():
        value = app.get(field)
        if value is None:
            assert not required, f"{field} is required"
            continue
        assert isinstance(value, str), f"{field}: no intrinsic functions, plain text"
        assert 1 <= len(value) <= longest, field
        if pattern is not None:
            assert re.fullmatch(pattern, value), field
    labels = app["Labels"]
    assert 1 <= len(labels) <= 10
    assert all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in labels)
    # What sam package uploads must exist; publishing it public needs a licence and a version.
    for field in ("LicenseUrl", "ReadmeUrl"):
        assert (REPO_ROOT / app[field]).is_file(), field
    assert (REPO_ROOT / app["ReadmeUrl"]).stat().st_size < 5 * 2**20
    assert app["SpdxLicenseId"] == "MIT"
    assert "MIT License" in (REPO_ROOT / app["LicenseUrl"]).read_text()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert app["SemanticVersion"] == VERSION == project["version"]  # one version, three places
    assert project["license"] == app["SpdxLicenseId"]
    assert app["SourceCodeUrl"] == app["HomePageUrl"] == PROJECT_URL


def _emitted_metric_names() -> set[str]:
    """Every metric name the code can emit, read from the source: obs.count("X"),
    count_by("X", ...), milliseconds("X", ...), counts_by({"X": ...}), the cache's
    outcomes (Cache + each X-Cache value), and Powertools' ColdStart where captured."""
    import ast

    from invite_proxy.services.lookup import CacheStatus

    names = {f"Cache{status.value.title()}" for status in CacheStatus}
    sources = [
        *(REPO_ROOT / "layers" / "invite_lib").rglob("*.py"),
        *(REPO_ROOT / "functions").rglob("*.py"),
    ]
    for source in sources:
        text = source.read_text()
        if "capture_cold_start_metric=True" in text:
            names.add("ColdStart")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = called or (node.func.id if isinstance(node.func, ast.Name) else None)
            first = node.args[0]
            if called in {"count", "count_by", "milliseconds"} and isinstance(first, ast.Constant):
                names.add(str(first.value))
            if called == "counts_by" and isinstance(first, ast.Dict):
                names |= {str(k.value) for k in first.keys if isinstance(k, ast.Constant)}
    return names


def _dashboard(resources: dict[str, Any]) -> dict[str, Any]:
    body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{([^}]+)\}", r"<\1>", body))  # type: ignore[no-any-return]


@pytest.mark.sam
def test_the_dashboard_shows_what_an_operator_watches_by_the_names_the_code_emits(
    translated: dict[str, Any], template: Template
) -> None:
    assert "OperationsDashboard" in _deployed(translated, template)  # on by default
    assert "OperationsDashboard" not in _deployed(translated, template, Dashboard="disabled")
    widgets = _dashboard(translated)["widgets"]
    ours: set[str] = set()
    theirs: set[tuple[str, ...]] = set()
    for widget in widgets:
        for metric in widget["properties"]["metrics"]:
            if isinstance(metric[0], dict):  # a SEARCH expression over one of our metrics
                expression = metric[0]["expression"]
                assert expression.startswith("SEARCH('{InviteProxy,")
                ours |= set(re.findall(r'MetricName="(\w+)"', expression))
            elif metric[0] == "InviteProxy":
                ours.add(metric[1])
            else:
                theirs.add(tuple(m for m in metric if isinstance(m, str)))
    emitted = _emitted_metric_names()
    assert ours <= emitted, f"on the dashboard, never emitted: {ours - emitted}"
    watched = {
        "CacheHit", "CacheMiss", "CacheStale", "CacheCoalesced",  # X-Cache outcomes
        "UpstreamCall", "UpstreamLatency", "UpstreamRefused", "LookupBudgetSpent",
        "InvalidResponse", "RuleRevoked", "RuleFailed", "RuleLeft", "ColdStart",
    }  # fmt: skip
    assert watched <= ours
    assert {m[1] for m in theirs if m[0] == "AWS/ApiGateway"} == {"Count", "4xx", "5xx"}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
            "<RevocationDeadLetterQueue.QueueName>") in theirs  # fmt: skip
    lambdas = {m[3] for m in theirs if m[:2] == ("AWS/Lambda", "Duration")}
    assert lambdas == {"<ApiFunction>", "<AdminAuthorizerFunction>", "<RevokerFunction>"}
    ban_line = [
        annotation["value"]
        for widget in widgets
        for annotation in widget["properties"].get("annotations", {}).get("horizontal", [])
    ]
    assert 10_000 in ban_line


def test_the_alarms_watch_metrics_the_code_emits(template: Template) -> None:
    alarmed = {
        resource["Properties"]["MetricName"]
        for resource in template.resources.values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
        and resource["Properties"]["Namespace"] == "InviteProxy"
    }
    assert alarmed
    assert alarmed <= _emitted_metric_names()


@pytest.mark.sam
def test_the_cdn_caches_lookups_per_query_and_origin_and_passes_the_rest_through(
    translated: dict[str, Any], template: Template
) -> None:
    off = _deployed(translated, template)
    assert not [k for k, v in off.items() if v["Type"].startswith("AWS::CloudFront::")]
    assert template.doc["Outputs"]["CdnUrl"]["Condition"] == "UsesCdn"

    on = _deployed(translated, template, Cdn="enabled")
    config = on["InviteCdn"]["Properties"]["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["DomainName"] == {
        "Fn::Sub": "${InviteApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    icons, lookups, guilds, discord_face = config["CacheBehaviors"]
    # Icons first (CloudFront takes the first pattern that matches): named by their hash,
    # they are kept as long as they say (a year), not a lookup's freshness.
    assert icons["PathPattern"] == "/invites/*/icons/*"
    assert icons["CachePolicyId"] == "658327ea-f89d-4fab-a63d-7e88639e58f6"  # CachingOptimized
    assert icons["CachedMethods"] == ["GET", "HEAD"]
    assert lookups["PathPattern"] == "/invites/*"
    assert lookups["CachedMethods"] == ["GET", "HEAD"]  # never DELETE or OPTIONS
    assert {"DELETE", "OPTIONS"} <= set(lookups["AllowedMethods"])
    # A guild's card and badge, and the Discord-compatible face, are lookups too.
    assert (guilds["PathPattern"], discord_face["PathPattern"]) == ("/guilds/*", "/api/v10/*")
    for behaviour in (lookups, guilds, discord_face):
        assert behaviour["CachePolicyId"] == {"Ref": "CdnLookupCachePolicy"}
        assert behaviour["CachedMethods"] == ["GET", "HEAD"]
    # Everything else passes through uncached, with every viewer header but Host (API
    # Gateway needs its own): X-Audit-Log-Reason and the preflight's headers among them.
    caching_disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    all_viewer_but_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert config["DefaultCacheBehavior"]["CachePolicyId"] == caching_disabled
    for behaviour in (lookups, guilds, discord_face, config["DefaultCacheBehavior"]):
        assert behaviour["OriginRequestPolicyId"] == all_viewer_but_host
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    policy = on["CdnLookupCachePolicy"]["Properties"]["CachePolicyConfig"]
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"]["QueryStringBehavior"] == "all"
    assert set(key["HeadersConfig"]["Headers"]) == {"Origin", "Authorization"}
    assert key["CookiesConfig"]["CookieBehavior"] == "none"
    # The edge keeps a copy no longer than the proxy's freshness: the revocation bound.
    assert (policy["MinTTL"], policy["DefaultTTL"]) == (0, 0)
    assert policy["MaxTTL"] == {"Ref": "CacheFreshSeconds"}
    # CloudFront would keep an error 10 s whatever Cache-Control says: it keeps none.
    errors = {r["ErrorCode"]: r["ErrorCachingMinTTL"] for r in config["CustomErrorResponses"]}
    assert errors == dict.fromkeys((400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504), 0)


@pytest.mark.sam
def test_behind_the_cdn_a_lookup_names_its_viewer_with_proof_it_came_through_it(
    translated: dict[str, Any], template: Template
) -> None:
    off = _deployed(translated, template)
    assert "CdnOriginSecret" not in off
    api_env = off["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api_env["CDN_ORIGIN_SECRET_ID"] == ""  # no CDN: only the source address counts

    on = _deployed(translated, template, Cdn="enabled")
    config = on["InviteCdn"]["Properties"]["DistributionConfig"]
    [origin] = config["Origins"]
    [proof] = origin["OriginCustomHeaders"]
    assert proof == {
        "HeaderName": "X-Origin-Verify",
        "HeaderValue": {"Fn::Sub": "{{resolve:secretsmanager:${CdnOriginSecret}}}"},
    }
    # Every behaviour sends the secret, so every behaviour names its viewer.
    for behaviour in (*config["CacheBehaviors"], config["DefaultCacheBehavior"]):
        [association] = behaviour["FunctionAssociations"]
        assert association["EventType"] == "viewer-request"
    code = on["CdnViewerAddressFunction"]["Properties"]["FunctionCode"]
    assert "request.headers['x-viewer-address'] = {value: event.viewer.ip}" in code
    api = on["ApiFunction"]["Properties"]
    assert api["Environment"]["Variables"]["CDN_ORIGIN_SECRET_ID"] == {"Ref": "CdnOriginSecret"}
    role = json.dumps(on["ApiFunctionRole"]["Properties"]["Policies"])
    assert '{"Ref": "CdnOriginSecret"}' in role  # the function may read the proof
    assert "CdnOriginSecret" not in json.dumps(off["ApiFunctionRole"]["Properties"]["Policies"])
