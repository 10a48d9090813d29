from sqlalchemy.ext.asyncio import AsyncSession

from services.registry.adapters.repository import ChildRepository
from shared.uow import SqlUnitOfWork


class RegistryUnitOfWork(SqlUnitOfWork):
    children: ChildRepository

    def bind(self, session: AsyncSession) -> None:
        self.children = ChildRepository(session)
