// The console page "Reportes de incidente" (ivr/incidents/http.py): plain DOM over the
// ops API, with the token the console keeps in sessionStorage. Data is written with textContent.
// TOKEN_KEY, ROLE_LEVEL, ROLE_LABEL, $, api, ApiError, showError, showNotice, textCell: common.js.
"use strict";

const CHANNELS = {
  telefono: "Teléfono", whatsapp: "WhatsApp", web: "Página web", app: "Aplicación móvil",
  correo: "Correo electrónico", presencial: "Presencial",
};
const DOCUMENT_TYPES = {
  CC: "Cédula de ciudadanía", TI: "Tarjeta de identidad", RC: "Registro civil",
  CE: "Cédula de extranjería", PA: "Pasaporte", PPT: "Permiso por protección temporal",
};
const SOURCE_LABEL = { default: "por defecto", set: "cambio de un operador", window: "ventana programada" };
const AFFILIATE_FIELDS = ["document-type", "document", "affiliate-name", "affiliate-phone"];
const state = { me: null };

setupErrors({ prefixes: { 422: "Reporte rechazado" } });

const formatTime = (iso) => (iso ? new Date(iso).toLocaleString("es-CO") : "");
const channelNames = (list) => list.map((c) => CHANNELS[c] || c).join(", ");

// --- the form ------------------------------------------------------------------------
function buildForm() {
  const box = $("channels");
  for (const [value, label] of Object.entries(CHANNELS)) {
    const input = document.createElement("input");
    input.type = "checkbox";
    input.name = "channel";
    input.value = value;
    input.id = `channel-${value}`;
    const l = document.createElement("label");
    l.append(input, ` ${label}`);
    box.append(l);
    $("filter-channel").append(new Option(label, value));
  }
  for (const [value, label] of Object.entries(DOCUMENT_TYPES)) $("document-type").append(new Option(`${value} · ${label}`, value));
  $("consent").addEventListener("change", () => {
    for (const id of AFFILIATE_FIELDS) $(id).disabled = !$("consent").checked;
  });
}

async function fileReport(event) {
  event.preventDefault();
  const local = $("occurred-at").value;
  const occurred = local ? new Date(local) : null;
  const consent = $("consent").checked;
  const body = {
    occurred_at: occurred && !isNaN(occurred) ? occurred.toISOString() : "",
    channels: [...document.querySelectorAll('input[name="channel"]:checked')].map((i) => i.value),
    description: $("description").value,
    error_message: $("error-message").value,
    extra: $("extra").value,
    consent,
    case_numbers: $("case-numbers").value.split(/[\s,;]+/).filter((n) => n),
  };
  if (consent) {
    body.document_type = $("document-type").value || null;
    body.document = $("document").value || null;
    body.affiliate_name = $("affiliate-name").value || null;
    body.affiliate_phone = $("affiliate-phone").value || null;
  }
  try {
    const report = await api("POST", "/api/incident-reports", body);
    showNotice(`Reporte ${report.id} registrado (modo incidente ${report.incident.active ? "encendido" : "apagado"} en ese momento).`);
    $("report-form").reset();
    for (const id of AFFILIATE_FIELDS) $(id).disabled = true;
    await refresh();
    await showDetail(report.id);
  } catch (err) {
    showError(err);
  }
}

// --- the list, the filters, the export --------------------------------------------------
function query(extra) {
  const params = new URLSearchParams();
  const since = $("filter-since").value;
  const until = $("filter-until").value;
  if (since) params.set("since", new Date(`${since}T00:00`).toISOString());
  if (until) params.set("until", new Date(new Date(`${until}T00:00`).getTime() + 86400000).toISOString());
  if ($("filter-channel").value) params.set("channel", $("filter-channel").value);
  if ($("filter-case").value.trim()) params.set("case", $("filter-case").value.trim());
  if ($("filter-incident").value) params.set("incident", $("filter-incident").value);
  for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
  return params.toString();
}

function renderReports(reports) {
  const rows = reports.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.report = String(r.id);
    const who = [r.affiliate_name, r.document_type && r.document ? `${r.document_type} ${r.document}` : r.document].filter((x) => x).join(" · ");
    tr.append(textCell(String(r.id), "id"), textCell(formatTime(r.occurred_at)), textCell(channelNames(r.channels), "channels"),
      textCell(who, "affiliate"), textCell(r.error_message, "error-message"),
      textCell(r.incident.active ? "encendido" : "apagado", "incident"), textCell(r.case_numbers.join(", ")), textCell(r.reported_by));
    tr.addEventListener("click", () => showDetail(r.id));
    tr.style.cursor = "pointer";
    return tr;
  });
  $("reports").tBodies[0].replaceChildren(...rows);
}

async function refresh() {
  const data = await api("GET", `/api/incident-reports?${query()}`);
  renderReports(data.reports);
}

async function exportFile(format) {
  try {
    const response = await fetch(`/api/incident-reports?${query({ format })}`, { headers: authHeaders() });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const disposition = response.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename=([^;]+)/) || [null, `reportes-incidente.${format}`])[1];
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    showNotice(`Archivo ${name} descargado.`);
  } catch (err) {
    showError(err);
  }
}

// --- the detail -------------------------------------------------------------------------------
async function showDetail(id) {
  try {
    const r = await api("GET", `/api/incident-reports/${id}`);
    const inc = r.incident;
    let link = SOURCE_LABEL[inc.source] || inc.source;
    if (inc.audit) link += ` · ${inc.audit.actor}, ${formatTime(inc.audit.at)}: «${inc.audit.reason}»`;
    if (inc.window) link += ` · ventana ${formatTime(inc.window.starts_at)} – ${formatTime(inc.window.ends_at)}: «${inc.window.reason}»`;
    const fields = [
      ["Fecha y hora del error", formatTime(r.occurred_at)], ["Canales afectados", channelNames(r.channels)],
      ["Descripción", r.description], ["Mensaje de error", r.error_message], ["Información adicional", r.extra],
      ["Autorización de datos", r.consent ? `sí (${formatTime(r.consent_at)})` : "no"],
      ["Documento", r.document ? `${r.document_type || ""} ${r.document}` : ""], ["Nombre", r.affiliate_name || ""],
      ["Teléfono", r.affiliate_phone || ""],
      ["Modo incidente en ese momento", `${inc.active ? "ENCENDIDO" : "apagado"} (${link})`],
      ["Casos", r.case_numbers.join(", ")], ["Reportado por", `${r.reported_by}, ${formatTime(r.reported_at)}`],
    ];
    const items = [];
    for (const [term, value] of fields) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      items.push(dt, dd);
    }
    $("detail-id").textContent = String(r.id);
    $("detail-fields").replaceChildren(...items);
    $("detail").hidden = false;
  } catch (err) {
    showError(err);
  }
}

async function start() {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    $("login-needed").hidden = false;
    return;
  }
  try {
    state.me = await api("GET", "/api/whoami");
  } catch (err) {
    $("login-needed").hidden = false;
    showError(err);
    return;
  }
  $("whoami").textContent = `${state.me.name} (${ROLE_LABEL[state.me.role] || state.me.role})`;
  buildForm();
  const operator = ROLE_LEVEL[state.me.role] >= ROLE_LEVEL.operator;
  $("operator-only").hidden = operator;
  $("report-fields").disabled = !operator;
  $("report-form").addEventListener("submit", fileReport);
  $("filter-form").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh().catch(showError);
  });
  $("export-csv").addEventListener("click", () => exportFile("csv"));
  $("export-xlsx").addEventListener("click", () => exportFile("xlsx"));
  $("app").hidden = false;
  try {
    await refresh();
  } catch (err) {
    showError(err);
  }
}

document.addEventListener("DOMContentLoaded", start);
