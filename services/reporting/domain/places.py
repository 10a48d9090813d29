"""Places: a village code (12 digits) rolls up to township (9), county (6), city (4), province (2)."""

LEVELS = (2, 4, 6, 9, 12)


def enclosing_places(village_code: str) -> list[str]:
    return [village_code[:n] for n in LEVELS]
