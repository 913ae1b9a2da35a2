// The dashboard ("Tablero"): figures, tables and charts of /api/reports/*.
// Charts are inline SVG drawn here (no library, no network: the console runs offline).
// TOKEN_KEY, $, api, ApiError, authHeaders, showError: common.js.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const NUMBER = new Intl.NumberFormat("es-CO", { maximumFractionDigits: 1 });
const BY_LABEL = { day: "día", week: "semana", month: "mes", group: "grupo", site: "sede", person: "persona" };
const ACTION_LABEL = {
  set: "cambio", reset: "valor por defecto", incident_on: "incidente encendido", incident_off: "incidente apagado",
  window_started: "inicio de ventana", window_ended: "fin de ventana", cancel_window: "ventana cancelada",
};

setupErrors({
  prefixes: { 422: "Consulta rechazada" },
  onUnauthorized: () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); },
});

// --- formatting -----------------------------------------------------------------
const num = (n) => (n === null || n === undefined ? "—" : NUMBER.format(n));
const pct = (n) => (n === null || n === undefined ? "—" : `${NUMBER.format(n)} %`);
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const minutes = Math.round(seconds / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min`;
}
function wall(iso) { // the server's local time as written (no conversion by the browser)
  return iso.slice(0, 16).replace("T", " ");
}
function cell(tag, text, cls) {
  const td = document.createElement(tag);
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

// --- SVG --------------------------------------------------------------------------
function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}
function chart(container, width, height, label) {
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
  container.replaceChildren(svg);
  return svg;
}
function empty(svg, width, height) {
  svg.append(svgEl("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "Sin datos en el periodo"));
}

// A key as short as the axis needs: 2026-11-30 → 30/11, 2026-W49 → S49, 2026-11 → 11/2026.
function shortKey(key) {
  let m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(key);
  if (m) return `${m[3]}/${m[2]}`;
  m = /^\d{4}-W(\d{2})$/.exec(key);
  if (m) return `S${m[1]}`;
  m = /^(\d{4})-(\d{2})$/.exec(key);
  if (m) return `${m[2]}/${m[1]}`;
  return key.length > 12 ? `${key.slice(0, 11)}…` : key;
}

// Vertical bars: one per label, its value above it; `low` marks bars under a threshold.
function barChart(container, labels, values, opts = {}) {
  const width = Math.max(360, Math.min(1100, labels.length * 44 + 60));
  const height = 220, left = 40, bottom = 40, top = 16;
  const svg = chart(container, width, height, opts.label || "");
  const known = values.filter((v) => v !== null && v !== undefined);
  if (!known.length || (!opts.keepZeros && known.every((v) => v === 0))) { empty(svg, width, height); return; }
  const max = opts.max || Math.max(...known, 1);
  const slot = (width - left - 10) / labels.length;
  const every = Math.ceil(labels.length / 24); // at most ~24 labels under the axis
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, class: "axis" }));
  labels.forEach((label, i) => {
    const v = values[i];
    const x = left + i * slot + slot * 0.15;
    if (v !== null && v !== undefined) {
      const h = ((height - bottom - top) * v) / max;
      const low = opts.lowBelow !== undefined && v < opts.lowBelow;
      const bar = svgEl("rect", { x, y: height - bottom - h, width: slot * 0.7, height: Math.max(h, 0), class: low ? "bar low" : "bar" });
      bar.append(svgEl("title", {}, `${label}: ${opts.format ? opts.format(v) : num(v)}`));
      svg.append(bar);
      svg.append(svgEl("text", { x: x + slot * 0.35, y: height - bottom - h - 3, "text-anchor": "middle" }, opts.format ? opts.format(v) : num(v)));
    }
    if (i % every === 0) {
      svg.append(svgEl("text", { x: x + slot * 0.35, y: height - bottom + 14, "text-anchor": "middle" }, shortKey(label)));
    }
  });
}

// The funnel: one horizontal bar per stage, as a share of the target callers.
function funnelChart(container, stages, total) {
  const rows = stages.filter((s) => !s.key.startsWith("cases_"));
  const width = 760, rowH = 30, left = 210, height = rows.length * rowH + 10;
  const svg = chart(container, width, height, "Embudo del periodo");
  const base = total.target;
  if (!base) { empty(svg, width, height); return; }
  rows.forEach((stage, i) => {
    const v = total[stage.key];
    const w = ((width - left - 130) * v) / base;
    const y = 5 + i * rowH;
    svg.append(svgEl("text", { x: left - 8, y: y + 18, "text-anchor": "end" }, stage.label));
    const bar = svgEl("rect", { x: left, y, width: Math.max(w, 1), height: rowH - 8, class: `s${i}`, "data-stage": stage.key });
    bar.append(svgEl("title", {}, `${stage.label}: ${v}`));
    svg.append(bar);
    const share = base ? ` (${NUMBER.format((100 * v) / base)} %)` : "";
    svg.append(svgEl("text", { x: left + Math.max(w, 1) + 6, y: y + 18 }, `${v}${share}`));
  });
}

// The timeline: four series as lines, and each flag change as a dashed vertical line.
function timelineChart(container, timeline, markers, step) {
  const width = Math.max(600, Math.min(1200, timeline.length * 18 + 80));
  const height = 240, left = 40, bottom = 40, top = 14;
  const svg = chart(container, width, height, "Embudo en el tiempo");
  const series = ["target", "booked_phone", "redirected", "chats"];
  const max = Math.max(1, ...timeline.map((t) => t.target));
  if (!timeline.length || timeline.every((t) => t.target === 0) && !markers.length) { empty(svg, width, height); return; }
  const x = (i) => left + (i * (width - left - 30)) / Math.max(1, timeline.length - 1);
  const y = (v) => height - bottom - ((height - bottom - top) * v) / max;
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width - 5, y2: height - bottom, class: "axis" }));
  svg.append(svgEl("text", { x: left - 4, y: top + 4, "text-anchor": "end" }, String(max)));
  series.forEach((key, s) => {
    const points = timeline.map((t, i) => `${x(i).toFixed(1)},${y(t[key]).toFixed(1)}`).join(" ");
    svg.append(svgEl("polyline", { points, class: `s${s}`, "data-series": key }));
  });
  const every = Math.ceil(timeline.length / 16);
  timeline.forEach((t, i) => {
    if (i % every) return;
    const label = step === "day" ? t.at.slice(5, 10) : t.at.slice(11, 16);
    svg.append(svgEl("text", { x: x(i), y: height - bottom + 14, "text-anchor": "middle" }, label));
  });
  if (timeline.length) {
    const t0 = Date.parse(timeline[0].at);
    const stepMs = step === "day" ? 86400000 : 3600000;
    for (const m of markers) {
      const pos = x((Date.parse(m.at) - t0) / stepMs);
      const line = svgEl("line", { x1: pos, y1: top, x2: pos, y2: height - bottom, class: "marker" });
      line.append(svgEl("title", {}, `${wall(m.at)} · ${m.name}: ${ACTION_LABEL[m.action] || m.action} (${m.actor}) — ${m.reason}`));
      svg.append(line);
    }
  }
}

// --- the page ----------------------------------------------------------------------
function params() {
  const q = new URLSearchParams();
  for (const [name, id] of [["from", "f-from"], ["to", "f-to"], ["by", "f-by"], ["group", "f-group"], ["site", "f-site"], ["person", "f-person"]]) {
    const v = $(id).value;
    if (v) q.set(name, v);
  }
  return q;
}
function funnelParams() {
  const q = new URLSearchParams();
  for (const name of ["from", "to", "site"]) if (params().get(name)) q.set(name, params().get(name));
  return q;
}

function fillSelect(id, values, allLabel) {
  const select = $(id);
  const current = select.value;
  select.replaceChildren(new Option(allLabel, ""));
  for (const v of values) select.append(new Option(v, v));
  select.value = values.includes(current) ? current : "";
}

function showFigures(report) {
  const t = report.total;
  $("fig-cases").textContent = num(t.cases);
  $("fig-first-response").textContent = duration(t.first_response_avg_s);
  $("fig-resolution").textContent = duration(t.resolution_avg_s);
  $("fig-sla").textContent = pct(t.sla_met_pct);
  $("fig-sla-detail").textContent = `${t.sla_met} a tiempo, ${t.sla_missed} vencidos`;
  $("fig-warnings").textContent = num(t.warnings);
  $("fig-calls").textContent = num(t.escalation_calls);
  $("fig-acknowledged").textContent = `${t.acknowledged} confirmadas con la tecla 1`;
  $("fig-rating").textContent = t.rating_avg === null ? "—" : `${num(t.rating_avg)} / 10`;
  $("fig-ratings").textContent = `${t.ratings} calificaciones`;
  $("fig-sentiment").textContent = t.sentiment_avg === null ? "—" : num(t.sentiment_avg);
  $("fig-sentiment-detail").textContent = `${t.negativo} negativos, ${t.neutral} neutrales, ${t.positivo} positivos`;
  const by = BY_LABEL[report.by];
  $("chart-cases-title").textContent = `Casos radicados por ${by}`;
  const keys = report.rows.map((r) => r.key);
  barChart($("chart-cases"), keys, report.rows.map((r) => r.cases), { label: `Casos por ${by}` });
  barChart($("chart-sla"), keys, report.rows.map((r) => r.sla_met_pct), { label: "ANS cumplido", max: 100, lowBelow: 80, format: pct, keepZeros: true });
  const head = document.createElement("tr");
  head.append(cell("th", by[0].toUpperCase() + by.slice(1)));
  // The exports give these times in seconds; the page shows them as "7 h 05 min".
  for (const c of report.columns) head.append(cell("th", c.label.replace("(s hábiles)", "(tiempo hábil)"), "num"));
  $("figures").tHead.replaceChildren(head);
  const line = (key, row) => {
    const tr = document.createElement("tr");
    tr.append(cell("td", key));
    for (const c of report.columns) {
      const v = row[c.key];
      tr.append(cell("td", c.key.endsWith("_avg_s") ? duration(v) : c.key.endsWith("_pct") ? pct(v) : num(v), "num"));
    }
    return tr;
  };
  $("figures").tBodies[0].replaceChildren(...report.rows.map((r) => line(r.key, r)));
  $("figures").tFoot.replaceChildren(line("Total", t));
}

function showFunnel(funnel) {
  funnelChart($("chart-funnel"), funnel.stages, funnel.total);
  $("chart-timeline-title").textContent = funnel.timeline_step === "day"
    ? "Por día, con los cambios de variables marcados" : "Por hora, con los cambios de variables marcados";
  timelineChart($("chart-timeline"), funnel.timeline, funnel.markers, funnel.timeline_step);
  barChart($("chart-hours"), funnel.by_hour_of_day.map((_, h) => `${String(h).padStart(2, "0")}h`),
    funnel.by_hour_of_day.map((c) => c.target), { label: "Llamantes objetivo por hora del día" });
  const head = document.createElement("tr");
  head.append(cell("th", "Sede"));
  for (const s of funnel.stages) head.append(cell("th", s.label, "num"));
  $("funnel-sites").tHead.replaceChildren(head);
  const rows = Object.entries(funnel.by_site).map(([site, counts]) => {
    const tr = document.createElement("tr");
    tr.dataset.site = site;
    tr.append(cell("td", site));
    for (const s of funnel.stages) tr.append(cell("td", num(counts[s.key]), "num"));
    return tr;
  });
  $("funnel-sites").tBodies[0].replaceChildren(...rows);
  $("markers").tBodies[0].replaceChildren(...funnel.markers.map((m) => {
    const tr = document.createElement("tr");
    for (const v of [wall(m.at), m.name, ACTION_LABEL[m.action] || m.action, JSON.stringify(m.old), JSON.stringify(m.new), m.actor, m.reason]) tr.append(cell("td", v));
    return tr;
  }));
}

async function refresh() {
  $("loading").hidden = false;
  try {
    // The funnel answers periods of up to 93 days: a longer one still shows the figures.
    const funnelOrError = api("GET", `/api/reports/funnel?${funnelParams()}`).catch((err) => err);
    const [headline, report, options] = await Promise.all([
      api("GET", "/api/reports/headline"),
      api("GET", `/api/reports/figures?${params()}`),
      api("GET", "/api/reports/options"),
    ]);
    const funnel = await funnelOrError;
    showError(funnel instanceof Error ? funnel : null);
    $("headline-today").textContent = num(headline.today);
    $("headline-open").textContent = num(headline.open);
    $("headline-overdue").textContent = num(headline.overdue);
    fillSelect("f-group", options.groups, "todos");
    fillSelect("f-site", options.sites, "todas");
    fillSelect("f-person", options.people, "todas");
    if (!$("f-from").value) $("f-from").value = report.start.slice(0, 10);
    if (!$("f-to").value) $("f-to").value = lastDay(report.end);
    showFigures(report);
    $("funnel-section").hidden = funnel instanceof Error;
    if (!(funnel instanceof Error)) showFunnel(funnel);
    document.body.dataset.loaded = String(Date.now());
  } catch (err) {
    showError(err);
  } finally {
    $("loading").hidden = true;
  }
}

function lastDay(endIso) { // the day before the period's end, in the server's zone
  const d = new Date(`${endIso.slice(0, 10)}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

function showLogin() {
  $("app").hidden = true;
  $("login").hidden = false;
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  for (const id of ["f-by", "f-group", "f-site", "f-person"]) $(id).addEventListener("change", refresh);
  $("dl-xlsx").addEventListener("click", (e) => { e.preventDefault(); downloadFile(`/api/reports/export?${params()}`, "tablero.xlsx"); });
  $("dl-figures-csv").addEventListener("click", (e) => {
    e.preventDefault();
    const q = params(); q.set("format", "csv");
    downloadFile(`/api/reports/figures?${q}`, "indicadores.csv");
  });
  $("dl-funnel-csv").addEventListener("click", (e) => {
    e.preventDefault();
    const q = funnelParams(); q.set("format", "csv");
    downloadFile(`/api/reports/funnel?${q}`, "embudo.csv");
  });
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    start();
  });
  if (sessionStorage.getItem(TOKEN_KEY)) start(); else showLogin();
});
