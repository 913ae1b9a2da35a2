"""From the call to the chat: a short reference of a call, carried by the SMS link.

The IVR's SMS ends with a ``wa.me`` link whose prefilled text holds a short code
of the call (``"Hola, quiero agendar una cita médica (ref. K7Q2M)"``, issue 10
§5). The code is stored in the call record's variables (``chat_ref``) with the
number the SMS went to (``chat_ref_to``, E.164); a chat whose first message
carries it, sent from that same number, within ``REFERENCE_TTL`` of the call,
starts where the call ended. The call record's id is the journey id that links
call and conversation.

Why bound to the number: five characters are short enough to type and to read
on a basic phone, which is also few enough to guess; a reference that worked
from any number would hand a stranger a patient's identification. A chat from
another number is simply identified again (by number, else document).

No table of its own: the code lives in the call record (``call_records.variables``,
JSON), looked up among the records of the last ``REFERENCE_TTL`` (indexed by
``started_at``).

>>> len(new_reference())
5
>>> find_reference("Hola, quiero agendar una cita médica (ref. K7Q2M)")
'K7Q2M'
>>> find_reference("hola ref k7q2m")
'K7Q2M'
>>> find_reference("Hola") is None
True
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.store.db import Database
from ivr.store.models import CallRecordRow

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""Digits and capitals without the look-alikes 0/O, 1/I/L: read aloud or copied by hand."""
LENGTH = 5
REFERENCE_TTL = timedelta(hours=24)
"""How long a call's reference opens the chat where the call ended (then a new chat)."""

REFERENCE_VARIABLE = "chat_ref"
DESTINATION_VARIABLE = "chat_ref_to"

CARRIED = (
    "affiliate_id",
    "identified_by",
    "site_id",
    "plan",
    "age",
    "service_key",
    "service",
    "cups",
    "specialty",
    "segment",
    "eligibility_route",
    "agent_vdn",
)
"""The call's variables a chat resumed from it starts with: who, which service,
and the eligibility decision (never the slots offered on the phone)."""

_IN_TEXT = re.compile(
    rf"\bref\.?\s*[:#]?\s*([{ALPHABET}{ALPHABET.lower()}]{{{LENGTH}}})\b", re.IGNORECASE
)


def new_reference() -> str:
    """A fresh random code of ``LENGTH`` characters of ``ALPHABET`` (``secrets``)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def find_reference(text: str) -> str | None:
    """The reference in a chat message (``ref. K7Q2M``, any case), upper-cased; None if none."""
    match = _IN_TEXT.search(text)
    return match.group(1).upper() if match else None


@dataclass(frozen=True)
class CallReference:
    """A call a chat may continue: ``journey_id`` (the call record id) and the
    ``variables`` of ``CARRIED`` the call decided."""

    code: str
    journey_id: str
    started_at: datetime
    variables: dict[str, Any]


async def resolve_reference(
    db: Database,
    code: str,
    *,
    sender: str,
    now: datetime | None = None,
    ttl: timedelta = REFERENCE_TTL,
) -> CallReference | None:
    """The most recent call within ``ttl`` whose SMS carried ``code`` to ``sender``
    (E.164, ``+57…``); None when there is none (unknown, expired, or another number).

    Raises ``ivr.store.db.StoreUnavailable`` when the database does not answer.
    """
    now = now or datetime.now(UTC)

    async def lookup(session: AsyncSession) -> CallReference | None:
        rows = (
            await session.execute(
                select(CallRecordRow)
                .where(CallRecordRow.started_at >= now - ttl)
                .where(CallRecordRow.variables[REFERENCE_VARIABLE].as_string() == code)
                .order_by(CallRecordRow.started_at.desc())
            )
        ).scalars()
        for row in rows:
            variables = row.variables or {}
            if variables.get(DESTINATION_VARIABLE) != sender:
                continue
            carried = {k: variables[k] for k in CARRIED if k in variables}
            return CallReference(code, row.id, row.started_at, carried)
        return None

    return await db.run("resolve a call reference", lookup)
