"""The scripts' routes (``ivr.desk.scripts_http``) on the ops API, over a real socket
and a real database (SQLite; PostgreSQL too with CITAS_TEST_PG_URL).

The kinds of fault: a version change made by a role below admin; a tree saved that
does not validate, or refused without the validator's Spanish details; a YAML text
that breaks with an English or lineless error; the default tree not seeded on a
fresh database; an agent's step, stale answer or close answered with the wrong
status or shape. Each route's refusals over their range (tables).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from ivr.citas.flags import flag_registry
from ivr.citas.reference import load_reference
from ivr.desk.config import load_desk_config
from ivr.desk.model import VOICE, NewContact
from ivr.desk.script_runner import ScriptRunner
from ivr.desk.scripts import validate_tree
from ivr.desk.scripts_http import default_tree, scripts_extension
from ivr.desk.store import DeskStore, ScriptStore
from ivr.ops.api import build_ops_app
from ivr.ops.flags import Role
from ivr.ops.metrics import Metrics
from ivr.ops.service import Actor, FlagService
from ivr.ops.store import OpsStore
from ivr.store.db import Database

REPO = Path(__file__).resolve().parents[2]
CITAS = REPO / "config" / "citas"
BOOTSTRAP = Actor("cli:test", Role.ADMIN)
ROLES = {"admin": Role.ADMIN, "ana": Role.OPERATOR, "bruno": Role.OPERATOR, "vera": Role.VIEWER}


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    desk: DeskStore

    async def call(self, who: str | None, method: str, path: str, body: Any = None) -> ClientResponse:  # fmt: skip
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return await self.client.request(method, path, headers=headers, json=body)

    async def answer(self, who: str, method: str, path: str, body: Any = None, status: int = 200) -> Any:  # fmt: skip
        response = await self.call(who, method, path, body)
        data = await response.json()
        assert response.status == status, data
        return data


@pytest.fixture
async def api(db: Database) -> AsyncIterator[Api]:
    service = FlagService(OpsStore(db), flag_registry(load_reference()))
    tokens = {name: await service.create_token(BOOTSTRAP, name, role, "pruebas") for name, role in ROLES.items()}
    scripts = ScriptStore(db, validate_tree)
    desk = DeskStore(db)
    runner = ScriptRunner(desk, scripts, load_desk_config(CITAS / "desk.yaml"))
    app = build_ops_app(service, Metrics(), readiness=lambda: {"database": True},
                        extensions=[scripts_extension(scripts, runner, default_tree(CITAS / "scripts.yaml"))])  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Api(client, tokens, desk)


def yaml_text() -> str:
    return (CITAS / "scripts.yaml").read_text(encoding="utf-8")


async def test_a_fresh_database_serves_the_default_tree_as_version_1(api: Api) -> None:
    listed = await api.answer("admin", "GET", "/api/desk/scripts")
    assert listed["live"] == 1 and [v["version"] for v in listed["versions"]] == [1]
    assert listed["versions"][0]["state"] == "published" and "tree" not in listed["versions"][0]
    one = await api.answer("admin", "GET", "/api/desk/scripts/1")
    assert one["tree"]["call_types"][0]["id"] == "agendamiento" and "¿Cuenta con un smartphone?" in one["yaml"]


async def test_an_admin_saves_a_draft_and_publishes_it(api: Api) -> None:
    text = yaml_text().replace("Lina le muestra los cupos", "Lina le ofrece los cupos")
    checked = await api.answer("admin", "POST", "/api/desk/scripts/validate", {"yaml": text})
    assert checked == {"valid": True, "details": []}
    created = await api.answer("admin", "POST", "/api/desk/scripts", {"yaml": text, "note": "texto de Lina"}, 201)
    assert (created["version"], created["state"], created["created_by"]) == (2, "draft", "token:admin")
    assert (await api.answer("admin", "GET", "/api/desk/scripts"))["live"] == 1
    published = await api.answer("admin", "POST", "/api/desk/scripts/2/publish")
    assert (published["state"], published["published_by"]) == ("published", "token:admin")
    listed = await api.answer("admin", "GET", "/api/desk/scripts")
    assert listed["live"] == 2 and [v["state"] for v in listed["versions"]] == ["published", "retired"]
    as_json = await api.answer("admin", "POST", "/api/desk/scripts", {"tree": created["tree"], "note": "copia"}, 201)
    assert as_json["version"] == 3


BROKEN = [  # (change to the shipped YAML, a detail the answer must carry)
    (("next: invitar_lina}, {id: \"no\", label: \"No\", next: ayuda}", "next: invitar_lina}, {id: \"no\", label: \"No\", next: ayudar}"),
     "agendamiento/no_pudo_agendar/sin_cupo/smartphone: 'next: ayudar' no es un paso de este escenario ni un procedimiento"),
    (("{id: \"no\", label: \"No\", next: ayuda}", "{id: no, label: \"No\", next: ayuda}"), "valor sí/no"),
    (("Busque cupos de {servicio}", "Busque cupos de {especialidad}"),
     "procedimiento/agendar_asesor/buscar: la variable {especialidad} no está declarada"),
    (("dispositions: [remitido_whatsapp]", "dispositions: [whatsapp]"), "la tipificación 'whatsapp' no está definida"),
    (("  - id: invitar_lina\n", "  - id: invitar_lina\n    color: verde\n"), "procedures[0].color: campo desconocido"),
    (("variables:\n", "variables: [\n"), "línea"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "detail"), BROKEN, ids=[d[:30] for _, d in BROKEN])
async def test_a_tree_that_does_not_validate_is_refused_with_the_validators_details(
    api: Api, change: tuple[str, str], detail: str,
) -> None:  # fmt: skip
    old, new = change
    assert old in yaml_text()
    text = yaml_text().replace(old, new, 1)
    checked = await api.answer("admin", "POST", "/api/desk/scripts/validate", {"yaml": text})
    assert not checked["valid"] and any(detail in d for d in checked["details"]), checked
    refused = await api.answer("admin", "POST", "/api/desk/scripts", {"yaml": text, "note": "roto"}, 422)
    assert refused["error"] == "invalid" and refused["message"] == "el guion no es válido"
    assert any(detail in d["message"] for d in refused["details"]), refused
    assert [v["version"] for v in (await api.answer("admin", "GET", "/api/desk/scripts"))["versions"]] == [1]


@pytest.mark.parametrize(("who", "status"), [(None, 401), ("vera", 403), ("ana", 403)])
@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/desk/scripts", None), ("GET", "/api/desk/scripts/1", None),
    ("POST", "/api/desk/scripts", {"yaml": "x: 1", "note": "n"}),
    ("POST", "/api/desk/scripts/validate", {"yaml": "x: 1"}), ("POST", "/api/desk/scripts/1/publish", None),
])  # fmt: skip
async def test_only_admins_touch_versions(api: Api, who: str | None, status: int, method: str, path: str, body: Any) -> None:
    response = await api.call(who, method, path, body)
    assert response.status == status


async def test_version_refusals(api: Api) -> None:
    assert (await api.answer("admin", "GET", "/api/desk/scripts/9", status=404))["error"] == "not_found"
    assert (await api.answer("admin", "POST", "/api/desk/scripts/9/publish", status=404))["error"] == "not_found"
    no_note = await api.answer("admin", "POST", "/api/desk/scripts", {"yaml": yaml_text()}, 422)
    assert no_note["details"] == [{"field": "note", "message": "requerida"}]
    both = await api.call("admin", "POST", "/api/desk/scripts", {"yaml": "a: 1", "tree": {}, "note": "n"})
    assert both.status == 422


async def open_contact(api: Api, agent: str = "7001", context: dict[str, Any] | None = None) -> str:
    contact = await api.desk.open_contact(NewContact(
        kind=VOICE, agent=agent, agent_name="Ana Gómez", queue="general", level=1, area="recepcion",
        journey_key=f"j{agent}", answered_at=datetime(2026, 12, 4, 15, 0, tzinfo=UTC),
        context=context if context is not None else {"ivr": {"reason": "non-target", "eligibility": ["plan_not_in_scope:PAC"]},
                                                     "caller": {"name": "Ana María Pérez"}},
        source_key=f"j{agent}/{agent}",
    ))  # fmt: skip
    return contact.id


async def test_an_agent_follows_the_script_to_a_disposition(api: Api) -> None:
    cid = await open_contact(api)
    base = f"/api/desk/contacts/{cid}"
    view = await api.answer("ana", "POST", f"{base}/script/start")
    assert view["node"]["id"] == "agendamiento/no_objetivo/plan/saludo" and "Ana María Pérez" in view["node"]["text"]
    while not view["closing"]:
        answer = view["node"]["answers"][0]["id"]
        view = await api.answer("ana", "POST", f"{base}/script/answer", {"node_id": view["node"]["id"], "answer": answer})
    assert view["labels"]["procedure"] == "Orientación a la línea de su plan"
    assert [d["id"] for d in view["dispositions"]] == ["orientado_otro_canal"]
    assert [s["node_id"].rsplit("/", 1)[-1] for s in view["path"]] == ["saludo", "contexto", "linea", "despedida", "cierre"]
    assert [s["answer_label"] for s in view["path"]] == ["Continuar"] * 4 + [None]
    refused = await api.answer("ana", "POST", f"{base}/close", {"disposition": "agendado"}, 422)
    assert "orientado_otro_canal" in refused["message"]
    empty = await api.answer("ana", "POST", f"{base}/close", {"disposition": ""}, 422)
    assert "tipificación" in empty["message"]
    closed = await api.answer("ana", "POST", f"{base}/close", {"disposition": "orientado_otro_canal", "note": "línea PAC"})
    assert (closed["contact"]["state"], closed["contact"]["disposition"]) == ("closed", "orientado_otro_canal")
    again = await api.answer("ana", "POST", f"{base}/close", {"disposition": "orientado_otro_canal"}, 409)
    assert again["error"] == "conflict"


async def test_agent_refusals(api: Api) -> None:
    cid = await open_contact(api, context={})
    base = f"/api/desk/contacts/{cid}"
    assert (await api.answer("bruno", "POST", f"{base}/script/start", status=403))["error"] == "forbidden"
    assert (await api.answer("admin", "POST", f"{base}/script/start", status=404))["error"] == "not_found"
    assert (await api.answer("ana", "POST", "/api/desk/contacts/nada/script/start", status=404))["error"] == "not_found"
    view = await api.answer("ana", "POST", f"{base}/script/start")
    assert view["node"]["id"] == "inicio"
    wrong = await api.answer("ana", "POST", f"{base}/script/answer", {"node_id": "inicio", "answer": "ventas"}, 422)
    assert "ventas" in wrong["message"]
    moved = await api.answer("ana", "POST", f"{base}/script/answer", {"node_id": "inicio", "answer": "informacion"})
    stale = await api.answer("ana", "POST", f"{base}/script/answer", {"node_id": "inicio", "answer": "informacion"}, 409)
    assert stale["error"] == "conflict" and moved["node"]["id"] in stale["message"]
    bad = await api.call("ana", "POST", f"{base}/script/answer", {"node_id": "x"})
    assert bad.status == 422


async def test_the_guiones_page_and_the_panel_module_are_served(api: Api) -> None:
    pages = await api.answer("vera", "GET", "/api/console/pages")
    assert {"file": "guiones.html", "title": "Guiones", "href": "/console/guiones.html"} in pages["pages"]
    for name, kind in (("guiones.html", "text/html"), ("guiones.js", "javascript"), ("guiones.css", "text/css"),
                       ("desk-script.js", "javascript")):
        response = await api.client.get(f"/console/{name}")
        assert response.status == 200 and kind in response.headers["Content-Type"]
    module = await (await api.client.get("/console/desk-script.js")).text()
    assert "export function mountScript(element, contact)" in module


async def test_the_default_tree_is_seeded_at_start_once(db: Database, tmp_path: Path) -> None:
    from ivr.desk.scripts_http import seed_default_scripts
    from ivr.yamlsrc import ConfigError

    assert await seed_default_scripts(db, tmp_path) is None  # no scripts.yaml: nothing, no error
    seeded = await seed_default_scripts(db, CITAS)
    assert seeded is not None and (seeded.version, seeded.state, seeded.created_by) == (1, "published", "sistema")
    assert await seed_default_scripts(db, CITAS) is None  # once
    (tmp_path / "scripts.yaml").write_text(yaml_text().replace("next: invitar_lina", "next: lina", 1))
    with pytest.raises(ConfigError) as caught:
        await seed_default_scripts(db, tmp_path)
    assert caught.value.line is not None and "'next: lina'" in str(caught.value)
