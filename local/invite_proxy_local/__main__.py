"""python -m invite_proxy_local: run the invite proxy on http://127.0.0.1:3000 (PORT overrides)."""

from __future__ import annotations

import signal
import sys
import threading

from invite_proxy_local.runner import start


def main() -> None:
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    run = start(announce=lambda line: print(line, flush=True))
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        run.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
