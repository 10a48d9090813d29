"""Who a recipient is and how to reach them on a channel.

People come from the database (contact cards from the registry, users from
the API); agencies from the configuration file. Addresses are looked up at
each attempt, so a phone corrected in the registry is used by the next retry.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from services.notifications.adapters.orm import users
from services.notifications.config import Agencies, Agency
from services.notifications.domain.model import recipient_key
from shared.db import among
from shared.contracts.notifications_v1 import Channel, MessageRequested, RecipientRole, RecipientSelector

# A user not in the directory is still reached in the app.
DEFAULT_USER_CHANNELS = [Channel.inbox]
_FAMILY_SMS = [Channel.sms]


@dataclass(frozen=True)
class Recipient:
    key: str
    role: RecipientRole
    channels: list[Channel]
    agency: Agency | None = None


class Directory:
    def __init__(self, agencies: Agencies) -> None:
        self.agencies = agencies

    async def user_channels(self, session, requests: list[MessageRequested]) -> dict[str, list[Channel]]:
        """The channels of the users the requests name, in one query (users not in the directory: none)."""
        named = sorted({sel.user_id for r in requests for sel in r.recipients if sel.role is RecipientRole.user})
        if not named:
            return {}
        rows = await session.execute(select(users.c.user_id, users.c.channels).where(among(users.c.user_id, "named")),
                                     {"named": named})
        return {u: [Channel(c) for c in channels] for u, channels in rows}

    def recipients(self, request: MessageRequested, user_channels: dict[str, list[Channel]]) -> list[Recipient]:
        out: list[Recipient] = []
        for sel in request.recipients:
            out += self._select(request, sel, user_channels)
        return list({r.key: r for r in out}.values())  # the same person named twice gets one message

    def _select(self, request: MessageRequested, sel: RecipientSelector, user_channels: dict[str, list[Channel]]) -> list[Recipient]:
        role, child = sel.role, request.child_id
        if role is RecipientRole.guardian:
            return [Recipient(recipient_key("guardian", child), role, _FAMILY_SMS)]
        if role is RecipientRole.parents:
            return [Recipient(recipient_key(p, child), role, _FAMILY_SMS) for p in ("father", "mother")]
        if role is RecipientRole.user:
            channels = user_channels.get(sel.user_id) or DEFAULT_USER_CHANNELS
            return [Recipient(recipient_key("user", sel.user_id), role, channels)]
        agency = self.agencies.find(sel.agency, request.region_code)
        if agency is None:  # not configured for this place: a delivery with no channel, reported as failed
            return [Recipient(recipient_key("agency", f"{sel.agency}@{request.region_code[:6]}"), role, [])]
        return [Recipient(recipient_key("agency", agency.code), role, list(agency.channels), agency)]

    def address(self, recipient: str, channel: Channel, card: dict | None, user_phone: str | None,
                user_email: str | None) -> str | None:
        """Where to reach ``recipient`` on ``channel``, given the child's contact card and the user's
        directory entry as the attempt read them."""
        kind, _, ident = recipient.partition(":")
        if kind == "agency":
            agency = self.agencies.by_code.get(ident)
            if agency is None:
                return None
            return {Channel.webhook: agency.webhook_url, Channel.email: agency.email, Channel.agency_stream: agency.code}.get(channel)
        if kind == "user":
            return ident if channel is Channel.inbox else {Channel.sms: user_phone, Channel.email: user_email}.get(channel)
        if channel is not Channel.sms:
            return None
        return ((card or {}).get(kind) or {}).get("phone")  # kind: guardian, father or mother
