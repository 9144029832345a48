"""A free TCP port on 127.0.0.1 for servers the tests start (idp, the job board, SMTP, replicas)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; a race with other processes is possible but rare)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
