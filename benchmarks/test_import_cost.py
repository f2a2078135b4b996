"""Cold start as Lambda runs it: importing each handler from the `sam build` output.

The functions and the layer are built by `sam build` (build/Makefile) for this
machine's architecture (the arm64 layer's binaries cannot load here), and each
handler is imported the way Lambda lays them out: the function's folder and the
layer's python/ on sys.path, with bytecode writes off (-B: /var/task and /opt
are read-only). Each sample is a whole fresh process, interpreter start-up
included, alternating with the baseline `import boto3, requests, pydantic` from
the same layer folder, so machine noise hits both alike. The ratio is of the
medians; the API handler's absolute import time is reported beside it.

Targets: API and authorizer at most 1.3x, revoker at most 1.5x.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from benchmarks.results import record

REPO = Path(__file__).resolve().parents[1]
PAIRS = int(os.environ.get("IMPORT_SAMPLES", "15"))
FUNCTIONS = {
    "api": "ApiFunction",
    "authorizer": "AdminAuthorizerFunction",
    "revoker": "RevokerFunction",
}
TARGETS = {"api": 1.3, "authorizer": 1.3, "revoker": 1.5}
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "CACHE_TABLE_NAME": "invites",
    "DISCORD_TOKEN_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bot",
    "ADMIN_TOKENS_SECRET_ID": "arn:aws:secretsmanager:us-east-1:123456789012:secret:admins",
    "POWERTOOLS_SERVICE_NAME": "invite-proxy",
    "POWERTOOLS_METRICS_NAMESPACE": "InviteProxy",
}
TIMED = (
    "import sys, time; sys.path[:0] = sys.argv[1:]; t = time.perf_counter(); {what}; "
    "print((time.perf_counter() - t) * 1000)"
)


def _runtime_python() -> str:
    found = subprocess.run(
        [str(REPO / "scripts/find-python"), "3.13"], capture_output=True, text=True, check=True
    )
    return str(Path(found.stdout.strip()).parent / "python3.13")


def _sam_build(build_dir: Path, arch: str) -> None:
    sam = os.environ.get("SAM_BIN") or str(REPO / ".tools/sam/bin/sam")
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", LAMBDA_ARCH=arch)
    env["PATH"] = f"{Path(_runtime_python()).parent}:{env['PATH']}"
    subprocess.run(
        [sam, "build", "--build-dir", str(build_dir), "--cache-dir", str(build_dir / ".cache")],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_dir = tmp_path_factory.mktemp("native")
    _sam_build(build_dir, platform.machine())
    return build_dir


def _sample(python: str, paths: list[Path], what: str) -> tuple[float, float]:
    """One fresh process: (whole-process ms, the import's own ms)."""
    started = time.perf_counter()
    out = subprocess.run(
        [python, "-I", "-B", "-c", TIMED.format(what=what), *map(str, paths)],
        env={"PATH": os.environ["PATH"], **ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    whole = (time.perf_counter() - started) * 1000
    return whole, float(out.stdout.strip().splitlines()[-1])


def _zip_bytes(folder: Path) -> int:
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    return archive.stat().st_size


def test_cold_start_from_the_built_artifact(benchmark: Any, built: Path) -> None:
    python = _runtime_python()
    layer = built / "InviteLibLayer" / "python"
    figures: dict[str, float] = {}

    def measure() -> None:
        for name, function in FUNCTIONS.items():
            baseline, handler, own = [], [], []
            for _ in range(PAIRS):
                baseline.append(_sample(python, [layer], "import boto3, requests, pydantic")[0])
                whole, import_ms = _sample(python, [built / function, layer], "import app")
                handler.append(whole)
                own.append(import_ms)
            ratio = statistics.median(handler) / statistics.median(baseline)
            key = "cold_start_ratio" if name == "api" else f"cold_start_ratio_{name}"
            figures[key] = ratio
            if name == "api":
                figures["cold_start_ms_api"] = statistics.median(own)
            print(
                f"\n{function}: {statistics.median(handler):.0f} ms whole process vs "
                f"{statistics.median(baseline):.0f} ms baseline = {ratio:.2f}x "
                f"(target {TARGETS[name]}x); the import itself {statistics.median(own):.0f} ms"
            )

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    record(**figures)


def test_artifact_sizes(benchmark: Any, tmp_path: Path) -> None:
    """What Lambda stores: the arm64 build as `sam deploy` zips it."""
    build_dir = tmp_path / "arm64"
    benchmark.pedantic(_sam_build, args=(build_dir, "aarch64"), rounds=1, iterations=1)
    sizes = {
        "layer_zip_bytes": _zip_bytes(build_dir / "InviteLibLayer"),
        "api_zip_bytes": _zip_bytes(build_dir / "ApiFunction"),
    }
    print("\nartifact sizes:", json.dumps(sizes))
    record(**{k: float(v) for k, v in sizes.items()})
    shutil.rmtree(build_dir)
