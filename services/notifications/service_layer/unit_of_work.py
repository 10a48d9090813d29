from typing import Self

from shared.uow import SqlUnitOfWork


class NotificationsUnitOfWork(SqlUnitOfWork):
    def sibling(self) -> Self:
        """A second, independent transaction: for what must commit although the current one rolls back."""
        return type(self)(self._sessionmaker, self._outbox)
