"""A real `opencdp serve` process on a free loopback port, for end-to-end tests and benchmarks.

It starts the installed console script, so what it exercises is exactly what `make serve` runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerUrl(str):
    """The base URL of a running server, which also knows the server's process id (to measure it)."""

    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(
    env: dict[str, str], data_dir: Path, timeout: float = 30.0, args: tuple[str, ...] = ()
) -> Iterator[ServerUrl]:
    """Start the console script exactly as `make serve` does and yield its base URL once it answers."""
    port = free_port()
    script = Path(sys.executable).with_name("opencdp")
    full_env = {**os.environ, "OPENCDP_DATA_DIR": str(data_dir), "OPENCDP_PORT": str(port), **env}
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([str(script), "serve", *args], env=full_env, stdout=log, stderr=subprocess.STDOUT)
    base = ServerUrl(f"http://127.0.0.1:{port}")
    base.pid = process.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((data_dir / "server.log").read_text()) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
