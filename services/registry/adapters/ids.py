"""Time-ordered ids (UUID version 7, RFC 9562) for the archives the registry makes and the events it writes.

A random (version 4) id lands anywhere in an index, so every insert dirties another page: with a
million children the children's primary key, the audit log's ``record_id`` and every consumer's
table keyed by ``child_id`` (visits, notifications, reporting) or ``event_id`` (the inboxes) are
much larger than PostgreSQL's buffers, and each registration read and wrote a page of each of them
(and, after a checkpoint, a full page image into the WAL). Ids that grow with time are inserted at
the right end of those indexes, a few pages for a whole chunk of children (issue 10).

The first 48 bits are the time in milliseconds (so an id tells when it was made: the archive's
``created_at`` and the event's ``occurred_at`` say so anyway); the other 74 bits are random, and
ids made in the same millisecond by one process step up by a random amount from there, so that
they still grow (an index's rightmost page takes them) and are not guessed one from another.
"""

from __future__ import annotations

import os
import time
from uuid import UUID

_RAND_B = (1 << 62) - 1
_VERSION_VARIANT = 0x7 << 76 | 0x2 << 62
_SEQ_START = (1 << 73) - 1  # a new millisecond starts below half the 74 bits: room to step up within it
_STEP = (1 << 32) - 1  # ids of one millisecond step up by 1 .. 2**32 (2**41 of them before the room ends)


class TimeOrderedIds:
    """Version 7 UUIDs that grow within the process (``uuid()``, or ``text()`` as ``str(uuid)``
    writes it); the randomness is the OS's (os.urandom, as uuid4), drawn 4 KiB at a time."""

    def __init__(self) -> None:
        self._buf, self._at = b"", 0
        self._ms, self._seq = -1, 0

    def _random(self) -> int:
        if self._at >= len(self._buf):
            self._buf, self._at = os.urandom(4096), 0
        at = self._at
        self._at = at + 16
        return int.from_bytes(self._buf[at:at + 16], "big")

    def int(self) -> int:
        ms, r = time.time_ns() // 1_000_000, self._random()
        if ms > self._ms:
            self._ms, self._seq = ms, r & _SEQ_START
        else:  # the same millisecond (or the clock stepped back): after the last id
            self._seq += 1 + (r & _STEP)
            if self._seq >> 74:  # 2**41 ids in one millisecond: go on in the next
                self._ms, self._seq = self._ms + 1, r & _SEQ_START
        seq = self._seq
        return self._ms << 80 | (seq >> 62) << 64 | _VERSION_VARIANT | (seq & _RAND_B)

    def uuid(self) -> UUID:
        return UUID(int=self.int())

    def text(self) -> str:
        h = "%032x" % self.int()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ids = TimeOrderedIds()
new_id = _ids.uuid  # the id of a new archive (or any record the registry makes), time-ordered
