"""python -m invite_proxy_local.invoke FUNCTION EVENT.json: one invocation, no Docker needed.

The local stand-in for `sam local invoke`. When a local run (`make run`) is up, the
invocation uses its DynamoDB table and its Discord (the emulator it seeded, or the
one it was pointed at), so a rule run sees what the local API has done. Otherwise
it starts its own embedded DynamoDB and seeded emulator, which stop when it ends.
Either way it says which. The function is loaded from its CodeUri and the event file
given to its handler; the result is printed as JSON on stdout, and logs go to stdout
too, as on Lambda.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.runner import RUN_FILE, backends, function_environment, run_dir, running
from invite_proxy_local.template import Template


def _use(env: MutableMapping[str, str], run: dict[str, Any]) -> str | None:
    """Point this invocation at the running local run's table, Discord and admin tokens;
    what stops it, if anything does."""
    env.setdefault("AWS_ENDPOINT_URL_DYNAMODB", run["dynamodb_endpoint"])
    env.setdefault("CACHE_TABLE_NAME", run["table_name"])
    if "admin_tokens" in run:
        env.setdefault("ADMIN_TOKENS", run["admin_tokens"])
    if run["discord_source"] == "real":
        if not env.get("DISCORD_BOT_TOKEN"):
            return "the running local run calls the real Discord: set DISCORD_BOT_TOKEN too"
        return None
    if "DISCORD_API_BASE_URL" not in env:  # the run's emulator, with its own made-up token
        env["DISCORD_API_BASE_URL"] = run["discord_url"]
        if "discord_bot_token" in run:
            env["DISCORD_BOT_TOKEN"] = run["discord_bot_token"]
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", help="a function's logical id, e.g. RevokerFunction")
    parser.add_argument(
        "event", type=Path, help="the event file, e.g. events/revoke_rule_sweep.json"
    )
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    template = Template()
    function = template.functions().get(args.function)
    if function is None:
        known = ", ".join(sorted(template.functions()))
        print(f"no function {args.function!r} in template.yaml ({known})", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    env = os.environ
    run = running(env)
    if run is not None:
        problem = _use(env, run)
        if problem is not None:
            say(problem)
            return 2
        where = f"pid {run['pid']}, {run['url']}"
        say(f"Invoking {args.function} against the running local run ({where}), its own:")
    else:
        found = run_dir(env) / RUN_FILE
        say(
            f"Invoking {args.function} with its own embedded DynamoDB and Discord emulator, "
            f"which stop when it ends: no local run is up ({found} names none that answers)."
        )
    ends = backends(env, template)
    try:
        for line in ends.describe():
            say(line)
        env.update(function_environment(template, ends.table_name, env))
        environment = ExecutionEnvironment(function)
        try:
            result = environment.invoke(event)
        except Exception as exc:
            print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}))
            return 1
        print(json.dumps(result))
        return 0
    finally:
        for stop in reversed(ends.stops):
            stop()


if __name__ == "__main__":
    sys.exit(main())
