"""The tables of issue 11 that the reports read, under the names the report tests use.

Every one is made by the migrations (cases 0007, escalation attempts 0008, surveys
0009, text analyses 0010): the tests seed the real tables.
"""

from __future__ import annotations

from ivr.cases.tables import CaseEventRow, CaseRow
from ivr.escalation.tables import EscalationAttemptRow
from ivr.surveys.tables import SurveyRow
from ivr.text.tables import TextAnalysisRow

# Core's tables (migration 0007), under the names the tests use.
CASES = CaseRow.__table__
CASE_EVENTS = CaseEventRow.__table__
# The surveys part's table (migration 0009, in main).
SURVEYS = SurveyRow.__table__
# The escalation part's table (migration 0008, in main).
ESCALATION_ATTEMPTS = EscalationAttemptRow.__table__
# The sentiment part's table (migration 0010, in main).
TEXT_ANALYSES = TextAnalysisRow.__table__
