"""deploy/k8s checked as data, without a cluster: every service deployed with probes on its /health,
each container given only its own database, only settings the code reads, no secret in a file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.settings import SERVICE_PORTS, SERVICES
from tests.env_names import KNOWN_SHOUHU_VARS

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SECRET_KEYS = {
    line.split("=", 1)[0] for line in (K8S / "secrets.env.example").read_text().splitlines()
    if line and not line.startswith("#")
}


@pytest.fixture(scope="module")
def kustomization() -> dict:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def objects(kustomization) -> list[dict]:
    found = []
    for name in kustomization["resources"]:
        assert (K8S / name).is_file(), f"kustomization lists {name}, which is not in deploy/k8s"
        found += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return found


def _of_kind(objects, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _config(objects) -> dict[str, str]:
    return _of_kind(objects, "ConfigMap")["shouhu-config"]["data"]


def _env(container: dict, objects) -> dict[str, str]:
    """Name -> where it comes from ("config" or "secret:<key>"); inline values are refused."""
    env = {name: "config" for name in _config(objects)} if container.get("envFrom") else {}
    for item in container.get("env", []):
        assert "value" not in item, f"{item['name']} is written into the manifest; take it from the secret"
        env[item["name"]] = "secret:" + item["valueFrom"]["secretKeyRef"]["key"]
    return env


def test_every_yaml_file_is_applied(kustomization):
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == set(kustomization["resources"])


def test_each_service_runs_with_probes_on_its_port_as_a_non_root_user(objects):
    deployments, services = _of_kind(objects, "Deployment"), _of_kind(objects, "Service")
    assert set(deployments) == set(SERVICES) == set(services)
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        port = SERVICE_PORTS[name]
        assert c["command"] == ["python", "-m", f"services.{name}"]
        assert (Path(__file__).resolve().parents[2] / "services" / name / "__main__.py").is_file()
        assert c["ports"][0]["containerPort"] == port == services[name]["spec"]["ports"][0]["targetPort"]
        assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": port}
        assert c["livenessProbe"]["tcpSocket"]["port"] == port
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        assert d["spec"]["replicas"] >= 2, "replicas share the consumer group: at least two, so one can die"
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()


def test_settings_are_ones_the_code_reads_and_each_service_sees_only_its_own_database(objects):
    config = _config(objects)
    assert set(config) <= KNOWN_SHOUHU_VARS and config["SHOUHU_ENV"] == "prod"
    workloads = [(n, d["spec"]["template"]["spec"]["containers"][0]) for n, d in _of_kind(objects, "Deployment").items()]
    jobs = _of_kind(objects, "Job")
    assert set(jobs) == {f"{s}-migrate" for s in SERVICES}
    workloads += [(n.removesuffix("-migrate"), j["spec"]["template"]["spec"]["containers"][0]) for n, j in jobs.items()]
    for service, container in workloads:
        env = _env(container, objects)
        assert set(env) <= KNOWN_SHOUHU_VARS, f"{service}: {set(env) - KNOWN_SHOUHU_VARS} are read by nothing"
        databases = {n for n in env if n.endswith("_DATABASE_URL")}
        assert databases == {f"SHOUHU_{service.upper()}_DATABASE_URL"}, service
        for registry_only in ("SHOUHU_ID_HASH_KEY", "SHOUHU_ID_ENCRYPTION_KEYS"):
            assert (registry_only in env) == (service == "registry" and container["name"] != "migrate"), registry_only
        for source in env.values():
            if source.startswith("secret:"):
                assert source.removeprefix("secret:") in SECRET_KEYS, f"{source} is not in secrets.env.example"


def test_migrations_upgrade_each_service_database(objects):
    for name, job in _of_kind(objects, "Job").items():
        (c,) = job["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["shouhu", "db", "upgrade", name.removesuffix("-migrate")]


def test_the_secret_example_holds_no_secret():
    values = dict(
        line.split("=", 1) for line in (K8S / "secrets.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    secrets = ("SHOUHU_JWT_SECRET", "SHOUHU_ID_HASH_KEY", "SHOUHU_ID_ENCRYPTION_KEYS", "SHOUHU_NOTIFICATIONS_AGENCY_KEY")
    assert [values[k] for k in secrets] == [""] * len(secrets)
    assert all(":PASSWORD@" in v for k, v in values.items() if k.endswith("_DATABASE_URL"))


def test_each_service_and_its_migration_connect_as_the_services_own_role():
    """Not the postgres superuser (it skips row-level security): shouhu_<service> on its own database,
    the role deploy/postgres/init/ makes NOSUPERUSER NOBYPASSRLS (checked in tests/unit/test_compose.py)."""
    values = dict(
        line.split("=", 1) for line in (K8S / "secrets.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for service in SERVICES:
        url = values[f"SHOUHU_{service.upper()}_DATABASE_URL"]
        user, database = url.split("://", 1)[1].split(":", 1)[0], url.rsplit("/", 1)[1]
        assert (user, database) == (f"shouhu_{service}", f"shouhu_{service}"), url
