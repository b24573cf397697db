"""Every foreseeable failure of the CLI is one line that says what failed and what to do, with the exit
code docs/cli.md documents (0 done, 1 failed, 2 invalid input, 3 the server refused or could not be
reached), the same in every command. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from conftest import server_for_a_new_tenant
from opencdp.cli.main import app
from opencdp.demo import write_orders
from opencdp.store.database import Database
from opencdp.testing import free_port


def one_line(result: Any) -> str:
    """The error a command printed: exactly one line, and no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with server_for_a_new_tenant(database, tmp_path_factory.mktemp("cli-errors"), "cli-errors") as env:
        yield env


def cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def test_serve_against_a_database_it_cannot_open(database, tmp_path):
    if database.is_sqlite:
        url = "sqlite:////proc/opencdp-cannot-be-here/opencdp.db"
    else:
        url = make_url(database.url).set(database=f"opencdp_missing_{uuid.uuid4().hex[:8]}").render_as_string(False)
    result = cli({"OPENCDP_DATABASE_URL": url, "OPENCDP_DATA_DIR": str(tmp_path)}, "serve")
    assert result.exit_code == 1
    line = one_line(result)
    assert line.startswith("error: cannot open the database") and "OPENCDP_DATABASE_URL" in line


def test_serve_on_a_port_in_use_says_so_before_anything_else(database, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"OPENCDP_DATABASE_URL": database.url, "OPENCDP_DATA_DIR": str(tmp_path)}
        result = cli(env, "serve", "--port", str(port))
    assert result.exit_code == 1
    line = one_line(result)
    assert f"port {port}" in line and "--port" in line and "OPENCDP_PORT" in line


@pytest.mark.parametrize("command", [["batch", "list"], ["segment", "list"], ["export", "list"]])
def test_a_server_that_is_down(command):
    env = {"OPENCDP_URL": f"http://127.0.0.1:{free_port()}", "OPENCDP_CLIENT_KEY": "k", "OPENCDP_API_TOKEN": "t"}
    result = cli(env, *command)
    assert result.exit_code == 3
    line = one_line(result)
    assert "cannot reach OpenCDP at http://127.0.0.1:" in line and "OPENCDP_URL" in line


@pytest.mark.parametrize("command", [["batch", "list"], ["segment", "list"], ["export", "list"]])
def test_refused_credentials(server, command):
    result = cli({**server, "OPENCDP_API_TOKEN": "wrong"}, *command)
    assert result.exit_code == 3
    assert "the client key or API token was refused" in one_line(result)


def test_missing_file(server, tmp_path):
    result = cli(server, "batch", "upload", str(tmp_path / "nowhere.gz"))
    assert result.exit_code == 2
    assert "nowhere.gz" in one_line(result)


def test_upload_wait_exits_1_when_the_batch_ends_in_error(server, tmp_path):
    bad = {"ref": str(uuid.uuid4()), "schema": "order", "mode": "upsert", "value": {"referenceId": "X"}}
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(orjson.dumps(bad) + b"\n"))
    result = cli(server, "batch", "upload", str(path), "--wait", "--ref", ref := str(uuid.uuid4()))
    assert result.exit_code == 1, result.output
    assert "1 record: 0 applied, 0 skipped (already applied), 1 failed" in result.output
    assert f"line 1  {bad['ref']}  400  Validation error: Attribute value.orderedAt is required" in result.output
    listed = cli(server, "batch", "failures", ref, "--json")
    assert listed.exit_code == 0 and [f["line"] for f in orjson.loads(listed.output)] == [1]
    assert "1 failed record" in cli(server, "batch", "failures", ref).output


def test_the_batch_commands_take_the_same_options_as_the_others(server, tmp_path):
    good = Path(tmp_path / "none.gz")
    good.write_bytes(gzip.compress(b""))
    uploaded = cli({}, "batch", "upload", str(good), "--wait", "--url", server["OPENCDP_URL"],
                   "--client-key", server["OPENCDP_CLIENT_KEY"], "--token", server["OPENCDP_API_TOKEN"])  # fmt: skip
    assert uploaded.exit_code == 0, uploaded.output
    listed = cli(server, "batch", "list", "--json")
    assert listed.exit_code == 0 and orjson.loads(listed.output)["totalCount"] == 2
    assert "2 batches" in cli(server, "batch", "list").output


def test_a_file_uploaded_again_reports_figures_that_add_up(server, tmp_path):
    path = tmp_path / "again.gz"
    write_orders(path, 3, bad_share=0)
    first = cli(server, "batch", "upload", str(path), "--wait")
    assert first.exit_code == 0, first.output
    assert "3 records: 3 applied, 0 skipped (already applied), 0 failed" in first.output
    again = cli(server, "batch", "upload", str(path), "--wait")
    assert again.exit_code == 0 and "3 records: 0 applied, 3 skipped (already applied), 0 failed" in again.output
