"""Resident ID numbers at rest (身份证号加密存储): a keyed hash to find duplicates and search, the number
sealed (AES-GCM) for the officer whom the law lets see it, and a masked form for everyone else."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from shared.crypto import KeyRing
from shared.settings import Settings


@dataclass(frozen=True)
class IdVault:
    hash_key: str
    keys: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> "IdVault":
        keys = KeyRing.parse(settings.id_encryption_keys) if settings.id_encryption_keys else KeyRing.derived(settings.jwt_secret)
        return cls(settings.id_hash_key, keys)

    def hash(self, id_number: str) -> str:
        return hmac.new(self.hash_key.encode(), id_number.encode(), hashlib.sha256).hexdigest()

    def seal(self, id_number: str) -> str:
        # Bound to the number's hash, which travels with it (a merge moves both): a sealed number
        # copied onto an archive with another number does not open there.
        return self.keys.seal(id_number, self.hash(id_number).encode())

    def open(self, sealed: str, id_number_hash: str) -> str:
        return self.keys.open(sealed, id_number_hash.encode())

    # An uploaded census roster (names, phones, ID numbers) is sealed whole under the same key ring,
    # bound to its import's id: copied onto another import's row it does not open.
    def seal_roster(self, content: bytes, import_id: object) -> bytes:
        return self.keys.seal_bytes(content, _roster_context(import_id))

    def open_roster(self, sealed: bytes, import_id: object) -> bytes:
        return self.keys.open_bytes(sealed, _roster_context(import_id))


def _roster_context(import_id: object) -> bytes:
    return f"census_import:{import_id}".encode()
