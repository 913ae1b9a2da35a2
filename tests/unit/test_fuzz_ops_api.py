"""The ops API fuzzed from its own OpenAPI document (schemathesis over hypothesis).

The real app (``build_ops_app``) runs on a real socket in a thread with its own
event loop and a real SQLite database; schemathesis reads the document the app
serves (``GET /api/openapi.json``), generates requests that fit it (positive)
and requests that break it (negative), and sends them with ``requests``.
Everything stays on 127.0.0.1. Checked for every request:

- no 5xx, and the status, content type and body are the documented ones;
- every error answer is JSON ``{"error", "message", "details"}``;
- a refused request (4xx) changes neither the flags, the windows, the tokens
  nor the audit trail;
- without a token (or with a wrong one) every protected route answers 401.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from ivr.chat.store import ConversationStore
from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.openapi import OPERATIONS, Operation
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database
from ivr.store.records import CallRecordStore
from tests.unit.databases import TEST_DB_TIMEOUT_S, migrated_database

# Above the test database's own deadline: a stall reads as a 503 from the API, not
# as the client giving up first.
CLIENT_TIMEOUT_S = TEST_DB_TIMEOUT_S + 10


T = TypeVar("T")
BOOTSTRAP = Actor("cli:fuzz", Role.ADMIN)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROTECTED = [op for op in OPERATIONS if op.min_role is not None]


@dataclass
class OpsServer:
    """The ops app on 127.0.0.1 in a thread, with the loop that owns its database."""

    tmp_path: Path
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    tokens: dict[str, str] = field(default_factory=dict)  # role label -> secret
    token_names: set[str] = field(default_factory=set)
    port: int = 0
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _database: AbstractAsyncContextManager[Database] | None = None
    _service: FlagService | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service(self) -> FlagService:
        assert self._service is not None
        return self._service

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, name="ops-fuzz", daemon=True)
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self._database = migrated_database("sqlite", self.tmp_path)
        db = await self._database.__aenter__()
        self._service = FlagService(OpsStore(db), flag_registry(load_reference()))
        for role in Role:
            # Names nobody guesses: a generated DELETE /api/tokens/{name} must not
            # revoke the tokens the fuzzer itself uses.
            name = f"fuzz-{role.label}-{uuid.uuid4().hex}"
            self.tokens[role.label] = await self._service.create_token(
                BOOTSTRAP, name, role, "fuzz"
            )
            self.token_names.add(name)
        app = build_ops_app(
            self._service,
            Metrics(),
            readiness=lambda: {"database": True},
            breaker=lambda: {"state": "closed", "failures": 0},
            chats=ConversationStore(db, flow="citas"),
            calls=CallRecordStore(db),
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self.loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._database is not None:
            await self._database.__aexit__(None, None, None)

    def state(self) -> tuple[object, ...]:
        """Everything a refused request must leave as it was."""

        async def read() -> tuple[object, ...]:
            service = self.service
            return (
                await service.store.revision(),
                [f.as_json() for f in await service.flags()],
                await service.history(limit=100_000),
                await service.windows(include_past=True),
                await service.store.tokens(),
            )

        return self.run(read())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsServer]:
    ops = OpsServer(tmp_path_factory.mktemp("ops-fuzz"))
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
def schema(server: OpsServer, http: requests.Session) -> OpenApiSchema:
    answer = http.get(f"{server.base_url}/api/openapi.json", timeout=10)
    assert answer.status_code == 200
    return schemathesis.openapi.from_dict(answer.json())


def known_path_values(server: OpsServer, case: Case[Any]) -> list[str]:
    """Path values that reach real objects (a flag, a window, a token not ours)."""
    if "{id}" in case.path:
        return [w.id for w in server.run(server.service.windows(include_past=True))]
    if case.path.startswith("/api/tokens/"):
        tokens = server.run(server.service.store.tokens())
        return [t.name for t in tokens if t.name not in server.token_names]
    if case.path.startswith("/api/flags/"):
        return server.service.registry.names()
    return []


def header(response: Response, name: str) -> str:
    """One header of a schemathesis ``Response`` (lowercase keys, list values)."""
    return ", ".join(response.headers.get(name.lower(), []))


def assert_error_shape(response: Response) -> None:
    assert header(response, "Content-Type").startswith("application/json"), response.text
    answer = response.json()
    assert isinstance(answer, dict), response.text
    assert isinstance(answer.get("error"), str) and answer["error"], answer
    assert isinstance(answer.get("message"), str) and answer["message"], answer
    assert isinstance(answer.get("details"), list), answer
    for detail in answer["details"]:
        assert isinstance(detail.get("field"), str) and isinstance(detail.get("message"), str)


def auth_headers(case: Case[Any], token: str) -> dict[str, str]:
    """The role's token, unless the case is a negative one that took its credentials away.

    Schemathesis generates the Authorization header from the security scheme; a
    negative case may drop it ("header: violates required"). Sending the role's
    token anyway undid that negation while schemathesis still counted it, so a
    case whose only other negation never reached the wire (a query value
    ``requests`` drops) was "accepted negative data" (CI of stop 21). Such a case
    goes without credentials: 401 is the refusal it asks for.
    """
    removed = not any(name.lower() == "authorization" for name in (case.headers or {}))
    if case.meta is not None and case.meta.generation.mode.is_negative and removed:
        return {}
    return {"Authorization": f"Bearer {token}"}


def send_and_check(
    server: OpsServer,
    http: requests.Session,
    case: Case[Any],
    role: str,
    checks: list[Any],
) -> Response:
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
    return response


ROLES = st.sampled_from([r.label for r in Role])


def test_valid_requests_never_fail_and_match_the_document(
    server: OpsServer, http: requests.Session, schema: OpenApiSchema
) -> None:
    cases = schema.as_strategy(GenerationMode.POSITIVE)
    statuses: dict[int, int] = {}

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(cases)
        known = known_path_values(server, case)
        use_known: bool = data.draw(st.booleans())
        if known and case.path_parameters and use_known:
            key = next(iter(case.path_parameters))
            case.path_parameters[key] = data.draw(st.sampled_from(known))
        response = send_and_check(server, http, case, data.draw(ROLES), CHECKS)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    fuzz()
    # The fuzz reached both sides: answers that changed something and refusals.
    assert statuses.keys() & {200, 201} and statuses.keys() & {403, 404, 422}, statuses


def test_invalid_requests_are_refused_cleanly_and_change_nothing(
    server: OpsServer, http: requests.Session, schema: OpenApiSchema
) -> None:
    cases = schema.as_strategy(GenerationMode.NEGATIVE)

    @FUZZ
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        send_and_check(
            server, http, data.draw(cases), data.draw(ROLES), [*CHECKS, negative_data_rejection]
        )

    fuzz()


NO_VALID_TOKEN = st.sampled_from(
    [None, "", "Bearer", "Bearer ", "Bearer not-a-token", "Basic Zm9vOmJhcg==", "bearer x y"]
)


@pytest.mark.parametrize("route", PROTECTED, ids=lambda op: f"{op.method} {op.path}")
def test_protected_routes_without_a_valid_token_are_401(
    server: OpsServer, http: requests.Session, schema: OpenApiSchema, route: Operation
) -> None:
    operation = schema.find_operation_by_path(route.method.lower(), route.path)
    assert operation is not None

    @settings(FUZZ, max_examples=12)
    @given(case=operation.as_strategy(), authorization=NO_VALID_TOKEN)
    def fuzz(case: Case[Any], authorization: str | None) -> None:
        before = server.state()
        case.headers.pop("Authorization", None)  # generated from the security scheme
        headers = {} if authorization is None else {"Authorization": authorization}
        response = case.call(
            base_url=server.base_url, session=http, headers=headers, timeout=CLIENT_TIMEOUT_S
        )
        assert response.status_code == 401, (case.method, case.formatted_path, response.text)
        assert header(response, "WWW-Authenticate").startswith("Bearer"), response.headers
        assert_error_shape(response)
        assert server.state() == before

    fuzz()


def test_regression_console_assets_document_their_real_content_types(
    server: OpsServer, http: requests.Session, schema: OpenApiSchema
) -> None:
    # Found by the fuzz: /console/{file} answered text/css and text/javascript
    # while the document promised text/plain.
    operation = schema.find_operation_by_path("get", "/console/{file}")
    assert operation is not None
    documented = set(operation.definition.raw["responses"]["200"]["content"])
    for file in ("console.js", "console.css", "common.js"):
        answer = http.get(f"{server.base_url}/console/{file}", timeout=10)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].split(";")[0] in documented
