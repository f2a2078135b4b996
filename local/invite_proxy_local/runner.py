"""Start the whole service locally: DynamoDB, Discord (or its emulator), and the API gateway."""

from __future__ import annotations

import errno
import json
import os
import secrets
import threading
import urllib.request
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.gateway import ExecutionEnvironment, Invocable, LocalGateway
from invite_proxy_local.instances import InstancePool
from invite_proxy_local.template import REPO_ROOT, Template

DEFAULT_PORT = 3000
DEFAULT_WEB_PORT = 3001
# Instances of each function at most, each a process: concurrency as Lambda's, on a laptop.
DEFAULT_MAX_INSTANCES = "4"
DEFAULT_TABLE = "invite-proxy-local"
# Typical front-end dev servers (Vite, webpack), plus the demo pages' own origin (WEB_PORT);
# set ALLOWED_ORIGINS for yours.
DEV_SERVER_ORIGINS = ("http://localhost:5173", "http://localhost:8080")
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
TABLE_RESOURCE = "InviteCacheTable"
# Deployed, secrets come from Secrets Manager; locally from variables (DISCORD_BOT_TOKEN,
# ADMIN_TOKENS, REVOCATION_WEBHOOK_URL), unless you set the secret ids yourself.
LOCAL_ONLY_UNSET = (
    "DISCORD_TOKEN_SECRET_ID",
    "ADMIN_TOKENS_SECRET_ID",
    "REVOCATION_WEBHOOK_SECRET_ID",
)
LOCAL_ADMIN_NAME = "local-admin"
RUN_DIR_VARIABLE = "LOCAL_RUN_DIR"
RUN_FILE = "local-run.json"
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 (a file name)


@dataclass
class LocalRun:
    url: str
    discord_url: str
    discord_source: str  # "emulator", "real", or "custom"
    table_name: str
    dynamodb_endpoint: str
    allowed_origins: list[str]
    gateway: LocalGateway
    admin_token: str | None  # the bearer token DELETE takes, when the run chose it
    web_url: str | None = None  # the demo and admin pages, on an origin of their own
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()
        self._stops.clear()


def function_environment(
    template: Template, table_name: str, environ: MutableMapping[str, str]
) -> dict[str, str]:
    """template.yaml's function variables, with !Ref resolved the local way.

    A variable already set in your shell wins, so any setting can be tried locally.
    """
    resolved: dict[str, str] = {}
    for function in template.functions().values():
        for name, value in function.environment.items():
            if name in LOCAL_ONLY_UNSET or name in environ:
                continue
            if isinstance(value, dict) and "Ref" in value:
                ref = value["Ref"]
                value = table_name if ref == TABLE_RESOURCE else template.parameter_default(ref)
            if value is not None and not isinstance(value, dict):
                resolved[name] = str(value)
    return resolved


def _admin_token(env: MutableMapping[str, str]) -> tuple[str | None, str]:
    """The token DELETE takes locally: LOCAL_ADMIN_TOKEN, or one made up now and printed."""
    if env.get("ADMIN_TOKENS_SECRET_ID"):
        return None, f"admin tokens from secret {env['ADMIN_TOKENS_SECRET_ID']}"
    if env.get("ADMIN_TOKENS"):
        return None, "admin token hashes from ADMIN_TOKENS"
    from invite_proxy.domain.admin_tokens import entry_for, new_token

    token = env.get("LOCAL_ADMIN_TOKEN")
    note = "DELETE takes Authorization: Bearer <LOCAL_ADMIN_TOKEN>"
    if not token:
        token = new_token()
        note = f"DELETE takes Authorization: Bearer {token}  (set LOCAL_ADMIN_TOKEN to choose)"
    env["ADMIN_TOKENS"] = json.dumps({"tokens": [entry_for(LOCAL_ADMIN_NAME, token)]})
    return token, note


def run_dir(env: Mapping[str, str]) -> Path:
    """Where a local run leaves word of itself: .run/ in the clone, or LOCAL_RUN_DIR."""
    return Path(env.get(RUN_DIR_VARIABLE) or REPO_ROOT / ".run")


def publish(run: LocalRun, env: Mapping[str, str]) -> Callable[[], None]:
    """Leave word of this run for `make invoke` (which then uses its DynamoDB and Discord)
    and for the README's examples (the admin token): readable by this user alone, and
    gone when the run stops. A real bot token is never written."""
    directory = run_dir(env)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = {
        "pid": os.getpid(),
        "url": run.url,
        "dynamodb_endpoint": run.dynamodb_endpoint,
        "table_name": run.table_name,
        "discord_source": run.discord_source,
        "discord_url": run.discord_url,
    }
    if run.discord_source == "emulator":  # the emulator's made-up token, not a secret
        state["discord_bot_token"] = env["DISCORD_BOT_TOKEN"]
    if env.get("ADMIN_TOKENS"):  # hashes only: an invocation's authorizer knows the same tokens
        state["admin_tokens"] = env["ADMIN_TOKENS"]
    files = {directory / RUN_FILE: json.dumps(state, indent=2) + "\n"}
    if run.admin_token:
        files[directory / ADMIN_TOKEN_FILE] = run.admin_token + "\n"
    for path, text in files.items():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # a file left from before keeps its mode otherwise
        with os.fdopen(descriptor, "w") as written:
            written.write(text)

    def withdraw() -> None:
        """Remove the files, unless another run in this folder has written its own since."""
        try:
            ours = json.loads((directory / RUN_FILE).read_text()).get("pid") == os.getpid()
        except (OSError, ValueError):
            ours = False
        if ours:
            for path in files:
                path.unlink(missing_ok=True)

    return withdraw


def running(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The local run that published itself, if it is still up and answering."""
    try:
        state: dict[str, Any] = json.loads((run_dir(env) / RUN_FILE).read_text())
        os.kill(int(state["pid"]), 0)
        with urllib.request.urlopen(f"{state['url']}/openapi.json", timeout=2) as answer:  # noqa: S310
            answer.read()
    except (OSError, ValueError, KeyError):
        return None
    return state


class PortInUse(SystemExit):
    """A port the local run needs is taken: say which, and which variable moves it."""

    def __init__(self, port: int, variable: str) -> None:
        super().__init__(
            f"Port {port} is already in use (another `make run`?). "
            f"Stop that process, or choose another port: {variable}=<port> make run"
        )


def _listen(
    server: Callable[[], ThreadingHTTPServer], port: int, variable: str
) -> ThreadingHTTPServer:
    try:
        return server()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(port, variable) from None
        raise


class _WebFiles(SimpleHTTPRequestHandler):
    """web/ as a static site, as a CDN or any web server would serve it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the API's JSON logs are the local run's output."""


def _serve(httpd: ThreadingHTTPServer, name: str) -> Callable[[], None]:
    threading.Thread(target=httpd.serve_forever, args=(0.05,), name=name, daemon=True).start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return stop


@dataclass
class Backends:
    """What the functions talk to locally: a DynamoDB table, a Discord, the admin tokens."""

    dynamodb_endpoint: str
    dynamodb_note: str
    table_name: str
    created: bool  # the table was made now
    discord_source: str  # "emulator", "real", or "custom"
    discord_url: str
    admin_token: str | None
    admin_note: str
    stops: list[Callable[[], None]]
    guilds: str = ""  # ALLOWED_GUILD_IDS: guild mode when set

    def describe(self, api_url: str | None = None) -> list[str]:
        """What a local run or invocation announces about where its calls go."""
        created = " (created)" if self.created else ""
        lines = [f"  DynamoDB: {self.dynamodb_note}, table {self.table_name!r}{created}"]
        if self.discord_source == "emulator":
            lines.append(
                f"  Discord:  BUILT-IN EMULATOR at {self.discord_url} (no real Discord is called)"
            )
            if api_url is not None:
                from discord_emulator.seeds import SAMPLE_INVITES

                lines.append("            set DISCORD_BOT_TOKEN for the real API. Sample invites:")
                lines += [
                    f"              {api_url}/invites/{code}    {what}"
                    for code, what in SAMPLE_INVITES.items()
                ]
        elif self.discord_source == "real":
            lines.append(
                f"  Discord:  the real API at {self.discord_url} (token from DISCORD_BOT_TOKEN)"
            )
        else:
            lines.append(f"  Discord:  {self.discord_url} (DISCORD_API_BASE_URL)")
        if self.guilds:
            lines.append(
                f"  Mode:     guild mode, guilds {self.guilds} (ALLOWED_GUILD_IDS; "
                "set it empty for open mode)"
            )
        else:
            lines.append("  Mode:     open mode, any invite (ALLOWED_GUILD_IDS names guilds)")
        return lines


def backends(env: MutableMapping[str, str], template: Template) -> Backends:
    """DynamoDB and Discord as the variables say, or embedded ones (moto, the emulator)."""
    stops: list[Callable[[], None]] = []
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB")
    if not endpoint:
        # Dummy credentials keep boto3 from looking for real ones; moto ignores them.
        env.setdefault("AWS_ACCESS_KEY_ID", "local")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        server, endpoint = start_moto_server()
        env["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
        stops.append(server.stop)
        dynamodb_note = f"embedded moto server at {endpoint}"
    else:
        dynamodb_note = f"{endpoint} (AWS_ENDPOINT_URL_DYNAMODB)"
    table_name = env.setdefault("CACHE_TABLE_NAME", DEFAULT_TABLE)
    try:
        created = ensure_table(template, table_name, endpoint)
        if env.get("DISCORD_API_BASE_URL"):
            discord_source, discord_url = "custom", env["DISCORD_API_BASE_URL"]
        elif env.get("DISCORD_BOT_TOKEN"):
            discord_source, discord_url = "real", "https://discord.com/api/v10"
        else:
            from discord_emulator import DiscordEmulator
            from discord_emulator.seeds import SAMPLE_GUILD_IDS, seed_samples

            emulator = DiscordEmulator().start()
            seed_samples(emulator.state)
            stops.append(emulator.stop)
            discord_source, discord_url = "emulator", emulator.base_url
            env["DISCORD_API_BASE_URL"] = discord_url
            env["DISCORD_CDN_URL"] = emulator.cdn_url
            # Guild mode over the sample guilds, so the demo page's card by guild has its
            # lasting invite; ALLOWED_GUILD_IDS= (empty) runs open mode instead.
            env.setdefault("ALLOWED_GUILD_IDS", ",".join(SAMPLE_GUILD_IDS))
            env["DISCORD_BOT_TOKEN"] = "local-emulator-" + secrets.token_hex(8)
        admin_token, admin_note = _admin_token(env)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Backends(
        dynamodb_endpoint=endpoint,
        dynamodb_note=dynamodb_note,
        table_name=table_name,
        created=created,
        discord_source=discord_source,
        discord_url=discord_url,
        admin_token=admin_token,
        admin_note=admin_note,
        stops=stops,
        guilds=env.get("ALLOWED_GUILD_IDS", ""),
    )


def instances(template: Template, max_instances: int) -> dict[str, Invocable]:
    """Each function's instances: a pool of processes, or with 0 one instance in this
    process (what tests that look inside the handler use)."""
    functions = template.functions()
    if max_instances <= 0:
        return {name: ExecutionEnvironment(function) for name, function in functions.items()}
    return {
        name: InstancePool(template, function, max_instances)
        for name, function in functions.items()
    }


def start(
    environ: MutableMapping[str, str] | None = None,
    *,
    port: int | None = None,
    web_port: int | None = None,
    announce: Callable[[str], Any] = print,
    template: Template | None = None,
) -> LocalRun:
    env = os.environ if environ is None else environ
    template = template or Template()
    ends = backends(env, template)
    stops = ends.stops
    table_name, endpoint = ends.table_name, ends.dynamodb_endpoint
    admin_token = ends.admin_token
    env.update(function_environment(template, table_name, env))
    if web_port is None:  # 0: no pages
        web_port = int(env.get("WEB_PORT", DEFAULT_WEB_PORT))
    web_origins = (
        (f"http://127.0.0.1:{web_port}", f"http://localhost:{web_port}") if web_port else ()
    )
    default_origins = ",".join((*DEV_SERVER_ORIGINS, *web_origins))
    origins = [
        o.strip() for o in env.get("ALLOWED_ORIGINS", default_origins).split(",") if o.strip()
    ]
    max_instances = int(env.get("LOCAL_MAX_INSTANCES", DEFAULT_MAX_INSTANCES))
    environments = instances(template, max_instances)
    for pool in environments.values():
        if isinstance(pool, InstancePool):
            stops.append(pool.close)
    gateway = LocalGateway(template, allowed_origins=origins, environments=environments)
    listen_port = int(env.get("PORT", DEFAULT_PORT)) if port is None else port
    try:
        httpd = _listen(lambda: gateway.server("127.0.0.1", listen_port), listen_port, "PORT")
        stops.append(_serve(httpd, "local-gateway"))
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        web_url = None
        if web_port:
            web = _listen(
                lambda: ThreadingHTTPServer(("127.0.0.1", web_port), _WebFiles),
                web_port,
                "WEB_PORT",
            )
            web.daemon_threads = True
            stops.append(_serve(web, "local-web"))
            web_url = f"http://127.0.0.1:{web.server_address[1]}"
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    run = LocalRun(
        url=url,
        discord_url=ends.discord_url,
        discord_source=ends.discord_source,
        table_name=table_name,
        dynamodb_endpoint=endpoint,
        allowed_origins=origins,
        gateway=gateway,
        admin_token=admin_token,
        web_url=web_url,
        _stops=stops,
    )
    announce(f"Invite proxy listening on {url}")
    for line in ends.describe(url):
        announce(line)
    announce(f"  Admin:    {ends.admin_note}")
    if web_url is not None:
        query = "" if listen_port == DEFAULT_PORT else f"?api={url}"
        announce(f"  Web:      {web_url}/{query}  invite cards  (WEB_PORT; 0 turns the pages off)")
        announce(f"            {web_url}/admin.html  revoke an invite (API URL: {url})")
    announce(f"  Docs:     {url}/docs  (the OpenAPI document: {url}/openapi.json)")
    if max_instances:
        announce(
            f"  Lambda:   up to {max_instances} instances of each function, each a process "
            "of its own, started cold as needed (LOCAL_MAX_INSTANCES)"
        )
    else:
        announce(
            "  Lambda:   one instance of each function, in this process (LOCAL_MAX_INSTANCES=0)"
        )
    announce(f"  CORS:     allowed origins {', '.join(origins) or '(none)'} (ALLOWED_ORIGINS)")
    return run
