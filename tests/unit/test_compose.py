"""docker-compose.yml checked as data, without a Docker engine: the mistakes that
otherwise show up only at `docker compose up` (a typo in a dependency, a variable
missing from .env.example, an environment name the code never reads, a mounted
file that is not in the repository, a secret written into the file)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.env_names import KNOWN_SHOUHU_VARS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# The SHOUHU_* names the code reads (shared/settings.py); anything else is a typo
# that pydantic-settings would silently ignore.
SERVICE_PORTS = {"registry": 8001, "visits": 8002, "notifications": 8003, "reporting": 8004}

# Docker Hub official images have no namespace (or library/); pinned means an explicit
# numeric version (at least major.minor) or a digest, never a moving tag like latest or 7.
OFFICIAL_PINNED = re.compile(
    r"^(?:(?:docker\.io/)?library/)?[a-z0-9]+(?:[._-][a-z0-9]+)*"
    r"(?::\d+\.\d+(?:\.\d+)?(?:-[a-z0-9.]+)?(?:@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$"
)
# ${VAR}, ${VAR:-x}, ${VAR:?x}, ... and $VAR; `$$` is compose's escape for a literal $.
INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)|\$([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data.get("services"), "docker-compose.yml defines no services"
    return data


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def environment(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- NAME=value` form
        return dict((item.split("=", 1) + [None])[:2] for item in env)
    return {k: None if v is None else str(v) for k, v in env.items()}


def depends_on(service: dict) -> dict[str, dict]:
    deps = service.get("depends_on") or {}
    return {d: {} for d in deps} if isinstance(deps, list) else {d: c or {} for d, c in deps.items()}


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def module_of(service: dict) -> str | None:
    cmd = command(service)
    return cmd[cmd.index("-m") + 1] if "-m" in cmd[:-1] else None


def strings(node):
    """Every key and scalar in the parsed file (comments are not part of it)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif node is not None:
        yield str(node)


def interpolated(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in INTERPOLATION.finditer(text) if m.group(0) != "$$"}


def env_example() -> dict[str, str]:
    assert ENV_EXAMPLE.is_file(), f"{ENV_EXAMPLE} is missing"
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not NAME=value"
            entries[name.strip()] = value.strip()
    return entries


def build_of(service: dict) -> tuple[Path, Path] | None:
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    return context, (context / build.get("dockerfile", "Dockerfile")).resolve()


def test_every_service_runs_our_image_or_a_pinned_official_one(services):
    ours = {services[n].get("image") for n in services if build_of(services[n])}
    problems = []
    for name, svc in services.items():
        build = build_of(svc)
        if build:
            context, dockerfile = build
            if context != ROOT or dockerfile != ROOT / "Dockerfile":
                problems.append(f"{name}: builds {dockerfile}, not the repository's Dockerfile")
        elif svc.get("image") in ours - {None}:
            continue  # the image another service builds from the Dockerfile
        elif not OFFICIAL_PINNED.match(str(svc.get("image", ""))):
            problems.append(f"{name}: image {svc.get('image')!r} is neither built here nor a pinned official image")
    assert len(ours) == 1, f"the services built here should share one image name, found {ours}"
    assert not problems, "\n".join(problems)


def test_depends_on_targets_exist(services):
    missing = [f"{name} -> {dep}" for name, svc in services.items() for dep in depends_on(svc) if dep not in services]
    assert not missing, f"depends_on names services that do not exist: {missing}"


def test_shouhu_environment_names_are_ones_the_code_reads(services):
    unknown = {
        f"{name}: {var}"
        for name, svc in services.items()
        for var in environment(svc)
        if var.startswith("SHOUHU_") and var not in KNOWN_SHOUHU_VARS
    }
    assert not unknown, f"SHOUHU_* names the code does not read (typo?): {sorted(unknown)}"


def test_each_service_starts_with_the_environment_compose_gives_it(services):
    """Build each service's app (no connection is made) from its compose environment, every ${VAR} filled:
    a setting required in production and missing from the file fails here, not at `docker compose up`."""
    build = (
        "import importlib, sys; from shared.service import create_app; from shared.settings import Settings; "
        "create_app(importlib.import_module(f'services.{sys.argv[1]}.app').SPEC, Settings())"
    )
    failures = []
    for name in SERVICE_PORTS:
        env = {k: re.sub(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", "x0", v or "") for k, v in environment(services[name]).items()}
        base = {k: v for k, v in os.environ.items() if not k.startswith("SHOUHU_")}
        run = subprocess.run(
            [sys.executable, "-c", build, name], env=base | env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        if run.returncode != 0:
            failures.append(f"{name}: {run.stderr.strip()[-600:]}")
    assert not failures, "\n".join(failures)


def test_mounted_paths_exist_and_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    problems = []
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            if isinstance(vol, str):
                source = vol.split(":", 1)[0] if ":" in vol else None
                kind = "bind" if source and source.startswith((".", "/", "~")) else "volume"
            else:
                source, kind = vol.get("source"), vol.get("type", "volume")
            if kind == "bind" and not (COMPOSE_FILE.parent / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist in the repository")
            elif kind == "volume" and source and source not in declared:
                problems.append(f"{name}: named volume {source!r} is not declared under top-level volumes")
    assert not problems, "\n".join(problems)


def test_service_modules_exist(services):
    modules = {name: module_of(svc) for name, svc in services.items() if (module_of(svc) or "").startswith("services.")}
    assert set(modules.values()) == {f"services.{s}" for s in SERVICE_PORTS}, (
        f"expected one container per service module, found {sorted(modules.values())}"
    )
    missing = [
        f"{name}: {module} (no directory {module.replace('.', '/')})"
        for name, module in modules.items()
        if not (ROOT / module.replace(".", "/")).is_dir()
    ]
    assert not missing, f"command modules without a package: {missing}"


def test_services_wait_for_infrastructure_and_their_migration(services):
    migrations = {
        command(svc)[-1]: name for name, svc in services.items() if command(svc)[:3] == ["shouhu", "db", "upgrade"]
    }
    problems = []
    for name, svc in services.items():
        module = module_of(svc)
        if not (module and module.startswith("services.")):
            continue
        service = module.split(".", 1)[1]
        deps = depends_on(svc)
        wanted = {"redis": "service_healthy", "postgres": "service_healthy"}
        if service in migrations:
            wanted[migrations[service]] = "service_completed_successfully"
        else:
            problems.append(f"{name}: no `shouhu db upgrade {service}` job")
        for dep, condition in wanted.items():
            if deps.get(dep, {}).get("condition") != condition:
                problems.append(f"{name}: should depend on {dep} with condition {condition}")
        port = SERVICE_PORTS.get(service)
        if port is None:
            problems.append(f"{name}: runs {module}, which is not one of {sorted(SERVICE_PORTS)}")
            continue
        if f"{port}:{port}" not in [str(p) for p in svc.get("ports") or []]:
            problems.append(f"{name}: port {port} is not published")
        if f"127.0.0.1:{port}/health" not in " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or [])):
            problems.append(f"{name}: healthcheck does not request /health on port {port}")
    for name in migrations.values():
        if str(services[name].get("restart", "no")) != "no":
            problems.append(f"{name}: a one-shot migration must not be restarted")
        if depends_on(services[name]).get("postgres", {}).get("condition") != "service_healthy":
            problems.append(f"{name}: should wait for postgres to be healthy")
    assert not problems, "\n".join(problems)


def test_every_interpolated_variable_is_in_env_example(compose):
    used = set().union(*(interpolated(s) for s in strings(compose)))
    listed = env_example()
    assert {"SHOUHU_JWT_SECRET", "POSTGRES_PASSWORD"} <= used, "secrets should come from variables"
    assert not used - set(listed), f"variables used in docker-compose.yml but missing from .env.example: {sorted(used - set(listed))}"


def test_no_secret_is_written_into_the_compose_file_or_env_example(services):
    secret_name = re.compile(r"SECRET|PASSWORD|TOKEN|KEY", re.I)
    problems = []
    for name, svc in services.items():
        for var, value in environment(svc).items():
            if value and secret_name.search(var) and not interpolated(value):
                problems.append(f"{name}: {var} has a literal value")
            # scheme://user:password@host: the password part must be a variable.
            for password in re.findall(r"://[^:/@\s]+:([^@\s]+)@", value or ""):
                if not interpolated(password):
                    problems.append(f"{name}: {var} has a literal password in its URL")
    filled = [n for n, v in env_example().items() if secret_name.search(n) and v]
    assert not filled, f".env.example must leave secrets empty, not give usable ones: {filled}"
    assert not problems, "\n".join(problems)


def test_image_runs_as_non_root_and_bakes_in_no_secret():
    # One logical line per instruction, so a secret on a continuation line is seen too.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    users = re.findall(r"^\s*USER\s+(\S+)", dockerfile, re.M | re.I)
    assert users, "the Dockerfile never sets USER: the services would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"the final USER is {users[-1]}"
    baked = re.findall(r"^\s*(?:ENV|ARG)\s.*?\w*(?:SECRET|PASSWORD)\w*(?:[= ]|$)", dockerfile, re.M | re.I)
    assert not baked, f"the Dockerfile sets a secret: {baked}"


def test_redis_runs_with_the_generated_acl_file_and_no_default_user(services):
    """The ACL file is written by a one-shot job before Redis starts and read from their shared volume."""
    redis, job = services["redis"], services["redis-acl"]
    assert command(job)[:3] == ["python", "-m", "shared.redis_acl"], command(job)
    out = command(job)[command(job).index("--out") + 1]
    cmd = command(redis)
    assert "--aclfile" in cmd and cmd[cmd.index("--aclfile") + 1] == out, cmd
    assert depends_on(redis).get("redis-acl", {}).get("condition") == "service_completed_successfully"
    shared_dir = out.rsplit("/", 1)[0]
    mounted = {name: {str(v).split(":")[0] for v in svc.get("volumes") or [] if str(v).split(":")[1] == shared_dir}
               for name, svc in (("redis", redis), ("redis-acl", job))}
    assert mounted["redis"] and mounted["redis"] == mounted["redis-acl"], mounted
    assert str(job.get("restart", "no")) == "no"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert f"chown 10001:10001 {shared_dir}" in dockerfile, "the job (uid 10001) must own the directory it writes"
    conf = (ROOT / "deploy/redis/redis.conf").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(requirepass|user)\s", conf, re.M), "users belong in the generated ACL file only"
    # Every password the file is made from comes from .env, never from the compose file.
    env = environment(job)
    from shared.redis_acl import password_variable

    for service in SERVICE_PORTS:
        assert interpolated(env.get(password_variable(service)) or "") == {password_variable(service)}, service


def test_each_service_connects_to_redis_as_its_own_user(services):
    from shared.redis_acl import password_variable

    problems = []
    for service in SERVICE_PORTS:
        url = environment(services[service]).get("SHOUHU_REDIS_URL") or ""
        m = re.fullmatch(r"redis://([^:@]+):(\$\{[^}]+\})@redis:6379/\d+", url)
        if not m:
            problems.append(f"{service}: SHOUHU_REDIS_URL {url!r} is not redis://<user>:${{PASSWORD}}@redis:6379/<db>")
        elif m.group(1) != service or interpolated(m.group(2)) != {password_variable(service)}:
            problems.append(f"{service}: connects as {m.group(1)} with {m.group(2)}")
    assert not problems, "\n".join(problems)


def test_the_acl_file_turns_the_default_user_off_and_stores_no_password_in_clear():
    from shared.redis_acl import acl_lines

    passwords = {s: f"pw-{s}-0123456789" for s in SERVICE_PORTS}
    lines = acl_lines(passwords)
    users = {line.split()[1]: line for line in lines}
    assert users["default"].split()[2] == "off"
    assert set(SERVICE_PORTS) <= set(users) and any(u.startswith("agency-") for u in users)
    assert not any(p in line for p in passwords.values() for line in lines)
    assert all(f" >{p}" not in "\n".join(lines) for p in passwords.values())


def test_each_service_connects_to_postgres_as_its_own_role_that_row_level_security_binds(services):
    """Superusers and BYPASSRLS roles skip row-level security: the init script must make each service's
    role NOSUPERUSER NOBYPASSRLS, owner of its own database only, and each service and its migration
    must connect as that role."""
    script = (ROOT / "deploy/postgres/init/10-shouhu-databases.sh").read_text(encoding="utf-8")
    listed = re.search(r"^services=\(([^)]*)\)", script, re.M)
    assert listed and set(listed.group(1).split()) == set(SERVICE_PORTS), "the init script makes a role per service"
    assert '-v role="shouhu_${service}"' in script
    (create_role,) = re.findall(r"^CREATE ROLE .*$", script, re.M)
    options = set(re.sub(r"PASSWORD\s+:'pw'", "", create_role.removeprefix('CREATE ROLE :"role"').rstrip(";")).upper().split())
    assert {"LOGIN", "NOSUPERUSER", "NOBYPASSRLS", "NOCREATEROLE", "NOCREATEDB"} <= options, create_role
    assert not options & {"SUPERUSER", "BYPASSRLS", "CREATEROLE", "CREATEDB", "REPLICATION"}, create_role
    assert re.search(r'^CREATE DATABASE :"role" OWNER :"role";$', script, re.M)
    assert re.search(r'^REVOKE ALL ON DATABASE :"role" FROM PUBLIC;$', script, re.M)
    # Nothing later gives the roles back what CREATE ROLE withheld (ALTER ROLE ... SUPERUSER, GRANT ...).
    assert not re.search(r"^\s*(ALTER\s+ROLE|ALTER\s+USER|GRANT)\b", script, re.M | re.I)
    problems = []
    for service in SERVICE_PORTS:
        for name in (service, f"{service}-migrate"):
            url = environment(services[name]).get(f"SHOUHU_{service.upper()}_DATABASE_URL") or ""
            m = re.fullmatch(r"postgresql\+asyncpg://([^:@]+):\$\{[^}]+\}@postgres:5432/(\w+)", url)
            if not m or m.groups() != (f"shouhu_{service}", f"shouhu_{service}"):
                problems.append(f"{name}: {url!r} is not shouhu_{service}:${{...}}@postgres:5432/shouhu_{service}")
    assert not problems, "\n".join(problems)


def test_postgres_runs_with_the_repository_configuration_and_autovacuum_on(services):
    """The server reads deploy/postgres/postgresql.conf: listening beyond localhost, autovacuum on (the
    outboxes, positions and timers are rewritten all the time), every commit durable."""
    pg = services["postgres"]
    cmd = command(pg)
    config = next(a.split("=", 1)[1] for a in cmd if a.startswith("config_file="))
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in pg.get("volumes") or []}
    assert mounts.get(config) == "./deploy/postgres/postgresql.conf", (config, mounts)
    settings = dict(
        (k.strip(), v.split("#")[0].strip().strip("'"))
        for k, _, v in (line.partition("=") for line in
                        (ROOT / "deploy/postgres/postgresql.conf").read_text(encoding="utf-8").splitlines())
        if k.strip() and not k.lstrip().startswith("#")
    )
    assert settings["listen_addresses"] == "*", "the services reach it from other containers"
    assert settings["autovacuum"] == "on" and settings["synchronous_commit"] == "on", settings
