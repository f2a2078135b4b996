"""What each execution environment must own, even when SnapStart restores many from one.

With SnapStart (the template's SnapStart parameter), Lambda runs the init phase once,
snapshots the environment, and restores every new instance from that snapshot, so
whatever init made is shared by all of them unless it is made again:

- the instance's id, which tells its fetch leases and probes from other instances'
  (two instances with one id would each think the other's lease their own);
- the random generator's state, so that retry jitter differs between instances and
  they do not retry in step;
- pooled connections: init makes none (no network work at import), and any that
  existed would be one socket shared by many machines, so they are dropped.

Credentials need nothing here. Init reads no secret (each is read on first use and
cached from then), and SnapStart functions take AWS credentials from the container
endpoint, which botocore refreshes before they expire.

The hooks come from `snapshot_restore_py`, which the managed Python runtime provides;
elsewhere (tests, the local run) there is no snapshot, and nothing to register. The
wiring registers them when it builds a function's services (importing this module
registers nothing).
"""

from __future__ import annotations

import random
import sys

from invite_proxy.adapters import instance


def drop_connections() -> None:
    """Close the Discord session's pooled connections, if this function has one."""
    session_module = sys.modules.get("invite_proxy.adapters.discord.session")
    if session_module is not None:
        session_module.SESSION.close()  # pools are made again on the next request


def after_restore() -> None:
    instance.renew()
    random.seed()  # from os.urandom: each restored instance its own sequence
    drop_connections()


def register() -> bool:
    """Register the hooks with the runtime; False where there are no snapshots."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(drop_connections)
    register_after_restore(after_restore)
    return True
