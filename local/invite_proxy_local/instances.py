"""A function's instances as Lambda keeps them: each a process of its own, one request
at a time, a new one started cold when every one is busy, up to a limit.

The local gateway hands each request to an idle instance. So `make run` shows what a
deployed fleet does: cold starts (each new instance imports the handler afresh, and
its first log line says ``cold_start: true``), real concurrency, and instances that
share nothing but DynamoDB and Discord, coalescing through the table as Lambda's do.

An instance is ``python -m invite_proxy_local.instance``: events in on its standard
input, answers out on a pipe of their own, so that its logs (standard output, as on
Lambda) are the local run's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from typing import Any

from invite_proxy_local.template import Function, Template

# What an instance gets past the function's own timeout before it is taken for lost.
_GRACE_SECONDS = 5.0


class InstanceFailed(Exception):
    """The instance died, overran its timeout or spoke nonsense: API Gateway's 500, and
    the instance is done with."""


class HandlerFailed(InstanceFailed):
    """The handler raised: API Gateway's 500. Lambda keeps such an instance, and so do we."""


class _Instance:
    def __init__(self, template: Template, function: Function, env: dict[str, str]) -> None:
        self.function = function
        answers, theirs = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
            [
                sys.executable,
                "-m",
                "invite_proxy_local.instance",
                str(template.path),
                function.logical_id,
                str(theirs),
            ],
            stdin=subprocess.PIPE,
            env=env,
            pass_fds=(theirs,),
            text=True,
            # Its own session: a Ctrl-C at `make run` stops the run, which stops it.
            start_new_session=True,
        )
        os.close(theirs)
        self._answers = answers  # read raw, with a timeout (_line)
        self._pending = bytearray()
        try:
            self._expect("ready", timeout=60)
        except BaseException:
            self.kill()  # a child that hangs or fails as it starts is not left behind
            raise

    def invoke(self, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(event) + "\n")
            self.process.stdin.flush()
        except OSError as exc:
            raise InstanceFailed(f"the instance ended: {exc}") from None
        return self._expect("ok", timeout=self.function.timeout + _GRACE_SECONDS)

    def _expect(self, kind: str, timeout: float) -> Any:
        line = self._line(timeout)
        if line is None:
            raise InstanceFailed(f"no answer within {timeout:g} s")
        if not line:
            raise InstanceFailed(f"the instance ended (exit code {self.process.poll()})")
        try:
            got, value = json.loads(line)
        except ValueError:
            raise InstanceFailed(f"not an answer: {line[:200]!r}") from None
        if got == "error":
            raise HandlerFailed(value) if kind == "ok" else InstanceFailed(value)
        if got != kind:
            raise InstanceFailed(f"expected {kind!r}, got {got!r}")
        return value

    def _line(self, timeout: float) -> bytes | None:
        """The next answer line; b"" once the instance has ended, None after ``timeout``
        (read as it comes, so a child stuck mid-answer cannot hold the gateway past it)."""
        ends = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = ends - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                return None
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                return b""
            self._pending += chunk
        line, _, rest = bytes(self._pending).partition(b"\n")
        self._pending = bytearray(rest)
        return line

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # already gone
                self.process.stdin.close()  # its input's end: the instance returns
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        with contextlib.suppress(OSError):  # closed already
            os.close(self._answers)

    def kill(self) -> None:
        self.process.kill()
        self.stop()


class InstancePool:
    """What the gateway invokes a function through: ``invoke(event)``, as an
    ExecutionEnvironment does, but on an idle instance of up to ``max_instances``."""

    def __init__(self, template: Template, function: Function, max_instances: int) -> None:
        if max_instances < 1:
            raise ValueError("an instance pool holds at least one instance")
        self.template = template
        self.function = function
        self.max_instances = max_instances
        self.cold_starts = 0  # instances started, over the pool's life
        # Each instance's environment, as it was when the run started (a deployed
        # function's settings do not change under it either).
        self._env = dict(os.environ)
        # The packages as this process found them, whoever started it (make, pytest).
        self._env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._idle: list[_Instance] = []
        self._running = 0
        self._closed = False
        self._changed = threading.Condition()

    def invoke(self, event: dict[str, Any], context: Any = None) -> Any:
        if context is not None:
            raise ValueError("an instance makes its own context, as Lambda does")
        instance = self._take()
        try:
            answer = instance.invoke(event)
        except HandlerFailed:
            self._give_back(instance)  # the handler's error: the instance is fine
            raise
        except BaseException:
            self._lose(instance)  # whatever went wrong, its slot is free again
            raise
        self._give_back(instance)
        return answer

    @property
    def instances(self) -> int:
        with self._changed:
            return self._running

    def _take(self) -> _Instance:
        with self._changed:
            while True:
                if self._closed:
                    raise InstanceFailed("the local run is stopping")
                while self._idle:
                    instance = self._idle.pop()  # the most recently used: warm
                    if instance.process.poll() is None:
                        return instance
                    self._running -= 1  # it died idle: Lambda would not hand it a request
                if self._running < self.max_instances:
                    self._running += 1
                    self.cold_starts += 1
                    break
                self._changed.wait()
        try:
            return _Instance(self.template, self.function, self._env)  # unlocked
        except BaseException:
            self._lose(None)
            raise

    def _give_back(self, instance: _Instance) -> None:
        with self._changed:
            if not self._closed:
                self._idle.append(instance)
                self._changed.notify()
                return
        instance.stop()

    def _lose(self, instance: _Instance | None) -> None:
        if instance is not None:
            instance.kill()
        with self._changed:
            self._running -= 1
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for instance in idle:
            instance.stop()
