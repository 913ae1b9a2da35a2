"""The analysis worker's link to the cases: a keyword raises a case's priority as the system.

``ivr.text`` imports ``ivr.cases`` here and nowhere else; ``ivr.cases`` never imports
``ivr.text`` (the worker reads the cases table, nothing calls into it), which keeps the
two packages acyclic.
"""

from __future__ import annotations

import logging

from ivr.cases.model import SYSTEM
from ivr.cases.store import CaseConflict, CaseNotFound, CaseStore
from ivr.text.analysis import RaisePriority

logger = logging.getLogger(__name__)


def case_priority_raiser(cases: CaseStore) -> RaisePriority:
    """``raise_priority(number, reason)`` over ``cases``, as ``Actor("sistema", "system")``.

    A case closed (``CaseConflict``) or gone (``CaseNotFound``) since the scan is
    logged and skipped: the analysis is stored either way, with its keywords.
    """

    async def raise_priority(number: str, reason: str) -> None:
        try:
            await cases.raise_priority(number, reason=reason, actor=SYSTEM)
        except (CaseConflict, CaseNotFound) as exc:
            logger.info("case %s: priority not raised (%s)", number, exc)

    return raise_priority
