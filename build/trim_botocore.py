"""Keep botocore's data for the services the functions call, and nothing of the others.

    python trim_botocore.py <layer>/python/botocore/data <service>...

botocore reads its data at every cold start: it lists every service's folder when
it makes a client (about 440 of them), and parses endpoints.json (1.2 MB, every
service's endpoints in every partition) to resolve any endpoint. The layer keeps
the folders of the services named (aws_clients.SERVICES and CREDENTIAL_SERVICES)
and their entries in endpoints.json, with every partition and region intact.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def trim(data: Path, services: set[str]) -> None:
    if not services:
        raise SystemExit("trim_botocore: no services named; refusing to remove them all")
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in services:
            shutil.rmtree(entry)
    endpoints = data / "endpoints.json"
    document = json.loads(endpoints.read_text())
    for partition in document["partitions"]:
        partition["services"] = {
            name: spec for name, spec in partition["services"].items() if name in services
        }
    endpoints.write_text(json.dumps(document, separators=(",", ":")))


if __name__ == "__main__":
    trim(Path(sys.argv[1]), set(sys.argv[2:]))
