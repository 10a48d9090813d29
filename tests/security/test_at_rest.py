"""Resident ID numbers at rest (身份证号加密存储): sealed under rotatable keys, bound to their record."""

from __future__ import annotations

import base64
import os

import pytest

from shared.crypto import KeyRing, KeyRingError


def _spec(*ids: str) -> str:
    return ",".join(f"{i}:{base64.b64encode(os.urandom(32)).decode()}" for i in ids)


def test_a_sealed_value_opens_with_its_key_and_context_only():
    ring = KeyRing.parse(_spec("k1"))
    sealed = ring.seal("410523201406010023", b"record-1")
    assert "410523201406010023" not in sealed and sealed.startswith("k1:")
    assert ring.open(sealed, b"record-1") == "410523201406010023"
    with pytest.raises(KeyRingError):
        ring.open(sealed, b"record-2")  # copied onto another record
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(KeyRingError):
        ring.open(tampered, b"record-1")
    with pytest.raises(KeyRingError):
        KeyRing.parse(_spec("other")).open(sealed, b"record-1")


def test_the_newest_key_seals_and_the_older_ones_still_open():
    old = _spec("2025")
    sealed_old = KeyRing.parse(old).seal("x", b"c")
    rotated = KeyRing.parse(old + "," + _spec("2026"))
    assert rotated.current == "2026" and not rotated.is_current(sealed_old)
    assert rotated.open(sealed_old, b"c") == "x"
    assert rotated.is_current(rotated.seal("x", b"c"))


@pytest.mark.parametrize("spec", ["", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode(), "bad id:" + "A" * 44])
def test_an_unusable_key_ring_is_refused(spec):
    with pytest.raises(KeyRingError):
        KeyRing.parse(spec)
