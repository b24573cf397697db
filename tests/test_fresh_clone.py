"""The README's first promise, followed as a new user follows it: in a fresh copy of the project,
`make serve` starts the server and prints a client key and an API token, and the tour, run with exactly
what it printed, works twice. On SQLite, which is what `make serve` starts.

The copy is of the working tree (tracked and new files, as a commit of it would hold them). It shares
this checkout's installed environment instead of installing one again, since tests reach nothing beyond
127.0.0.1; `PYTHONPATH` makes the copy's own code the code that runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from opencdp.testing import free_port
from test_readme_tour import ROOT, UUID, run_script, tour_script


def fresh_copy(target: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # times kept: the install stamp stays newer than pyproject.toml
    (target / ".venv").symlink_to(ROOT / ".venv")


def test_make_serve_in_a_fresh_copy_then_the_tour_twice(tmp_path):
    clone = tmp_path / "opencdp"
    fresh_copy(clone)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENCDP_")}
    env.update(OPENCDP_PORT=str(port), PYTHONPATH=str(clone / "src"))
    log = (tmp_path / "make-serve.log").open("wb")
    make = subprocess.Popen(["make", "serve"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                assert make.poll() is None and time.monotonic() < deadline, (tmp_path / "make-serve.log").read_text()
                time.sleep(0.2)
        printed = (tmp_path / "make-serve.log").read_text()
        key = re.search(r"client key\s+(ck_\S+)", printed)
        token = re.search(r"API token\s+(tok_\S+)", printed)
        assert key and token, printed
        credentials = {"OPENCDP_CLIENT_KEY": key.group(1), "OPENCDP_API_TOKEN": token.group(1)}
        runs = [run_script(base, tour_script(), credentials) for _ in range(2)]
    finally:
        os.killpg(make.pid, signal.SIGTERM)
        make.wait(timeout=30)
        log.close()
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
    assert UUID.sub("REF", runs[0].stdout) == UUID.sub("REF", runs[1].stdout)
    assert (clone / "data" / "opencdp.db").exists()  # README: it migrates ./data/opencdp.db
