"""Bearer JWT: a role and a region-code prefix that scopes what the caller sees.

Tokens are short-lived (exp and iat required, at most ``jwt_max_ttl_minutes`` apart), bound to an
issuer and an audience, and signed either with the shared secret (HS256) or, when
``jwt_jwks_url`` names an OIDC issuer's key set, with that issuer's keys (RS256/ES256)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from shared.contracts.notifications_v1 import AgencyKind
from shared.security.access import Access, set_access
from shared.settings import Settings

_ASYMMETRIC = ["RS256", "ES256"]


class Role(StrEnum):
    admin = "admin"
    county_office = "county_office"
    township = "township"
    village_supervisor = "village_supervisor"
    school = "school"
    helper = "helper"
    agency = "agency"


class Principal(BaseModel):
    subject: str
    role: Role
    region: str = ""  # division-code prefix; "" sees every place (admin)
    agency: str | None = None  # the agency's code (e.g. edu-410523), for role agency
    # The agency's kind (claim ``agency_kind``), stated by the issuer beside the code. Visits shows an
    # agency the cases disclosed to its kind; the code-to-kind directory is notifications' data, and
    # no service reads another's, so the token carries the kind: verified with the signature, no
    # lookup, no convention on how codes are spelt. An agency token without it sees no case.
    agency_kind: AgencyKind | None = None
    school: str | None = None

    def covers(self, region_code: str) -> bool:
        return region_code.startswith(self.region)


def issue_token(
    settings: Settings, *, role: Role, subject: str = "dev", region: str = "", agency: str | None = None,
    agency_kind: AgencyKind | None = None, school: str | None = None, ttl: timedelta = timedelta(hours=8),
) -> str:
    if ttl > timedelta(minutes=settings.jwt_max_ttl_minutes):
        raise ValueError(f"ttl: at most SHOUHU_JWT_MAX_TTL_MINUTES={settings.jwt_max_ttl_minutes} minutes")
    now = datetime.now(UTC)
    claims = {
        "sub": subject, "role": role.value, "region": region, "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience, "iat": now, "exp": now + ttl,
    }
    if agency:
        claims["agency"] = agency
    if agency_kind:
        claims["agency_kind"] = AgencyKind(agency_kind).value
    if school:
        claims["school"] = school
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def _unauthorized(zh: str, en: str) -> HTTPException:
    return HTTPException(401, detail={"message_zh": zh, "message_en": en}, headers={"WWW-Authenticate": "Bearer"})


@lru_cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)


async def _verification_key(settings: Settings, token: str) -> tuple[object, list[str]]:
    if not settings.jwt_jwks_url:
        return settings.jwt_secret, ["HS256"]
    # urllib under the hood: fetched (once per key, then cached) off the event loop.
    signing = await asyncio.to_thread(_jwks_client(settings.jwt_jwks_url).get_signing_key_from_jwt, token)
    return signing.key, _ASYMMETRIC


async def verify_token(settings: Settings, token: str) -> Principal:
    """The principal a token names, or PyJWTError/ValueError when it is not one we accept."""
    key, algorithms = await _verification_key(settings, token)
    claims = jwt.decode(
        token, key, algorithms=algorithms, audience=settings.jwt_audience, issuer=settings.jwt_issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "role"]}, leeway=30,
    )
    if claims["exp"] - claims["iat"] > settings.jwt_max_ttl_minutes * 60:
        raise jwt.InvalidTokenError("token lifetime exceeds the maximum")
    return Principal(
        subject=claims["sub"], role=claims["role"], region=claims.get("region", ""),
        agency=claims.get("agency"), agency_kind=claims.get("agency_kind"), school=claims.get("school"),
    )


async def current_principal(request: Request) -> Principal:
    """The request's verified principal; also sets the request's access (scope of its database
    transactions, and who/where/why for the audit log)."""
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("缺少访问令牌", "missing bearer token")
    try:
        principal = await verify_token(settings, token)
    except (jwt.PyJWTError, ValueError) as exc:
        raise _unauthorized("访问令牌无效或已过期", f"invalid or expired token: {type(exc).__name__}") from exc
    purpose = (request.headers.get("x-purpose") or "").strip()[:100] or None
    set_access(Access(principal, request.client.host if request.client else None, purpose))
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def role_in(roles: set[Role]):
    """A dependency: the caller's principal, when its role is one of ``roles`` (403 otherwise)."""

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, detail={"message_zh": "无权执行此操作", "message_en": "your role may not do this"})
        return principal

    return check
