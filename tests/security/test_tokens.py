"""Tokens (令牌): short-lived, bound to issuer and audience, the development key refused in
production, and an OIDC issuer's key set (JWKS) usable instead of the shared secret."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from shared.auth import Role, issue_token, verify_token
from shared.settings import DEV_JWT_SECRET, Settings

SECRET = "s" * 40


def _settings(**kw) -> Settings:
    return Settings(env="test", jwt_secret=SECRET, **kw)


def _claims(s: Settings, **over) -> dict:
    now = datetime.now(UTC)
    return {"sub": "u1", "role": "township", "region": "410523100", "iss": s.jwt_issuer, "aud": s.jwt_audience,
            "iat": now, "exp": now + timedelta(minutes=30)} | over


async def test_a_well_formed_token_names_its_principal():
    s = _settings()
    p = await verify_token(s, issue_token(s, role=Role.township, subject="u1", region="410523100", ttl=timedelta(minutes=30)))
    assert (p.subject, p.role, p.region) == ("u1", Role.township, "410523100")


@pytest.mark.parametrize("change", [
    {"exp": None}, {"iat": None}, {"iss": "someone-else"}, {"aud": "another-system"}, {"iss": None},
    {"exp": datetime.now(UTC) - timedelta(minutes=5)},
])
async def test_tokens_without_expiry_or_for_another_issuer_or_audience_are_refused(change):
    s = _settings()
    claims = {k: v for k, v in (_claims(s) | change).items() if v is not None}
    with pytest.raises(jwt.PyJWTError):
        await verify_token(s, jwt.encode(claims, SECRET, algorithm="HS256"))


async def test_a_token_living_longer_than_the_maximum_is_refused_and_not_issued():
    s = _settings(jwt_max_ttl_minutes=60)
    now = datetime.now(UTC)
    long_lived = jwt.encode(_claims(s, iat=now, exp=now + timedelta(hours=3)), SECRET, algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError, match="lifetime"):
        await verify_token(s, long_lived)
    with pytest.raises(ValueError, match="SHOUHU_JWT_MAX_TTL_MINUTES"):
        issue_token(s, role=Role.admin, ttl=timedelta(hours=2))


def test_production_refuses_the_development_key_and_a_missing_key(monkeypatch):
    monkeypatch.delenv("SHOUHU_JWT_SECRET", raising=False)
    with pytest.raises(ValidationError, match="refused in production"):
        Settings(env="prod", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValidationError, match="SHOUHU_JWT_SECRET must be set"):
        Settings(env="prod")
    assert Settings(env="prod", jwt_jwks_url="https://idp.example/jwks").jwt_secret == ""


@pytest.fixture
def jwks_server():
    """An OIDC issuer's key set served over HTTP from this process, with its private key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "use": "sig", "alg": "RS256"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    server.shutdown()
    server.server_close()


async def test_an_oidc_issuers_key_set_verifies_its_tokens_and_only_those(jwks_server):
    url, key = jwks_server
    s = _settings(jwt_jwks_url=url, jwt_issuer="https://idp.example", jwt_audience="shouhu-api")
    signed = jwt.encode(_claims(s), key, algorithm="RS256", headers={"kid": "k1"})
    p = await verify_token(s, signed)
    assert (p.subject, p.region) == ("u1", "410523100")

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(jwt.PyJWTError):
        await verify_token(s, jwt.encode(_claims(s), stranger, algorithm="RS256", headers={"kid": "k1"}))
    # The shared secret no longer signs anything once an issuer's keys are configured.
    with pytest.raises(jwt.PyJWTError):
        await verify_token(s, jwt.encode(_claims(s), SECRET, algorithm="HS256", headers={"kid": "k1"}))
