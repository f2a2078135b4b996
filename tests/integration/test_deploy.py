"""make deploy and make delete, with a stand-in for sam: what runs, in what order, and what
an operator is told. The deploy itself needs AWS; SAM's own tests cover sam."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.local_processes import REPO, clean_env

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:discord-invite-proxy/{}-AbCdEf"


@pytest.fixture
def sam(tmp_path: Path) -> Path:
    """A sam that records each call (its arguments and LAMBDA_ARCH) and exits as told."""
    calls = tmp_path / "calls.jsonl"
    script = tmp_path / "sam"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(calls)!r}, 'a') as out:\n"
        "    out.write(json.dumps({'argv': sys.argv[1:], 'arch': os.environ.get('LAMBDA_ARCH')})"
        " + '\\n')\n"
        "sys.exit(int(os.environ.get('SAM_EXIT_' + sys.argv[1].upper(), '0')))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def run(action: str, sam: Path, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invite_proxy_local.deploy", action],
        cwd=REPO,
        env=clean_env(SAM_BIN=str(sam), SAM_CONFIG=str(config), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(sam: Path) -> list[dict[str, Any]]:
    log = sam.parent / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_the_first_deploy_builds_for_arm64_and_asks_for_the_parameters(
    sam: Path, tmp_path: Path
) -> None:
    config = tmp_path / "samconfig.toml"
    result = run("deploy", sam, config, LAMBDA_ARCH="x86_64")  # a stray setting in the shell
    assert result.returncode == 0, result.stderr
    build, deploy = calls(sam)
    assert build["argv"][0] == "build"
    assert build["arch"] == "aarch64"  # the template's architecture, whatever the shell says
    assert deploy["argv"][:1] == ["deploy"]
    assert "--guided" in deploy["argv"]
    assert deploy["argv"][deploy["argv"].index("--config-file") + 1] == str(config)
    assert "First deploy" in result.stdout
    assert "+ " in result.stdout  # every sam command is shown before it runs


def test_later_deploys_reuse_the_saved_answers(sam: Path, tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text('version = 0.1\n[default.deploy.parameters]\nstack_name = "dip"\n')
    result = run("deploy", sam, config)
    assert result.returncode == 0, result.stderr
    _, deploy = calls(sam)
    assert "--guided" not in deploy["argv"]
    assert deploy["argv"][deploy["argv"].index("--config-file") + 1] == str(config)


def test_a_failed_build_deploys_nothing(sam: Path, tmp_path: Path) -> None:
    result = run("deploy", sam, tmp_path / "samconfig.toml", SAM_EXIT_BUILD="1")
    assert result.returncode == 1
    assert [c["argv"][0] for c in calls(sam)] == ["build"]


def test_delete_names_the_secrets_it_leaves_and_how_to_delete_them(
    sam: Path, tmp_path: Path
) -> None:
    config = tmp_path / "samconfig.toml"
    overrides = " ".join(
        (
            'AllowedOrigins="https://community.example.org"',
            f'DiscordTokenSecretArn="{ARN.format("bot-token")}"',
            f'AdminTokensSecretArn="{ARN.format("admin-tokens")}"',
            'RevocationWebhookSecretArn=""',
        )
    )
    config.write_text(
        "version = 0.1\n[default.deploy.parameters]\n"
        f'stack_name = "dip"\nparameter_overrides = {json.dumps(overrides)}\n'
    )
    result = run("delete", sam, config)
    assert result.returncode == 0, result.stderr
    [delete] = calls(sam)
    assert delete["argv"][:3] == ["delete", "--config-file", str(config)]
    for name in ("bot-token", "admin-tokens"):
        assert f"aws secretsmanager delete-secret --secret-id {ARN.format(name)}" in result.stdout
    assert "RevocationWebhookSecretArn" not in result.stdout  # none was given


def test_a_failed_delete_says_nothing_of_secrets(sam: Path, tmp_path: Path) -> None:
    result = run("delete", sam, tmp_path / "samconfig.toml", SAM_EXIT_DELETE="1")
    assert result.returncode == 1
    assert "secrets" not in result.stdout


def test_samconfig_stays_out_of_git() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "samconfig.toml", ".run/admin-token"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert ignored.stdout.split() == ["samconfig.toml", ".run/admin-token"]
