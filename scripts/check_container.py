"""Checks, without a Docker engine, that docker-compose.yml parses and wires PostgreSQL with a
health check to the service, and that the Dockerfile is multi-stage and runs as non-root."""
import pathlib
import sys

import yaml

root = pathlib.Path(__file__).resolve().parent.parent
compose = yaml.safe_load((root / "docker-compose.yml").read_text())
services = compose["services"]
assert "healthcheck" in services["postgres"], "postgres needs a health check"
app = services["esignsp"]
assert app["depends_on"]["postgres"]["condition"] == "service_healthy", "esignsp waits for a healthy postgres"
assert app["environment"]["DATABASE_URL"].startswith("postgres://"), "esignsp uses the compose postgres"
dockerfile = (root / "Dockerfile").read_text().splitlines()
stages = [line for line in dockerfile if line.startswith("FROM ")]
assert len(stages) >= 2, "multi-stage build"
users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
assert users and users[-1] not in ("root", "0"), "runs as a non-root user"
print("docker-compose.yml and Dockerfile: ok")
sys.exit(0)
