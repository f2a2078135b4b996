"""Read template.yaml: the table, the HTTP API's CORS and authorizers, each function's routes.

The local run and the tests take these from the template itself, so they cannot
drift from what `sam deploy` creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short tags (!Ref, !Sub, ...) as their long form."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway's form: /invites/{code}
    function: str  # logical id
    authorizer: str | None = None

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Authorizer:
    """An HttpApi Lambda authorizer (REQUEST type, as SAM's HttpApi Auth.Authorizers declares)."""

    name: str
    function: str  # logical id
    identity_headers: tuple[str, ...]  # lower-case
    payload_version: str
    simple_responses: bool
    ttl_seconds: int


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    module: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, Any] = field(default_factory=dict)
    table_actions: frozenset[str] = frozenset()  # what its policies allow on the cache table


@dataclass(frozen=True)
class Cors:
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int | None
    allow_credentials: bool


class Template:
    def __init__(self, path: Path = TEMPLATE_PATH) -> None:
        self.path = path
        self.doc: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506
        self.resources: dict[str, Any] = self.doc["Resources"]

    def _of_type(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_name}

    def parameter_default(self, name: str) -> Any:
        return self.doc.get("Parameters", {}).get(name, {}).get("Default")

    def table(self, logical_id: str = "InviteCacheTable") -> dict[str, Any]:
        return dict(self.resources[logical_id]["Properties"])

    def create_table_kwargs(
        self, table_name: str, logical_id: str = "InviteCacheTable"
    ) -> dict[str, Any]:
        props = self.table(logical_id)
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        return kwargs

    def ttl_attribute(self, logical_id: str = "InviteCacheTable") -> str | None:
        spec = self.table(logical_id).get("TimeToLiveSpecification") or {}
        return spec.get("AttributeName") if spec.get("Enabled") else None

    def http_api_cors(self) -> Cors | None:
        """The HttpApi's CORS, from its OpenAPI extension x-amazon-apigateway-cors."""
        for api in self._of_type("AWS::Serverless::HttpApi").values():
            body = api.get("Properties", {}).get("DefinitionBody") or {}
            cors = body.get("x-amazon-apigateway-cors")
            if cors:
                return Cors(
                    allow_methods=tuple(m.upper() for m in cors.get("allowMethods", [])),
                    allow_headers=tuple(h.lower() for h in cors.get("allowHeaders", [])),
                    expose_headers=tuple(h.lower() for h in cors.get("exposeHeaders", [])),
                    max_age=cors.get("maxAge"),
                    allow_credentials=bool(cors.get("allowCredentials", False)),
                )
        return None

    def authorizers(self) -> dict[str, Authorizer]:
        result = {}
        for api in self._of_type("AWS::Serverless::HttpApi").values():
            declared = api.get("Properties", {}).get("Auth", {}).get("Authorizers", {})
            for name, spec in declared.items():
                arn = spec["FunctionArn"]
                if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
                    raise ValueError(f"authorizer {name}: FunctionArn must be !GetAtt <Fn>.Arn")
                identity = spec.get("Identity", {})
                result[name] = Authorizer(
                    name=name,
                    function=arn["Fn::GetAtt"][0],
                    identity_headers=tuple(h.lower() for h in identity.get("Headers", [])),
                    payload_version=str(spec.get("AuthorizerPayloadFormatVersion", "2.0")),
                    simple_responses=bool(spec.get("EnableSimpleResponses", False)),
                    ttl_seconds=int(identity.get("ReauthorizeEvery", 300)),
                )
        return result

    def functions(self) -> dict[str, Function]:
        globals_ = self.doc.get("Globals", {}).get("Function", {})
        global_env = globals_.get("Environment", {}).get("Variables", {})
        result = {}
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            props = resource["Properties"]
            module, handler = props["Handler"].rsplit(".", 1)
            env = dict(global_env)
            env.update(props.get("Environment", {}).get("Variables", {}))
            result[logical_id] = Function(
                logical_id=logical_id,
                code_dir=self.path.parent / props["CodeUri"],
                module=module,
                handler=handler,
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=env,
                table_actions=_table_actions(props.get("Policies", [])),
            )
        return result

    def routes(self) -> list[Route]:
        routes = []
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            for event in resource["Properties"].get("Events", {}).values():
                if event["Type"] != "HttpApi":
                    continue
                props = event["Properties"]
                auth = props.get("Auth", {}).get("Authorizer")
                routes.append(
                    Route(props["Method"].upper(), props["Path"], logical_id, authorizer=auth)
                )
        return routes


def _table_actions(policies: list[Any]) -> frozenset[str]:
    """The DynamoDB actions a function's inline statements allow on the cache table."""
    actions: set[str] = set()
    for policy in policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Effect") != "Allow":
                continue
            if statement.get("Resource") != {"Fn::GetAtt": ["InviteCacheTable", "Arn"]}:
                continue
            listed = statement.get("Action", [])
            actions.update([listed] if isinstance(listed, str) else listed)
    return frozenset(actions)
