from collections.abc import Callable
from typing import Self

from sqlalchemy import event

from shared.uow import SqlUnitOfWork


class NotificationsUnitOfWork(SqlUnitOfWork):
    """Notifications' unit of work: a second transaction beside the current one, and work after a commit."""

    def sibling(self) -> Self:
        """A second, independent transaction: for what must commit although the current one rolls back."""
        return type(self)(self._sessionmaker, self._outbox)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this transaction has committed (never if it rolls back)."""
        event.listen(self.session.sync_session, "after_commit", lambda _session: callback(), once=True)

