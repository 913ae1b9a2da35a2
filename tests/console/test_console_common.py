"""``/console/common.js`` on every console page, in a real Chromium against ``ivr ops serve``.

The kind of fault: a page whose copy of the shared helpers drifted, or that no longer
loads at all (a name of common.js declared again stops the page's own script). For
each page: its own script ran (a function of its own exists), ``api`` sends the
console's token and turns a refusal into an ``ApiError`` with the API's Spanish
message, a server that cannot be reached is ``ApiError(0)`` ("Sin conexión"), and
``showError`` writes the page's prefix, the message and each detail into #error.
"""

from __future__ import annotations

from typing import Any

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import OpsServer
from tests.console.test_console import css

pytestmark = pytest.mark.console

# (page, a function of the page's own script, the prefix its 422 errors show)
PAGES = [
    ("/console", "logout", "Cambio rechazado"),
    ("/console/cases.html", "showLogin", "No se pudo"),
    ("/console/tablero.html", "showLogin", "Consulta rechazada"),
    ("/console/incidents.html", "buildForm", "Reporte rechazado"),
    ("/console/keywords.html", "renderLists", "Cambio rechazado"),
    ("/console/escritorio.html", "renderPop", "No se pudo"),
    ("/console/guiones.html", "renderTree", "Rechazado"),
    ("/console/reportes-escritorio.html", "barChart", "Consulta rechazada"),
]

PROBE = """
const [own, done] = [arguments[0], arguments[arguments.length - 1]];
const out = { own: typeof window[own] === "function" };
(async () => {
  try { await api("GET", "/api/flags/no_such_flag"); out.refused = "no error"; }
  catch (err) { out.refused = [err instanceof ApiError, err.status, err.message]; }
  try { await api("GET", "http://127.0.0.1:9/x"); out.offline = "no error"; }
  catch (err) { out.offline = [err instanceof ApiError, err.status, err.message]; }
  showError(new ApiError(422, { message: "regla rota", details: [{ field: "motivo", message: "obligatorio" }] }));
  out.box = document.getElementById("error").innerText;
  out.hidden = document.getElementById("error").hidden;
  done(out);
})();
"""


@pytest.mark.parametrize(("path", "own", "prefix"), PAGES, ids=[p[0] for p in PAGES])
def test_each_page_runs_on_the_shared_helpers(
    browser: WebDriver, ops_server: OpsServer, path: str, own: str, prefix: str
) -> None:
    token = ops_server.token("vera", "viewer")
    browser.get(ops_server.url + path)
    browser.execute_script("sessionStorage.setItem(arguments[0], arguments[1])",
                           "citas-ops-token", token)  # fmt: skip
    browser.get(ops_server.url + path)
    css(browser, "#error")
    found: dict[str, Any] = browser.execute_async_script(PROBE, own)

    assert found["own"] is True
    ok, status, message = found["refused"]
    assert (ok, status) == (True, 404) and "no_such_flag" in message
    ok, status, message = found["offline"]
    assert (ok, status, message) == (True, 0, "no hay conexión con el servidor; intente de nuevo")
    assert found["hidden"] is False
    assert (
        found["box"].startswith(f"{prefix}: regla rota") and "motivo: obligatorio" in found["box"]
    )
