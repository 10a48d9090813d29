"""Resident ID numbers at rest (身份证号加密存储): a keyed hash to find duplicates and search, the number
sealed (AES-GCM) for the officer whom the law lets see it, and a masked form for everyone else."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from shared.crypto import KeyRing
from shared.settings import Settings


@dataclass(frozen=True)
class IdVault:
    hash_key: str
    keys: KeyRing
    # The HMAC keyed once; each hash starts from a copy (keying it anew is most of a hash's cost).
    _keyed: hmac.HMAC = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_keyed", hmac.new(self.hash_key.encode(), digestmod=hashlib.sha256))

    @classmethod
    def from_settings(cls, settings: Settings) -> "IdVault":
        keys = KeyRing.parse(settings.id_encryption_keys) if settings.id_encryption_keys else KeyRing.derived(settings.jwt_secret)
        return cls(settings.id_hash_key, keys)

    def hash(self, id_number: str) -> str:
        h = self._keyed.copy()
        h.update(id_number.encode())
        return h.hexdigest()

    def seal(self, id_number: str, id_number_hash: str | None = None) -> str:
        """``id_number_hash``: the number's hash when the caller has it at hand (``hash(id_number)``)."""
        # Bound to the number's hash, which travels with it (a merge moves both): a sealed number
        # copied onto an archive with another number does not open there.
        return self.keys.seal(id_number, (id_number_hash or self.hash(id_number)).encode())

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
