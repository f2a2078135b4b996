"""Run the emulator on its own: python -m discord_emulator [--port 8800]."""

from __future__ import annotations

import argparse
import threading

from discord_emulator.seeds import SAMPLE_INVITES, seed_samples
from discord_emulator.server import DiscordEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    args = parser.parse_args()
    emulator = DiscordEmulator(host=args.host, port=args.port)
    seed_samples(emulator.state)
    emulator.start()
    print(f"Discord emulator at {emulator.base_url}", flush=True)
    for code, what in SAMPLE_INVITES.items():
        print(f"  {code:12} {what}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
