"""Encryption of single values at rest (加密存储): AES-256-GCM under named keys, so that keys can be rotated.

A key ring is configured as ``id:base64key,id:base64key`` (32-byte keys); the last key seals new values,
every key opens what it sealed. A sealed value is ``<key id>:<base64 of nonce + ciphertext>``, bound to a
context (e.g. the record's id) so that a value copied to another record does not open there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class KeyRingError(ValueError):
    """A key ring that cannot be used, or a sealed value that does not open."""


class KeyRing:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise KeyRingError("a key ring needs at least one key")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id) or len(key) != 32:
                raise KeyRingError(f"key {key_id!r}: ids are 1-32 letters, digits, _ . -; keys are 32 bytes")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = list(keys)[-1]

    @classmethod
    def parse(cls, spec: str) -> "KeyRing":
        """``id:base64key[,id:base64key...]``, oldest first (the newest seals)."""
        keys = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key_id, sep, encoded = part.partition(":")
            try:
                keys[key_id.strip()] = base64.b64decode(encoded.strip(), validate=True) if sep else b""
            except ValueError:
                raise KeyRingError(f"key {key_id!r} is not base64") from None
        return cls(keys)

    @classmethod
    def derived(cls, secret: str, key_id: str = "derived") -> "KeyRing":
        """One key derived from a secret: for development and tests only, where no key is configured."""
        return cls({key_id: hashlib.sha256(b"shouhu-keyring|" + secret.encode()).digest()})

    def seal(self, plaintext: str, context: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.current].encrypt(nonce, plaintext.encode(), context)
        return f"{self.current}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str, context: bytes) -> str:
        key_id, _, encoded = sealed.partition(":")
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyRingError(f"no key {key_id!r} in the ring (was it removed before rotate-keys finished?)")
        try:
            raw = base64.b64decode(encoded, validate=True)
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context).decode()
        except (ValueError, InvalidTag):
            raise KeyRingError(f"a value sealed with key {key_id!r} does not open (altered, or another record's)") from None

    def seal_bytes(self, plaintext: bytes, context: bytes) -> bytes:
        """A file (e.g. an uploaded roster) sealed as ``<key id>:`` + nonce + ciphertext, raw bytes
        (no base64: a roster may be 100 MB)."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.current.encode() + b":" + nonce + self._keys[self.current].encrypt(nonce, plaintext, context)

    def open_bytes(self, sealed: bytes, context: bytes) -> bytes:
        head, _, raw = bytes(sealed).partition(b":")
        key_id = head.decode("ascii", "replace")
        aead = self._keys.get(key_id)
        if aead is None:
            raise KeyRingError(f"no key {key_id!r} in the ring (was it removed before rotate-keys finished?)")
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context)
        except (ValueError, InvalidTag):
            raise KeyRingError(f"a value sealed with key {key_id!r} does not open (altered, or another record's)") from None

    def is_current(self, sealed: str) -> bool:
        return sealed.partition(":")[0] == self.current
