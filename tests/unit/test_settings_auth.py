import subprocess
import sys

import jwt
import pytest
from pydantic import ValidationError

from shared.auth import Principal, Role, issue_token
from shared.settings import DEV_JWT_SECRET, Settings
from tests.support import ROOT


def test_dev_gets_the_development_key_other_environments_must_set_one(monkeypatch):
    for name in ("SHOUHU_JWT_SECRET", "SHOUHU_ENV"):
        monkeypatch.delenv(name, raising=False)
    assert Settings(env="dev").jwt_secret == DEV_JWT_SECRET
    with pytest.raises(ValidationError, match="SHOUHU_JWT_SECRET must be set"):
        Settings(env="test")
    with pytest.raises(ValidationError, match="refused in production"):
        Settings(env="prod", jwt_secret=DEV_JWT_SECRET)


def test_environment_names(monkeypatch):
    monkeypatch.setenv("SHOUHU_REDIS_URL", "redis://elsewhere:6380/2")
    monkeypatch.setenv("SHOUHU_VISITS_DATABASE_URL", "postgresql+asyncpg://u@db:5432/v")
    s = Settings(env="dev")
    assert s.redis_url == "redis://elsewhere:6380/2"
    assert s.database_url("visits") == "postgresql+asyncpg://u@db:5432/v"
    assert s.database_url("registry").endswith("/shouhu_registry")


def test_region_scope_is_a_prefix():
    township = Principal(subject="u", role=Role.township, region="410523100")
    assert township.covers("410523100201")
    assert not township.covers("410523101201")
    assert Principal(subject="a", role=Role.admin).covers("110105000000")


def test_shouhu_token_command_prints_a_token_with_role_and_scope():
    env = {"SHOUHU_ENV": "dev", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli", "token", "--role", "school", "--region", "410523", "--school", "s-9"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    claims = jwt.decode(out, DEV_JWT_SECRET, algorithms=["HS256"], audience="shouhu")
    assert (claims["role"], claims["region"], claims["school"]) == ("school", "410523", "s-9")
    bad = subprocess.run(
        [sys.executable, "-m", "shared.cli", "token", "--role", "emperor"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert bad.returncode != 0 and "unknown role" in bad.stderr


def test_tokens_expire_and_are_bound_to_issuer_and_audience():
    s = Settings(env="test", jwt_secret="k" * 32)
    t = issue_token(s, role=Role.admin)
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(t, s.jwt_secret, algorithms=["HS256"], audience="someone-else")
    from datetime import timedelta

    expired = issue_token(s, role=Role.admin, ttl=timedelta(seconds=-1))
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(expired, s.jwt_secret, algorithms=["HS256"], audience=s.jwt_audience)


def test_in_production_the_registry_refuses_to_start_without_its_id_hash_key_and_the_others_do_not_need_it():
    from services.registry.app import SPEC as REGISTRY
    from services.reporting.app import SPEC as REPORTING
    from shared.service import create_app

    settings = Settings(env="prod", jwt_secret="k" * 32)
    with pytest.raises(ValueError, match="SHOUHU_ID_HASH_KEY"):
        create_app(REGISTRY, settings)
    create_app(REPORTING, settings)  # builds without it: no connection is made
