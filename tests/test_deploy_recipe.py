"""The deployment recipe (deploy/compose.yaml, docs/operations.md) names only settings and commands that
exist, and a worker's heartbeat, its health check, is touched by a pass that worked and only then."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from opencdp.cli.main import app
from opencdp.config import Settings

ROOT = Path(__file__).parent.parent
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def test_the_compose_file_uses_real_settings_and_commands():
    services = COMPOSE["services"]
    assert {"postgres", "minio", "migrate", "api", "worker"} <= set(services)
    for name in ("migrate", "api", "worker"):
        environment = services[name]["environment"]
        unknown = [key for key in environment if key.startswith("OPENCDP_")
                   and key.removeprefix("OPENCDP_").lower() not in Settings.model_fields]  # fmt: skip
        assert unknown == [], name
        assert environment["OPENCDP_FILE_STORE"].startswith("s3://")
        command = services[name]["command"]
        assert command[0] == "opencdp"
        shown = CliRunner().invoke(app, [*command[1:], "--help"])
        assert shown.exit_code == 0, (name, shown.output)
        for option in (part for part in command if part.startswith("--")):
            assert option in shown.output, (name, option)


def test_a_worker_touches_its_heartbeat_after_a_pass_that_worked(tmp_path):
    script = Path(sys.executable).with_name("opencdp")
    alive = tmp_path / "alive"
    env = {**os.environ, "OPENCDP_DATA_DIR": str(tmp_path)}
    subprocess.run([str(script), "db", "upgrade"], env=env, check=True, capture_output=True)
    done = subprocess.run([str(script), "worker", "--once", "--heartbeat", str(alive)], env=env, capture_output=True)
    assert done.returncode == 0 and alive.exists(), done.stderr
    alive.unlink()
    broken = {**env, "OPENCDP_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    failed = subprocess.run(
        [str(script), "worker", "--once", "--heartbeat", str(alive)], env=broken, capture_output=True
    )
    assert failed.returncode != 0 and not alive.exists()
