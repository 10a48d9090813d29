"""Message templates as data (templates.toml), rendered in a Jinja2 sandbox.

A template edited by an office must not be able to reach into Python, and a
variable it misspells must fail at start-up or at render, not print blank.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from shared.contracts.notifications_v1 import Channel, MessageKind

PARTS = ("subject", "short", "long")
LANGUAGES = ("zh", "en")
# SMS and the inbox line get the short text; the others the long one.
_SHORT = {Channel.sms, Channel.inbox}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str  # Chinese, a blank line, English


class TemplateError(ValueError):
    pass


class Templates:
    def __init__(self, source: dict[str, Any]) -> None:
        env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self._compiled: dict[tuple[str, str, str], Template] = {}
        for kind in MessageKind:
            for part in PARTS:
                for lang in LANGUAGES:
                    try:
                        self._compiled[(kind, part, lang)] = env.from_string(source[kind][part][lang])
                    except KeyError:
                        raise TemplateError(f"template {kind}.{part}.{lang} is missing") from None
                    except Exception as exc:
                        raise TemplateError(f"template {kind}.{part}.{lang}: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> "Templates":
        return cls(tomllib.loads(path.read_text(encoding="utf-8")))

    def render(self, kind: MessageKind, channel: Channel, context: dict[str, Any]) -> Rendered:
        part = "short" if channel in _SHORT else "long"
        subject = [self._compiled[(kind, "subject", lang)].render(context) for lang in LANGUAGES]
        text = [self._compiled[(kind, part, lang)].render(context) for lang in LANGUAGES]
        return Rendered(subject=" / ".join(subject), text="\n\n".join(text))
