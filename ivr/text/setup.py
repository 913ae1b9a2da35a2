"""The composition root's entry to text analysis: the keyword extension and the worker."""

from __future__ import annotations

from dataclasses import dataclass

from ivr.cases.store import CaseStore
from ivr.ops.api import ApiExtension
from ivr.store.db import Database
from ivr.text.analysis import TextAnalysisWorker
from ivr.text.case_link import case_priority_raiser
from ivr.text.http import keyword_extension
from ivr.text.keyword_store import KeywordStore


@dataclass(frozen=True)
class TextAnalysis:
    """What the controller runs: the API extension and the worker (``run()``/``stop()``)."""

    extension: ApiExtension
    worker: TextAnalysisWorker


def text_analysis(db: Database, cases: CaseStore) -> TextAnalysis:
    """The keyword lists' routes and page, and the worker analysing ``cases``' texts
    and the survey comments (raising priorities through ``cases``)."""
    keywords = KeywordStore(db)
    worker = TextAnalysisWorker(db, keywords, case_priority_raiser(cases))
    return TextAnalysis(keyword_extension(keywords), worker)
