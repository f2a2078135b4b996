"""A local stand-in for API Gateway (HTTP API, payload format 2.0).

Each HTTP request is matched against template.yaml's routes, turned into the
event API Gateway would send, and given to the real handler, loaded from the
function's CodeUri as Lambda loads it. CORS is answered here, from the HttpApi's
x-amazon-apigateway-cors, because that is where API Gateway answers it. Routes
with an authorizer run it first, as API Gateway does: a missing identity header
is a 401 and a "no" from the authorizer a 403, and neither reaches the handler.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from invite_proxy_local import iam
from invite_proxy_local.template import Authorizer, Cors, Function, Route, Template

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


class Invocable(Protocol):
    """A function as the gateway invokes it: one instance (ExecutionEnvironment), or a
    pool of them (instances.InstancePool)."""

    def invoke(self, event: dict[str, Any], context: Any = None) -> Any: ...


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float  # whole seconds on Lambda; a test may want a fraction
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class ExecutionEnvironment:
    """One Lambda execution environment: the handler module, loaded once, one request at a time."""

    def __init__(self, function: Function) -> None:
        self.function = function
        self._lock = threading.Lock()
        iam.install()
        with iam.acting_as(function.logical_id, function.table_actions):
            self.module = self._load()
        self.handler: Callable[[dict[str, Any], Any], Any] = getattr(self.module, function.handler)

    def _load(self) -> ModuleType:
        path = self.function.code_dir / f"{self.function.module}.py"
        name = f"_lambda_{self.function.logical_id}_{uuid.uuid4().hex[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load handler module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        code_dir = str(self.function.code_dir)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)  # the function's own folder, as in Lambda's /var/task
        spec.loader.exec_module(module)
        return module

    def invoke(self, event: dict[str, Any], context: Any = None) -> Any:
        """Run the handler once; ``context`` defaults to a fresh one with the full timeout."""
        if context is None:
            context = LambdaContext(
                function_name=self.function.logical_id,
                memory_limit_in_mb=self.function.memory,
                timeout_seconds=self.function.timeout,
            )
        with self._lock, iam.acting_as(self.function.logical_id, self.function.table_actions):
            return self.handler(event, context)


def _route_regex(path: str) -> re.Pattern[str]:
    pattern = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            pattern += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            pattern += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            pattern += re.escape(part)
    return re.compile(f"^{pattern}$")


# API Gateway's HTTP API quotas: what it refuses itself, before any function runs.
MAX_REQUEST_LINE_AND_HEADERS = 10_240  # bytes
MAX_PAYLOAD = 10 * 1024 * 1024  # bytes


def _over_quota(request_line: str, headers: Any) -> HttpResponse | None:
    """API Gateway's own answer to a request over its quotas, or None."""
    size = len(request_line) + sum(len(k) + len(v) for k, v in headers.items())
    if size > MAX_REQUEST_LINE_AND_HEADERS:
        return _json_response(431, {"message": "Request Header Fields Too Large"})
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        return _json_response(400, {"message": "Bad Request"})
    if length > MAX_PAYLOAD:
        return _json_response(413, {"message": "Request Entity Too Large"})
    return None


def _json_response(status: int, body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")], json.dumps(body).encode())


class LocalGateway:
    def __init__(
        self,
        template: Template,
        *,
        allowed_origins: Iterable[str],
        environments: Mapping[str, Invocable],
    ) -> None:
        self.cors: Cors | None = template.http_api_cors()
        self.allowed_origins = frozenset(o.strip() for o in allowed_origins if o.strip())
        self.environments = environments
        self.routes: list[tuple[Route, re.Pattern[str]]] = [
            (route, _route_regex(route.path)) for route in template.routes()
        ]
        self.authorizers = template.authorizers()
        self._authorized: dict[tuple[str, tuple[str, ...]], tuple[float, dict[str, Any]]] = {}
        self._authorized_lock = threading.Lock()

    # -- CORS, as API Gateway applies it -------------------------------------
    def _origin_allowed(self, origin: str | None) -> bool:
        return bool(origin) and ("*" in self.allowed_origins or origin in self.allowed_origins)

    def _allow_origin_value(self, origin: str) -> str:
        return "*" if "*" in self.allowed_origins else origin

    def _preflight(self, headers: dict[str, str]) -> HttpResponse:
        assert self.cors is not None
        origin = headers.get("origin")
        requested = headers.get("access-control-request-method", "").upper()
        out: list[tuple[str, str]] = []
        if self._origin_allowed(origin) and requested in self.cors.allow_methods:
            assert origin is not None
            out.append(("access-control-allow-origin", self._allow_origin_value(origin)))
            out.append(("access-control-allow-methods", ",".join(self.cors.allow_methods)))
            if self.cors.allow_headers:
                out.append(("access-control-allow-headers", ",".join(self.cors.allow_headers)))
            if self.cors.max_age is not None:
                out.append(("access-control-max-age", str(self.cors.max_age)))
            if self.cors.allow_credentials:
                out.append(("access-control-allow-credentials", "true"))
        return HttpResponse(204, out)

    def _apply_cors(self, response: HttpResponse, origin: str | None) -> HttpResponse:
        if self.cors is None:
            return response
        # API Gateway ignores CORS headers from the integration when it owns CORS.
        kept = [(k, v) for k, v in response.headers if not k.lower().startswith("access-control-")]
        if self._origin_allowed(origin):
            assert origin is not None
            kept.append(("access-control-allow-origin", self._allow_origin_value(origin)))
            if self.cors.expose_headers:
                kept.append(("access-control-expose-headers", ",".join(self.cors.expose_headers)))
            if self.cors.allow_credentials:
                kept.append(("access-control-allow-credentials", "true"))
        response.headers = kept
        return response

    # -- requests ----------------------------------------------------------------
    def handle(
        self,
        method: str,
        target: str,
        header_pairs: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        headers: dict[str, str] = {}
        for name, value in header_pairs:
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        origin = headers.get("origin")
        if (
            method == "OPTIONS"
            and self.cors is not None
            and "origin" in headers
            and "access-control-request-method" in headers
        ):
            return self._preflight(headers)
        response = self._route(method, target, headers, body, source_ip)
        return self._apply_cors(response, origin)

    def _route(
        self, method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
    ) -> HttpResponse:
        parts = urlsplit(target)
        for route, regex in self.routes:
            match = regex.match(parts.path)
            if route.method in (method, "ANY") and match is not None:
                path_params = {k: unquote(v) for k, v in match.groupdict().items()}
                event = self.event(
                    route, method, parts.path, parts.query, headers, body, path_params, source_ip
                )
                if route.authorizer is not None:
                    denied = self._authorize(self.authorizers[route.authorizer], event)
                    if denied is not None:
                        return denied
                return self._invoke(route.function, event)
        return _json_response(404, {"message": "Not Found"})

    @staticmethod
    def event(
        route: Route,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        body: bytes,
        path_params: dict[str, str],
        source_ip: str = "127.0.0.1",
    ) -> dict[str, Any]:
        """The payload format 2.0 event API Gateway builds for this request."""
        now = datetime.now(UTC)
        query: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            query[key] = f"{query[key]},{value}" if key in query else value
        event_headers = {k: v for k, v in headers.items() if k != "cookie"}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": event_headers,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "domainName": headers.get("host", "127.0.0.1"),
                "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
                "http": {
                    "method": method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex[:16] + "=",
                "routeKey": route.route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if "cookie" in headers:
            event["cookies"] = [c.strip() for c in headers["cookie"].split(";")]
        if query:
            event["queryStringParameters"] = query
        if path_params:
            event["pathParameters"] = path_params
        if body:
            event["body"] = body.decode("utf-8", errors="replace")
        return event

    @staticmethod
    def authorizer_event(event: dict[str, Any], identity: list[str]) -> dict[str, Any]:
        """The payload 2.0 REQUEST event an HttpApi Lambda authorizer receives."""
        context = event["requestContext"]
        method, path = context["http"]["method"], event["rawPath"]
        request = {k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")}
        request.update(
            type="REQUEST",
            routeArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{context['apiId']}/"
            f"{context['stage']}/{method}{path}",
            identitySource=identity,
        )
        return request

    def _authorize(self, authorizer: Authorizer, event: dict[str, Any]) -> HttpResponse | None:
        """Run the route's authorizer; None means go on (with its context on the event)."""
        if authorizer.payload_version != "2.0" or not authorizer.simple_responses:
            raise NotImplementedError(
                "the local gateway runs payload 2.0 simple-response authorizers"
            )
        identity = [event["headers"].get(h, "") for h in authorizer.identity_headers]
        if not all(identity):
            return _json_response(401, {"message": "Unauthorized"})
        key = (authorizer.name, tuple(identity))
        with self._authorized_lock:
            cached = self._authorized.get(key)
        if cached is not None and cached[0] > time.monotonic():
            context = cached[1]
        else:
            result, crashed = self._call(
                authorizer.function, self.authorizer_event(event, identity)
            )
            if crashed is not None:
                return crashed
            if not isinstance(result, dict) or result.get("isAuthorized") is not True:
                return _json_response(403, {"message": "Forbidden"})
            context = dict(result.get("context") or {})
            if authorizer.ttl_seconds > 0:
                with self._authorized_lock:
                    self._authorized[key] = (time.monotonic() + authorizer.ttl_seconds, context)
        event["requestContext"]["authorizer"] = {"lambda": context}
        return None

    def _invoke(self, function: str, event: dict[str, Any]) -> HttpResponse:
        result, crashed = self._call(function, event)
        return crashed if crashed is not None else self._from_lambda(result)

    def _call(self, function: str, event: dict[str, Any]) -> tuple[Any, HttpResponse | None]:
        """Invoke a function; a crash is API Gateway's 500, with the trace on stderr."""
        try:
            return self.environments[function].invoke(event), None
        except Exception:
            traceback.print_exc()
            return None, _json_response(500, {"message": "Internal Server Error"})

    @staticmethod
    def _from_lambda(result: Any) -> HttpResponse:
        if not isinstance(result, dict) or "statusCode" not in result:
            # Payload 2.0 treats anything else as a JSON body with status 200.
            return _json_response(200, result)
        headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((name, str(v)) for v in values)
        headers.extend(("set-cookie", c) for c in result.get("cookies") or [])
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return HttpResponse(int(result["statusCode"]), headers, body)

    # -- serving -----------------------------------------------------------------
    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave as separate writes: with Nagle's algorithm on, the
            # body waits for the client's delayed ACK of the headers, 40 ms a request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """The handler's own JSON logs are the request log."""

            def send_error(
                self, code: int, message: str | None = None, explain: str | None = None
            ) -> None:
                """http.server's own refusals (a request line or header too long), as API
                Gateway words its own: JSON, never an HTML page."""
                self._answer(_json_response(code, {"message": message or HTTPStatus(code).phrase}))
                self.close_connection = True

            def _serve(self) -> None:
                refusal = _over_quota(self.requestline, self.headers)
                if refusal is not None:
                    self._answer(refusal)
                    self.close_connection = True
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                response = gateway.handle(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                self._answer(response)

            def _answer(self, response: HttpResponse) -> None:
                self.send_response(response.status)
                for name, value in response.headers:
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the routes, TRACE and made-up ones too: API Gateway
                # answers a method no route has with its 404, never http.server's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        httpd = ThreadingHTTPServer((host, port), Handler)
        httpd.daemon_threads = True
        return httpd
