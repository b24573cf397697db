"""`opencdp segment ...` and `opencdp export ...` against a real `opencdp serve` that builds and exports
in the background itself, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from conftest import server_for_a_new_tenant
from opencdp.cli.main import app
from opencdp.store.database import Database


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with server_for_a_new_tenant(database, tmp_path_factory.mktemp("cli-server"), "cli") as env:
        auth = (env["OPENCDP_CLIENT_KEY"], env["OPENCDP_API_TOKEN"])
        with httpx.Client(base_url=env["OPENCDP_URL"], auth=auth) as client:
            for n, country in enumerate(["IE", "IE", "DE"]):
                body = {"guestType": "customer", "firstName": f"G{n}", "country": country, "emails": [f"g{n}@x.ie"]}
                assert client.post("/v2.1/guests", json=body).status_code == 201
        yield env


def cli(server: dict[str, Any], *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env=server)


def test_segment_commands(server, tmp_path):
    definition = tmp_path / "irish.json"
    definition.write_text('{"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}')
    created = cli(server, "segment", "create", "--file", str(definition), "--name", "Irish")
    assert created.exit_code == 0, created.output
    ref = created.output.strip()
    assert cli(server, "segment", "validate", str(definition)).output.strip() == "valid"
    assert "2 of" in cli(server, "segment", "preview", str(definition)).output
    built = cli(server, "segment", "build", ref, "--wait")
    assert built.exit_code == 0 and "size 2  added 2  removed 0" in built.output, built.output
    again = cli(server, "segment", "build", ref, "--wait")  # its bar now follows the last build's duration
    assert again.exit_code == 0 and "size 2  added 0  removed 0" in again.output, again.output
    out = tmp_path / "members.csv"
    assert cli(server, "segment", "members", ref, "--format", "csv", "-o", str(out)).exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("ref,guestType") and len(lines) == 3
    as_json = cli(server, "segment", "members", ref)
    assert {orjson.loads(line)["firstName"] for line in as_json.output.splitlines()} == {"G0", "G1"}
    assert "Irish" in cli(server, "segment", "list").output
    assert cli(server, "segment", "start", ref).output.strip().endswith("live")
    assert cli(server, "segment", "pause", ref).output.strip().endswith("paused")

    bad = tmp_path / "bad.json"
    bad.write_text('{"match": {"attr": "guest.shoeSize", "op": "isEmpty"}}')
    refused = cli(server, "segment", "validate", str(bad))
    assert refused.exit_code == 2 and "unknown attribute 'guest.shoeSize'" in refused.output
    assert cli(server, "segment", "build", str(uuid.uuid4())).exit_code == 3
    wrong = cli({**server, "OPENCDP_API_TOKEN": "nope"}, "segment", "list")
    assert wrong.exit_code == 3


def test_export_commands(server, tmp_path):
    definition = tmp_path / "irish.json"
    definition.write_text(
        '{"name": "Irish export", "definition": {"match": {"attr": "guest.country", "op": "equals", "value": "IE"}}}'
    )
    ref = cli(server, "segment", "create", "--file", str(definition)).output.strip()
    body = {
        "name": "Irish",
        "friendlyId": "irish_cli",
        "segmentRef": ref,
        "format": "ndjson",
        "output": {"guest": ["firstName"]},
    }
    export_file = tmp_path / "export.json"
    export_file.write_bytes(orjson.dumps(body))
    created = cli(server, "export", "create", "--file", str(export_file))
    assert created.exit_code == 0 and created.output.split()[1:] == ["irish_cli", "draft"], created.output
    listed = cli(server, "export", "list")
    assert listed.exit_code == 0 and "irish_cli" in listed.output and "1 export" in listed.output
    assert orjson.loads(cli(server, "export", "show", "irish_cli").output)["segmentRef"] == ref
    assert orjson.loads(cli(server, "export", "list", "--json").output)["items"][0]["friendlyId"] == "irish_cli"
    ran = cli(server, "export", "run", "irish_cli", "--build-segment", "--wait")
    assert ran.exit_code == 0 and "success" in ran.output and "total 2" in ran.output, ran.output
    listing = cli(server, "export", "files", "--latest", "irish_cli", "--download", str(tmp_path / "files"))
    assert listing.exit_code == 0, listing.output
    (downloaded,) = list((tmp_path / "files").iterdir())
    assert downloaded.name.startswith("irish_cli-") and downloaded.name.endswith("-1.ndjson.gz")
    records = [orjson.loads(line) for line in gzip.decompress(downloaded.read_bytes()).splitlines()]
    assert sorted(r["firstName"] for r in records) == ["G0", "G1"]
    as_json = cli(server, "export", "files", "--latest", "irish_cli", "--json")
    assert orjson.loads(as_json.output)["numberOfFiles"] == 1
    assert cli(server, "export", "run", "nope_nope", "--wait").exit_code == 3
