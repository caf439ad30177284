"""docker-compose.yml is validated by a real Compose implementation (no engine is needed)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from customer_graph.settings import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"


def _config() -> dict[str, Any]:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is missing: `make system-deps` installs it")
    result = subprocess.run(
        [compose, "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_file_is_valid_and_wires_neo4j_before_the_api() -> None:
    services = _config()["services"]
    neo4j, api = services["neo4j"], services["api"]
    assert neo4j["image"] == "neo4j:5.26-community"
    assert neo4j["healthcheck"]["test"]
    volumes = [
        v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in neo4j["volumes"]
    ]
    assert any(v.split(":")[:2] == ["neo4j-data", "/data"] for v in volumes), volumes
    assert api["build"]["context"] == str(PROJECT_ROOT)
    assert api["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert api["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"


def test_dockerfile_serves_the_console_script() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert 'CMD ["customer-graph", "serve"]' in dockerfile
    assert "FROM python:3.11" in dockerfile
