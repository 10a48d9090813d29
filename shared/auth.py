"""Bearer JWT: a role and a region-code prefix that scopes what the caller sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from shared.settings import Settings


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
    agency: str | None = None
    school: str | None = None

    def covers(self, region_code: str) -> bool:
        return region_code.startswith(self.region)


def issue_token(
    settings: Settings, *, role: Role, subject: str = "dev", region: str = "", agency: str | None = None,
    school: str | None = None, ttl: timedelta = timedelta(hours=8),
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": subject, "role": role.value, "region": region, "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience, "iat": now, "exp": now + ttl,
    }
    if agency:
        claims["agency"] = agency
    if school:
        claims["school"] = school
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def _unauthorized(zh: str, en: str) -> HTTPException:
    return HTTPException(401, detail={"message_zh": zh, "message_en": en}, headers={"WWW-Authenticate": "Bearer"})


def current_principal(request: Request) -> Principal:
    settings: Settings = request.app.state.settings
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("缺少访问令牌", "missing bearer token")
    try:
        claims = jwt.decode(
            token, settings.jwt_secret, algorithms=["HS256"], audience=settings.jwt_audience,
            issuer=settings.jwt_issuer, options={"require": ["exp", "sub", "role"]},
        )
        return Principal(
            subject=claims["sub"], role=claims["role"], region=claims.get("region", ""),
            agency=claims.get("agency"), school=claims.get("school"),
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise _unauthorized("访问令牌无效或已过期", f"invalid or expired token: {type(exc).__name__}") from exc


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
