"""The child's archive (儿童档案) as the registry keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID

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
    version: int = 0

    def flat(self) -> dict[str, Any]:
        """Field path -> value, the form in which changes are compared and named."""
        skip = ("father", "mother", "guardian", "version", "id", "id_number_hash", "id_number_masked")
        out = {k: v for k, v in vars(self).items() if k not in skip}
        # Named "id_number" when it changes; compared by hash, so its value is never at hand.
        out["id_number"] = self.id_number_hash
        for person in ("father", "mother", "guardian"):
            for k, v in (getattr(self, person) or {}).items():
                out[f"{person}.{k}"] = v
        return out


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
