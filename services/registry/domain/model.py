"""The child's archive (儿童档案) as the registry keeps it."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

# The open archive that holds an ID number when it lies outside the caller's area (身份证号全省唯一): the number is
# refused, and that archive is not shown.
OUTSIDE_THE_AREA = UUID(int=0)


# Fields whose values are personal data: they travel only on registry.contacts.
CONTACT_FIELDS = ("name", "father.name", "father.phone", "mother.name", "mother.phone", "guardian.name", "guardian.phone")


@dataclass
class Child:
    id: UUID
    name: str
    gender: str
    birth_date: date
    hukou_status: str
    village_code: str
    left_behind_type: str
    father: dict[str, Any]
    mother: dict[str, Any]
    guardian: dict[str, Any] | None = None
    school_id: str | None = None
    class_name: str | None = None
    risk_categories: list[str] = field(default_factory=list)
    id_number_hash: str | None = None
    id_number_masked: str | None = None
    # The number itself, sealed (AES-GCM, shared.crypto): opened only for an officer the law lets see it.
    id_number_sealed: str | None = None
    # 知情同意: the guardian's consent to processing (given | withdrawn; null: not yet recorded), since when.
    consent: str | None = None
    consent_on: date | None = None
    # De-identified (去标识化) after the retention period of a closed archive: names, phones, ID data gone.
    deidentified_on: date | None = None
    enrolment_status: str | None = None
    # 无人监护: why the child has no valid guardian now (an UnguardedCause), and since when.
    unguarded_cause: str | None = None
    unguarded_since: date | None = None
    archive_status: str = "open"  # open | closed (结档: read-only)
    closed_reason: str | None = None
    closed_on: date | None = None
    merged_into: UUID | None = None
    version: int = 0

    @property
    def name_key(self) -> str:
        return name_key(self.name)

    @property
    def is_open(self) -> bool:
        return self.archive_status == "open"

    def flat(self) -> dict[str, Any]:
        """Field path -> value, the form in which changes are compared and named (the archive's
        facts; its state, kept by the lifecycle commands, is not among them)."""
        out = {k: v for k, v in vars(self).items() if k not in _NOT_FACTS}
        # Named "id_number" when it changes; compared by hash, so its value is never at hand.
        out["id_number"] = self.id_number_hash
        for person in ("father", "mother", "guardian"):
            for k, v in (getattr(self, person) or {}).items():
                out[f"{person}.{k}"] = v
        return out


_NOT_FACTS = frozenset((
    "father", "mother", "guardian", "version", "id", "id_number_hash", "id_number_masked", "id_number_sealed", "enrolment_status",
    "consent", "consent_on", "deidentified_on",
    "unguarded_cause", "unguarded_since", "archive_status", "closed_reason", "closed_on", "merged_into",
))


def name_key(name: str) -> str:
    """A name as compared: full-width folded to half-width (NFKC) and without white space, so that
    "张　三", "张三" and "ＺＨＡＮＧ San" match what they should."""
    return re.sub(r"\s", "", unicodedata.normalize("NFKC", name))


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
