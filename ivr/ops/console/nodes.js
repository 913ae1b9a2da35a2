// The console's "Nodos y controladores" panel (docs/operations.md): every controller
// process of every node, from their heartbeats in the shared database (GET
// /api/controllers). Loaded after common.js and before console.js, whose refresh() calls
// refreshNodes(). Data from the API is always written with textContent.
"use strict";

const HEALTH_LABEL = { active: "activo", unresponsive: "sin respuesta", stopped: "detenido" };
const BREAKER_LABEL = { closed: "cerrado", open: "ABIERTO", half_open: "probando el servicio" };

function beatAge(seconds) {
  if (seconds < 60) return `hace ${Math.round(seconds)} s`;
  if (seconds < 3600) return `hace ${Math.floor(seconds / 60)} min`;
  return `hace ${Math.floor(seconds / 3600)} h`;
}

function alertsText(alerts) {
  return alerts.length ? alerts.map((a) => `${a.kind}: ${a.detail}`).join(" · ") : "ninguna";
}

function revisionText(c, current) {
  if (c.health === "stopped") return String(c.flags_revision);
  if (c.flags_current) return `${c.flags_revision} · al día`;
  const mine = c.flags_revision < 0 ? "ninguna" : String(c.flags_revision);
  return `${mine} · atrasado (la base va en ${current})`;
}

function controllerRow(node, c, current) {
  const tr = document.createElement("tr");
  tr.dataset.node = node.node;
  tr.dataset.source = c.source_id;
  tr.dataset.health = c.health;
  tr.dataset.flagsCurrent = String(c.flags_current);
  const seen = c.health === "stopped" ? `detenido ${new Date(c.stopped_at).toLocaleString("es-CO")}`
    : beatAge(c.seen_age_s);
  const behind = c.health !== "stopped" && !c.flags_current;
  tr.append(
    textCell(node.instance, "node name"),
    textCell(`${c.app} (pid ${c.pid})`, "controller name"),
    textCell(HEALTH_LABEL[c.health] || c.health, `health health-${c.health}`),
    textCell(seen, "seen"),
    textCell(revisionText(c, current), behind ? "revision flags-behind" : "revision"),
    textCell(c.breaker ? BREAKER_LABEL[c.breaker] || c.breaker : "—",
      c.breaker && c.breaker !== "closed" ? "breaker breaker-open" : "breaker"),
    textCell(String(c.active_calls), "calls"),
    textCell(c.ari_connected ? "conectado" : "desconectado", c.ari_connected ? "ari" : "ari ari-down"),
    textCell(alertsText(c.alerts), c.alerts.length ? "alerts has-alerts" : "alerts"),
  );
  return tr;
}

function renderNodes(registry) {
  $("nodes-revision").textContent = String(registry.flags_revision);
  $("nodes-stale").textContent = String(registry.stale_after_s);
  $("nodes-beat").textContent = String(registry.heartbeat_s);
  const rows = [];
  for (const node of registry.nodes) {
    const head = document.createElement("tr");
    head.className = "node-row";
    head.dataset.nodeHead = node.node;
    const th = document.createElement("th");
    th.colSpan = 9;
    const alerts = node.alerts.length ? ` · alertas del nodo: ${alertsText(node.alerts)}` : "";
    th.textContent = `Nodo ${node.instance} (${node.host}): ${node.controllers.length} controlador(es)${alerts}`;
    head.append(th);
    rows.push(head, ...node.controllers.map((c) => controllerRow(node, c, registry.flags_revision)));
  }
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = textCell("Ningún controlador ha reportado todavía (ivr serve escribe su latido al arrancar).");
    td.colSpan = 9;
    tr.append(td);
    rows.push(tr);
  }
  $("nodes").tBodies[0].replaceChildren(...rows);
}

async function refreshNodes() {
  try {
    renderNodes(await api("GET", "/api/controllers"));
  } catch (err) {
    showError(err);
  }
}
