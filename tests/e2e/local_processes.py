"""Local runs as separate processes: each with its own memory, as Lambda instances are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]


class Process:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "invite_proxy_local"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.url = f"http://127.0.0.1:{env.get('PORT', '3000')}"

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.stdout.readline()
            if not line and self.proc.poll() is not None:
                break
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} never printed; got:\n{''.join(self.lines)}")

    def keep_reading(self) -> None:
        """Read what it prints from now on, on a thread: a full pipe would stall it."""

        def read() -> None:
            for line in self.stdout:
                self.lines.append(line)

        threading.Thread(target=read, name="local-run-output", daemon=True).start()

    def json_lines(self, until: str) -> list[dict[str, Any]]:
        self.wait_for(until)
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_ENDPOINT", "DISCORD_", "CACHE_", "ALLOWED_", "ADMIN_", "LOCAL_"))
    }
    # The child imports the local run as pytest does, whoever started pytest (make or not).
    paths = [str(REPO / "layers" / "invite_lib"), str(REPO / "local")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["WEB_PORT"] = "0"  # no demo pages unless a test asks: parallel runs share no port
    # Word of each run goes to a folder of its own, never the clone's .run/ (which a
    # developer's own `make run` may be using), unless a test shares one on purpose.
    env["LOCAL_RUN_DIR"] = tempfile.mkdtemp(prefix="local-run-")
    env.update(extra)
    return env
