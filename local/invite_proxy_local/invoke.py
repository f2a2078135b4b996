"""python -m invite_proxy_local.invoke FUNCTION EVENT.json: one invocation, no Docker needed.

The local stand-in for `sam local invoke`: the same environment as the local run
(embedded moto, the seeded Discord emulator, or whatever the variables point at),
the function loaded from its CodeUri, and the event file given to its handler.
The result is printed as JSON on stdout; logs go to stdout too, as on Lambda.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from invite_proxy_local.runner import start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", help="a function's logical id, e.g. RevokerFunction")
    parser.add_argument(
        "event", type=Path, help="the event file, e.g. events/revoke_rule_sweep.json"
    )
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text())
    run = start(port=0, announce=lambda line: print(line, file=sys.stderr, flush=True))
    try:
        environment = run.gateway.environments.get(args.function)
        if environment is None:
            known = ", ".join(sorted(run.gateway.environments))
            print(f"no function {args.function!r} in template.yaml ({known})", file=sys.stderr)
            return 2
        try:
            result = environment.invoke(event)
        except Exception as exc:
            print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}))
            return 1
        print(json.dumps(result))
        return 0
    finally:
        run.stop()


if __name__ == "__main__":
    sys.exit(main())
