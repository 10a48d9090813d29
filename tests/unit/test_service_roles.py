"""The harnesses (benches, chaos) start services as their own roles, not as the superuser they administer with."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from shared.security.roles import as_service_roles, service_role
from shared.settings import SERVICES, Settings


def test_each_service_connects_as_its_own_role_to_the_same_database():
    admin = Settings(env="test", jwt_secret="k" * 32, **{f"{s}_database_url": f"postgresql+asyncpg://postgres:pw@db:5432/bench_{s}"
                                    for s in SERVICES})
    services = as_service_roles(admin)
    for s in SERVICES:
        url = make_url(services.database_url(s))
        assert (url.username, url.password) == (service_role(s), None), s
        assert (url.host, url.port, url.database) == ("db", 5432, f"bench_{s}"), s
    assert admin.database_url("registry").startswith("postgresql+asyncpg://postgres:pw@"), "the admin's stay"
    assert len({service_role(s) for s in SERVICES}) == len(SERVICES)
