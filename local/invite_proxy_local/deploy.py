"""python -m invite_proxy_local.deploy deploy|delete: the stack in your AWS account, by SAM.

`make deploy` builds for the template's architecture (arm64, whatever LAMBDA_ARCH your
shell has) and deploys: `sam deploy --guided` the first time, which asks for each
parameter and saves the answers in samconfig.toml (yours, kept out of git), and a
plain `sam deploy` with those answers after. `make delete` deletes the stack with
`sam delete`, then names the secrets the stack was given, which it never owned and
so leaves in place, with the command that deletes each.

Every `sam` command is printed before it runs. SAM_BIN names another sam (tests use
a stand-in); SAM_CONFIG another config file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from invite_proxy_local.template import REPO_ROOT

STACK_ARCH = "aarch64"  # template.yaml's Architectures: [arm64]
SECRET_PARAMETERS = ("DiscordTokenSecretArn", "AdminTokensSecretArn", "RevocationWebhookSecretArn")


def _sam(env: Mapping[str, str]) -> str:
    return env.get("SAM_BIN") or str(REPO_ROOT / ".tools" / "sam" / "bin" / "sam")


def _config(env: Mapping[str, str]) -> Path:
    return Path(env.get("SAM_CONFIG") or REPO_ROOT / "samconfig.toml")


def _run(command: Sequence[str], env: Mapping[str, str]) -> int:
    print("+ " + shlex.join(command), flush=True)
    # sam, with your own arguments after ours.
    return subprocess.run(command, cwd=REPO_ROOT, env=dict(env), check=False).returncode  # noqa: S603


def parameter_overrides(config: Mapping[str, Any]) -> dict[str, str]:
    """The parameters samconfig.toml saved: a string of Key="Value" pairs, or a list."""
    saved = config.get("default", {}).get("deploy", {}).get("parameters", {})
    overrides = saved.get("parameter_overrides", [])
    pairs = shlex.split(overrides) if isinstance(overrides, str) else list(overrides)
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def deploy(env: Mapping[str, str], build_dir: Path, extra: Sequence[str]) -> int:
    build = {**env, "LAMBDA_ARCH": STACK_ARCH}  # a stray x86_64 would ship a layer arm64 can't load
    status = _run([_sam(env), "build", "--build-dir", str(build_dir)], build)
    if status:
        return status
    command = [_sam(env), "deploy", "--template-file", str(build_dir / "template.yaml")]
    config = _config(env)
    if config.exists():
        print(f"Deploying with the answers in {config} (delete it to be asked again).")
        command += ["--config-file", str(config)]
    else:
        print(f"First deploy: sam asks for each parameter and saves the answers in {config}.")
        print(
            "The first, AllowedGuildIds, is the ids of the servers the proxy serves (guild"
            " mode); docs/deploy.md says how to find them."
        )
        command += ["--guided", "--config-file", str(config)]
    return _run([*command, *extra], env)


def delete(env: Mapping[str, str], extra: Sequence[str]) -> int:
    config = _config(env)
    command = [_sam(env), "delete"]
    if config.exists():
        command += ["--config-file", str(config)]
    status = _run([*command, *extra], env)
    if status:
        return status
    secrets = {}
    if config.exists():
        saved = parameter_overrides(tomllib.loads(config.read_text()))
        secrets = {name: saved[name] for name in SECRET_PARAMETERS if saved.get(name)}
    if not secrets:
        print("The stack is deleted. Secrets you made for it are not part of it: delete them")
        print("in Secrets Manager if you no longer need them.")
        return 0
    print("The stack is deleted. These secrets were yours, not the stack's, and remain:")
    for name, arn in secrets.items():
        print(f"  {name}: {arn}")
        print(f"    aws secretsmanager delete-secret --secret-id {shlex.quote(arn)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("deploy", "delete"))
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="more arguments for sam")
    args = parser.parse_args(argv)
    env = os.environ
    if args.action == "deploy":
        build_dir = Path(env.get("BUILD_DIR") or REPO_ROOT / ".aws-sam" / "build")
        return deploy(env, build_dir, args.extra)
    return delete(env, args.extra)


if __name__ == "__main__":
    sys.exit(main())
