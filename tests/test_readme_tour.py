"""The README's tour, run as written against a real `opencdp serve`, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import POSTGRES_ADMIN_URL, _admin
from opencdp.testing import running_server

README = Path(__file__).parent.parent / "README.md"


def tour_script() -> str:
    text = README.read_text()
    section = text.split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert blocks, "the README tour has no bash blocks"
    return "set -euo pipefail\n" + "\n".join(blocks)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield ""  # the default: a SQLite file in OPENCDP_DATA_DIR, exactly what `make serve` uses
        return
    name = f"opencdp_tour_{uuid.uuid4().hex[:10]}"
    with _admin(POSTGRES_ADMIN_URL) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with _admin(POSTGRES_ADMIN_URL) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_readme_tour_runs_as_written(tmp_path, database_url):
    env = {"OPENCDP_CLIENT_KEY": "ck_tour", "OPENCDP_API_TOKEN": "tok_tour"}
    if database_url:
        env["OPENCDP_DATABASE_URL"] = database_url
    with running_server(env, tmp_path) as base:
        result = subprocess.run(
            ["bash", "-c", tour_script()],
            env={"PATH": os.environ["PATH"], "CDP": base, "KEY": "ck_tour", "TOKEN": "tok_tour"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "30.6" in out and "London" in out and "matched " in out and "CONFIRMED" in out
    assert '"message":"price: may not be null."' in out
    server_log = (tmp_path / "server.log").read_text()
    assert "client key" in server_log and "ck_tour" in server_log
    if not database_url:
        assert (tmp_path / "opencdp.db").exists()
