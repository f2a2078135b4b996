"""python -m invite_proxy_local.smoke API_URL CODE [ORIGIN]: check a deployed API as a browser.

`make smoke API_URL=https://….execute-api….amazonaws.com CODE=<invite> ORIGIN=<your site>`
calls the API the way a page on ORIGIN does, and prints one line per check:

- a GET of the invite from ORIGIN: 200, the invite, CORS allowing ORIGIN, an ETag;
- the browser's preflight for a DELETE with a token, from ORIGIN;
- the same GET again with If-None-Match: 304, nothing sent twice;
- a DELETE with no token: 401, so nobody revokes without one.

It exits 1 if any check fails. It revokes nothing: the only DELETE carries no token.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import requests

TIMEOUT = 15.0


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def _checks(api_url: str, code: str, origin: str) -> list[Callable[[dict[str, str]], Check]]:
    url = f"{api_url.rstrip('/')}/invites/{code}"
    browser = {"Origin": origin, "Accept": "application/json"}

    def lookup(seen: dict[str, str]) -> Check:
        answer = requests.get(url, headers=browser, timeout=TIMEOUT)
        allowed = answer.headers.get("Access-Control-Allow-Origin")
        seen["etag"] = answer.headers.get("ETag", "")
        problems = []
        if answer.status_code != 200:
            problems.append(f"status {answer.status_code}: {answer.text[:200]}")
        elif answer.json().get("code") != code:
            problems.append("the body is not this invite")
        if allowed != origin:
            problems.append(f"Access-Control-Allow-Origin is {allowed!r}, not {origin!r}")
        if not seen["etag"]:
            problems.append("no ETag")
        cache = answer.headers.get("X-Cache", "?")
        detail = "; ".join(problems) or f"200, the invite, CORS allows the origin, X-Cache {cache}"
        return Check(f"GET /invites/{code} from {origin}", not problems, detail)

    def preflight(_: dict[str, str]) -> Check:
        answer = requests.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization,x-audit-log-reason",
            },
            timeout=TIMEOUT,
        )
        methods = answer.headers.get("Access-Control-Allow-Methods", "").upper()
        headers = answer.headers.get("Access-Control-Allow-Headers", "").lower()
        problems = []
        if answer.status_code not in (200, 204):
            problems.append(f"status {answer.status_code}")
        if answer.headers.get("Access-Control-Allow-Origin") != origin:
            problems.append("the origin is not allowed")
        if "DELETE" not in methods:
            problems.append(f"DELETE is not among the allowed methods ({methods or 'none'})")
        if "authorization" not in headers:
            problems.append("Authorization is not an allowed header")
        detail = "; ".join(problems) or f"{answer.status_code}, DELETE with Authorization allowed"
        return Check("the preflight of a DELETE", not problems, detail)

    def revalidate(seen: dict[str, str]) -> Check:
        if not seen.get("etag"):
            return Check("GET with If-None-Match", False, "no ETag from the first GET")
        answer = requests.get(
            url, headers={**browser, "If-None-Match": seen["etag"]}, timeout=TIMEOUT
        )
        passed = answer.status_code == 304 and not answer.content
        detail = "304, nothing sent again" if passed else f"status {answer.status_code}"
        return Check("GET with If-None-Match", passed, detail)

    def unauthorised(_: dict[str, str]) -> Check:
        answer = requests.delete(url, headers={"Origin": origin}, timeout=TIMEOUT)
        passed = answer.status_code == 401
        detail = "401: no token, no revocation" if passed else f"status {answer.status_code}"
        return Check("DELETE with no token", passed, detail)

    return [lookup, preflight, revalidate, unauthorised]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("api_url", help="the stack's ApiUrl output, or make run's address")
    parser.add_argument("code", help="an invite code of your server's")
    parser.add_argument(
        "origin", nargs="?", default="http://localhost:5173", help="an origin AllowedOrigins has"
    )
    args = parser.parse_args(argv)
    seen: dict[str, str] = {}
    failed = 0
    for check in _checks(args.api_url, args.code, args.origin):
        try:
            result = check(seen)
        except requests.RequestException as exc:
            result = Check(check.__name__, False, f"no answer: {exc}")
        print(result.line(), flush=True)
        failed += not result.passed
    print(f"{4 - failed} of 4 checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
