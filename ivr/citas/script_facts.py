"""The citas line's IVR facts for where a desk script opens (issue 12 §3).

The desk's script runner (``ivr.desk.script_runner``) opens a script at the first
entry rule matching the contact's facts (``ivr.desk.scripts.ENTRY_FACTS``). The
platform knows the contact and its screen pop (words for people); the codes the
rules are written with come from the line: here, from the call's record (found
by the ``CITAS_CALL_ID`` the contact carries, ``sip_call_id``), which the transfer
writes before the call reaches the queue:

- ``reason``: the transfer's reason (``non-target``, ``incident``…), the last
  ``transfer`` step of the path;
- ``segment``, ``eligibility`` (``eligibility_reasons``: ``age_out_of_band:70``…),
  ``choice`` (``main_choice``: the main menu's digit): the call's variables;
- ``path``: the flow nodes the call went through, in order.

A chat contact (no ``sip_call_id``), an unknown call or a database that does not
answer gives no facts (the script opens where the pop's own facts say, else at
the call types): an agent is never kept waiting for the entry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ivr.desk.model import Contact
from ivr.failures import failure_text
from ivr.store import StoreUnavailable
from ivr.store.records import CallRecordStore

logger = logging.getLogger(__name__)


class CallRecordFacts:
    """``await facts(contact)`` → the entry facts of a voice contact's call record."""

    def __init__(self, records: CallRecordStore) -> None:
        self.records = records

    async def __call__(self, contact: Contact) -> dict[str, Any]:
        if not contact.sip_call_id:
            return {}
        try:
            rows = await self.records.find_by_sip_call_id(contact.sip_call_id)
        except (StoreUnavailable, SQLAlchemyError, OSError, TimeoutError) as exc:
            logger.warning(
                "script entry for contact %s: no call record (%s)", contact.id, failure_text(exc)
            )
            return {}
        if not rows:
            return {}
        return facts_of_record(rows[-1].variables or {}, rows[-1].path or [])


def facts_of_record(
    variables: Mapping[str, Any], path: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The entry facts of one call record (its ``variables`` and ``path``).

    >>> facts_of_record({"segment": "non_target", "eligibility_reasons": ["age_out_of_band:70"],
    ...                  "main_choice": "1"},
    ...                 [{"kind": "node", "node": "main_menu"}, {"kind": "transfer", "reason": "non-target"}])
    {'reason': 'non-target', 'segment': 'non_target', 'eligibility': ['age_out_of_band:70'], 'choice': '1', 'path': ['main_menu']}
    """
    transfers = [
        str(s.get("reason")) for s in path if s.get("kind") == "transfer" and s.get("reason")
    ]
    facts: dict[str, Any] = {
        "reason": transfers[-1] if transfers else None,
        "segment": variables.get("segment"),
        "eligibility": [str(r) for r in variables.get("eligibility_reasons") or []],
        "choice": str(variables["main_choice"])
        if variables.get("main_choice") is not None
        else None,
        "path": [str(s["node"]) for s in path if s.get("kind") == "node" and s.get("node")],
    }
    return {k: v for k, v in facts.items() if v not in (None, "", [])}
