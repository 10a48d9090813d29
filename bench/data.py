"""Realistic registrations and events: varied places, ages, families and risks.

Deterministic (seeded) so that every run and both sides of a comparison get
the same mix.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

from services.registry.domain.rules import id_check_char
from shared.contracts.registry_v1 import CHILD_REGISTERED, ChildRegistered, RiskCategory

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "子涵欣怡梓轩浩然雨桐宇航一诺思远佳琪俊杰紫萱晨曦博文嘉怡明轩诗涵志强婷婷"
_WORK_PLACES = ("广东东莞", "广东深圳", "浙江义乌", "江苏苏州", "上海", "北京", "福建晋江", "新疆")
_CLASSES = ("一年级一班", "二年级三班", "三年级二班", "四年级一班", "五年级二班", "六年级一班", "初一(3)班", "初二(1)班")
_RISKS = [r.value for r in RiskCategory]


def _villages(rng: random.Random, n: int = 400) -> list[str]:
    """Villages of a few counties of one province (41 Henan): 2+2+2+3+3 digits."""
    out = set()
    while len(out) < n:
        out.add(f"4105{rng.choice((22, 23, 26, 27)):02d}{rng.randint(100, 112):03d}{rng.randint(200, 230):03d}")
    return sorted(out)


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


def _name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2))))


def _id_number(rng: random.Random, village: str, birth: date, gender: str) -> str:
    seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "male" else (0, 2, 4, 6, 8))
    first17 = f"{village[:6]}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


class Population:
    def __init__(self, seed: int = 20261123) -> None:
        self.rng = random.Random(seed)
        self.villages = _villages(self.rng)
        self.today = date.today()
        self._id_numbers: set[str] = set()  # one child per ID number: the registry refuses a second

    def child(self) -> dict:
        """A POST /api/v1/children body, as a township clerk would send it."""
        rng = self.rng
        village = rng.choice(self.villages)
        gender = rng.choice(("male", "female"))
        birth = self.today - timedelta(days=rng.randint(3 * 365, 16 * 365))
        both_out = rng.random() < 0.8
        father = {"name": _name(rng), "status": "migrant_worker", "work_place": rng.choice(_WORK_PLACES), "phone": _phone(rng)}
        mother = {"name": _name(rng), "status": "migrant_worker" if both_out else rng.choice(("incapable", "deceased"))}
        if mother["status"] == "migrant_worker":
            mother |= {"work_place": rng.choice(_WORK_PLACES), "phone": _phone(rng)}
        body = {
            "name": _name(rng),
            "gender": gender,
            "birth_date": birth.isoformat(),
            "hukou_status": "registered" if rng.random() < 0.97 else "unregistered",
            "village_code": village,
            "school_id": f"school-{village[:9]}-{rng.randint(1, 3)}",
            "class_name": rng.choice(_CLASSES),
            "left_behind_type": "both_parents_out" if both_out else "one_out_other_incapable",
            "father": father,
            "mother": mother,
            "risk_categories": rng.sample(_RISKS, k=rng.choice((0, 0, 0, 0, 1, 1, 2))),
        }
        if rng.random() < 0.7:  # not every archive has the ID number yet
            number = _id_number(rng, village, birth, gender)
            if number not in self._id_numbers:
                self._id_numbers.add(number)
                body["id_number"] = number
        if rng.random() < 0.92:
            body["guardian"] = {
                "name": _name(rng),
                "relationship": rng.choice(("grandparent", "grandparent", "grandparent", "relative", "sibling")),
                "capacity": rng.choice(("full", "limited", "limited")),
                "phone": _phone(rng),
            }
        return body

    def registered_event(self) -> bytes:
        """The registry.child.registered envelope of a new child, as the outbox relay writes it."""
        body = self.child()
        data = ChildRegistered(
            child_id=uuid.uuid4(),
            gender=body["gender"],
            birth_date=body["birth_date"],
            village_code=body["village_code"],
            hukou_status=body["hukou_status"],
            school_id=body["school_id"],
            class_name=body["class_name"],
            left_behind_type=body["left_behind_type"],
            father_status=body["father"]["status"],
            mother_status=body["mother"]["status"],
            guardian_relationship=(body.get("guardian") or {}).get("relationship"),
            risk_categories=body["risk_categories"],
        )
        envelope = CHILD_REGISTERED.envelope(
            data, producer="registry", aggregate_id=str(data.child_id), aggregate_version=1,
            region_code=body["village_code"], actor="bench", correlation_id=uuid.uuid4(),
        )
        return envelope.model_dump_json().encode()

