"""A refusal a user can act on: which field, and why, in Chinese and English."""


class Refusal(ValueError):
    def __init__(self, code: str, zh: str, en: str, field: str = "body") -> None:
        super().__init__(en)
        self.code, self.zh, self.en, self.field = code, zh, en, field


class NotFound(LookupError):
    """Not there, or not in the caller's area (another area's data is not revealed)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
