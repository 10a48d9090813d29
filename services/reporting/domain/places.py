"""Places: a village code (12 digits) rolls up to township (9), county (6), city (4), province (2).

A school (学校) is a place of its own, keyed under the county of the child's village
(``<county>.school.<school id>``) so that a token scoped to the county or above sees it.
"""

LEVELS = (2, 4, 6, 9, 12)
LEVEL_NAMES = {2: ("省", "province"), 4: ("市", "city"), 6: ("县", "county"), 9: ("乡镇", "township"), 12: ("村/社区", "village")}


def enclosing_places(code: str) -> list[str]:
    """The division codes that contain ``code`` (itself included), from the province down."""
    return [code[:n] for n in LEVELS if n <= len(code)]


def school_place(village_code: str, school_id: str) -> str:
    return f"{village_code[:6]}.school.{school_id}"


def child_places(village_code: str, school_id: str | None) -> list[str]:
    """Every place a child counts in: its divisions and its school."""
    return enclosing_places(village_code) + ([school_place(village_code, school_id)] if school_id else [])


def next_level(region: str) -> int | None:
    """The length of the codes one level below ``region`` (None under a village)."""
    return next((n for n in LEVELS if n > len(region)), None)
