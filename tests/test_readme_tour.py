"""The README's tour and the API docs' examples, run as written against a real `opencdp serve`.

Both run on SQLite (exactly what `make serve` starts) and on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import fresh_postgres_database
from opencdp.testing import running_server

ROOT = Path(__file__).parent.parent
DOCS_WITH_EXAMPLES = ("rest-api.md", "stream-api.md", "batch-api.md", "segments-exports.md")


def bash_blocks(text: str) -> str:
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert blocks, "no bash blocks"
    return "set -euo pipefail\n" + "\n".join(blocks)


def tour_script() -> str:
    text = (ROOT / "README.md").read_text()
    return bash_blocks(text.split("## A 5-minute tour", 1)[1].split("\n## ", 1)[0])


def run_script(base: str, script: str, credentials: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run as a reader would, after exporting the client key and token (`credentials`, else the tour's)."""
    env = {
        "PATH": os.environ["PATH"],
        "OPENCDP_URL": base,
        **(credentials or {"OPENCDP_CLIENT_KEY": "ck_tour", "OPENCDP_API_TOKEN": "tok_tour"}),
    }
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield ""  # the default: a SQLite file in OPENCDP_DATA_DIR, exactly what `make serve` uses
        return
    with fresh_postgres_database("opencdp_tour") as url:
        yield url


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def settings_of(base: str) -> dict[str, object]:
    """The tenant's settings, which no example may change behind the reader's back."""
    auth = ("ck_tour", "tok_tour")
    return {path: httpx.get(f"{base}/opencdp/v1/tenant/{path}", auth=auth).json() for path in ("identity-rules",)}


def test_the_readme_tour_and_the_docs_examples_run_as_written_twice(tmp_path, database_url):
    env = {"OPENCDP_CLIENT_KEY": "ck_tour", "OPENCDP_API_TOKEN": "tok_tour"}
    if database_url:
        env["OPENCDP_DATABASE_URL"] = database_url
    with running_server(env, tmp_path) as base:
        before = settings_of(base)
        runs = []
        for _ in range(2):  # a reader may well run them again: the same answers, and nothing in the way
            tour = run_script(base, tour_script())
            docs = [run_script(base, bash_blocks((ROOT / "docs" / name).read_text())) for name in DOCS_WITH_EXAMPLES]
            for result in (tour, *docs):
                assert result.returncode == 0, result.stdout + result.stderr
            runs.append(UUID.sub("REF", tour.stdout))
        assert settings_of(base) == before
    assert runs[0] == runs[1]
    out = runs[0]
    assert "30.6" in out and "London" in out and "matched " in out and "CONFIRMED" in out
    assert '"message":"price: may not be null."' in out
    server_log = (tmp_path / "server.log").read_text()
    assert "client key" in server_log and "ck_tour" in server_log
    if not database_url:
        assert (tmp_path / "opencdp.db").exists()
