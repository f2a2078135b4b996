"""python -m invite_proxy_local: run the invite proxy on http://127.0.0.1:3000 (PORT overrides)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

from invite_proxy_local.runner import ADMIN_TOKEN_FILE, RUN_FILE, publish, run_dir, start


def main() -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    run = start(announce=lambda line: print(line, flush=True))
    withdraw: Callable[[], None] = lambda: None  # noqa: E731
    try:
        withdraw = publish(run, os.environ)
        folder = run_dir(os.environ)
        print(f"  Run file: {folder / RUN_FILE}  (make invoke uses this run's table and Discord)")
        if run.admin_token:
            print(f"            {folder / ADMIN_TOKEN_FILE}  the admin token, while this run lasts")
        print("Ready.", flush=True)
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        withdraw()
        run.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
