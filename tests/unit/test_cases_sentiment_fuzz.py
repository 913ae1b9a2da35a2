"""The keyword and incident-report routes fuzzed from the ops API's own document
(schemathesis, as ``test_fuzz_ops_api`` does for the core routes): no 5xx, answers as
documented, errors in the core's shape, and a refused request changes neither the
keyword lists, their audit nor the incident reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection
from schemathesis.specs.openapi.schemas import OpenApiSchema

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.incidents.http import incident_extension
from ivr.incidents.store import IncidentReportStore, ReportFilter
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import FlagService
from ivr.ops.store import OpsStore
from ivr.text.http import keyword_extension
from ivr.text.keyword_store import KeywordStore
from tests.unit.databases import migrated_database
from tests.unit.test_fuzz_ops_api import (
    BOOTSTRAP,
    CHECKS,
    CLIENT_TIMEOUT_S,
    FUZZ,
    ROLES,
    OpsServer,
    assert_error_shape,
    auth_headers,
)

PARTS = r"^/api/(keyword-lists|keywords|keyword-audit|text/analyse|incident-reports)"


class PartsServer(OpsServer):
    """The ops app with the keyword and incident-report extensions."""

    keywords: KeywordStore | None = None
    reports: IncidentReportStore | None = None

    async def _start(self) -> None:
        self._database = migrated_database("sqlite", self.tmp_path)
        db = await self._database.__aenter__()
        self._service = FlagService(OpsStore(db), flag_registry(load_reference()))
        for role in Role:
            name = f"fuzz-{role.label}-{uuid.uuid4().hex}"
            self.tokens[role.label] = await self._service.create_token(BOOTSTRAP, name, role, "fuzz")  # fmt: skip
            self.token_names.add(name)
        self.keywords = KeywordStore(db)
        legal = await self.keywords.create_list(BOOTSTRAP, "Jurídico", "", "fuzz")
        await self.keywords.add_keyword(BOOTSTRAP, legal.id, "tutela", raises_priority=True, reason="fuzz")  # fmt: skip
        self.reports = IncidentReportStore(db)
        app = build_ops_app(
            self._service, Metrics(), readiness=lambda: {"database": True},
            extensions=[keyword_extension(self.keywords), incident_extension(self.reports)],
        )  # fmt: skip
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def state(self) -> tuple[object, ...]:
        async def read() -> tuple[object, ...]:
            assert self.keywords is not None and self.reports is not None
            return (
                await self.keywords.lists(),
                await self.keywords.history(limit=100_000),
                [
                    r.as_json(masked=False)
                    for r in await self.reports.list(ReportFilter(limit=10**6))
                ],
            )

        return self.run(read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartsServer]:
    ops = PartsServer(tmp_path_factory.mktemp("parts-fuzz"))
    ops.start()
    try:
        yield ops
    finally:
        ops.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def schema(server: PartsServer, http: requests.Session) -> OpenApiSchema:
    answer = http.get(f"{server.base_url}/api/openapi.json", timeout=10)
    assert answer.status_code == 200
    return schemathesis.openapi.from_dict(answer.json()).include(path_regex=PARTS)


def known_ids(server: PartsServer, case: Case[Any]) -> list[str]:
    """Path values that reach real objects (a list, a keyword, a report)."""
    assert server.keywords is not None
    lists = server.run(server.keywords.lists())
    if case.path.startswith("/api/keyword-lists/"):
        return [x.id for x in lists]
    if case.path.startswith("/api/keywords/"):
        return [k.id for x in lists for k in x.keywords]
    return []


def send(server: PartsServer, http: requests.Session, case: Case[Any], role: str, checks: list[Any]) -> int:  # fmt: skip
    before = server.state()
    headers = auth_headers(case, server.tokens[role])
    response = case.call(
        base_url=server.base_url, session=http, headers=headers, timeout=CLIENT_TIMEOUT_S
    )
    case.validate_response(response, checks=checks, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error_shape(response)
        assert server.state() == before, f"{case.method} {case.formatted_path} changed state"
    return response.status_code


def test_valid_requests_never_fail_and_match_the_document(
    server: PartsServer, http: requests.Session, schema: OpenApiSchema
) -> None:
    cases = schema.as_strategy(GenerationMode.POSITIVE)
    statuses: dict[int, int] = {}

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(cases)
        # Always the same draws, whatever exists now: the database changes between
        # examples, and hypothesis replays an example expecting the same draws.
        use_known, pick = data.draw(st.booleans()), data.draw(st.integers(0, 10**6))
        known = known_ids(server, case)
        if known and case.path_parameters and use_known:
            case.path_parameters["id"] = known[pick % len(known)]
        status = send(server, http, case, data.draw(ROLES), CHECKS)
        statuses[status] = statuses.get(status, 0) + 1

    fuzz()
    assert statuses.keys() & {200, 201} and statuses.keys() & {403, 404, 422}, statuses


def test_invalid_requests_are_refused_cleanly_and_change_nothing(
    server: PartsServer, http: requests.Session, schema: OpenApiSchema
) -> None:
    cases = schema.as_strategy(GenerationMode.NEGATIVE)

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        send(server, http, data.draw(cases), data.draw(ROLES), [*CHECKS, negative_data_rejection])

    fuzz()
