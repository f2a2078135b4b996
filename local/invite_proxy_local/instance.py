"""One instance of a function (instances.py starts it): its cold start, then one event at
a time from standard input, each answer a JSON line on the pipe it was given."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.template import Template


def main(argv: list[str]) -> int:
    template_path, logical_id, answers_fd = argv
    with os.fdopen(int(answers_fd), "w", encoding="utf-8") as answers:

        def answer(kind: str, value: Any) -> None:
            sys.stdout.flush()  # its logs before the answer's
            answers.write(json.dumps([kind, value]) + "\n")
            answers.flush()

        try:
            function = Template(Path(template_path)).functions()[logical_id]
            environment = ExecutionEnvironment(function)  # the cold start
        except Exception:
            answer("error", traceback.format_exc())
            return 1
        answer("ready", None)
        for line in sys.stdin:
            try:
                answer("ok", environment.invoke(json.loads(line)))
            except Exception:
                answer("error", traceback.format_exc())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
