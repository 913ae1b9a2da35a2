// The console page "Guiones" (ivr/desk/scripts_http.py): the script versions, a readable
// tree, a YAML/JSON editor with the validator's messages beside it, save as draft, publish.
// Plain DOM over the ops API with the token the console keeps in sessionStorage; data is
// written with textContent only.
"use strict";

// TOKEN_KEY, $, api, ApiError, showError, showNotice: common.js.
const STATE_LABEL = { draft: "borrador", published: "publicada (en uso)", retired: "retirada" };
const page = { live: null };

// The page's own words for errors (common.js's defaults otherwise).
setupErrors({ prefixes: { 409: "Conflicto", 422: "Rechazado" } });

const el = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};
const when = (iso, who) => (iso ? `${new Date(iso).toLocaleString("es-CO")}${who ? ` · ${who}` : ""}` : "—");

// --- versions ----------------------------------------------------------------------
async function loadVersions() {
  const data = await api("GET", "/api/desk/scripts");
  page.live = data.live;
  $("live-version").textContent = data.live === null ? "ninguna" : `versión ${data.live}`;
  const body = $("versions").tBodies[0];
  body.replaceChildren();
  for (const v of data.versions) {
    const row = document.createElement("tr");
    row.dataset.version = v.version;
    row.append(el("td", String(v.version)), el("td", STATE_LABEL[v.state] || v.state, `state-${v.state}`),
      el("td", v.note || ""), el("td", when(v.created_at, v.created_by)), el("td", when(v.published_at, v.published_by)));
    const actions = el("td");
    const view = el("button", "Ver y editar");
    view.type = "button";
    view.className = "view";
    view.addEventListener("click", () => openVersion(v.version).catch(showError));
    actions.append(view);
    if (v.state === "draft") {
      const publish = el("button", "Publicar");
      publish.type = "button";
      publish.className = "publish";
      publish.addEventListener("click", () => publishVersion(v.version).catch(showError));
      actions.append(" ", publish);
    }
    row.append(actions);
    body.append(row);
  }
  return data;
}

async function publishVersion(version) {
  const live = page.live === null ? "" : ` La versión ${page.live} se retira.`;
  if (!window.confirm(`¿Publicar la versión ${version}? Los asesores la siguen desde el próximo contacto.${live}`)) return;
  await api("POST", `/api/desk/scripts/${version}/publish`);
  showNotice(`Versión ${version} publicada: es la que siguen los asesores.`);
  await loadVersions();
}

async function openVersion(version) {
  const detail = await api("GET", `/api/desk/scripts/${version}`);
  $("tree-version").textContent = String(version);
  renderTree(detail.tree);
  $("tree-section").hidden = false;
  $("editor").value = detail.yaml;
  $("note").value = "";
  showChecked({ valid: true, details: [] }, `Texto de la versión ${version}.`);
}

// --- the readable tree ------------------------------------------------------------------
function stepItem(step, dispositions) {
  const li = el("li");
  li.append(el("span", step.kind === "question" ? "Pregunta: " : "Texto: ", "kind"), el("span", step.text, "text"));
  const answers = el("ul");
  for (const a of step.answers || []) answers.append(el("li", `${a.label} → ${a.next || "sigue"}`, "answer"));
  if (step.next) answers.append(el("li", `→ ${step.next}`, "answer"));
  if (answers.childElementCount) li.append(answers);
  return li;
}

function renderTree(tree) {
  const box = $("tree");
  box.replaceChildren();
  const types = el("ul", undefined, "tree");
  for (const ct of tree.call_types || []) {
    const ctLi = el("li");
    ctLi.append(el("strong", `${ct.label} (${ct.id})`));
    const reasons = el("ul");
    for (const r of ct.reasons || []) {
      const rLi = el("li", `Motivo: ${r.label}`);
      const scenarios = el("ul");
      for (const s of r.scenarios || []) {
        const sLi = el("li", `Escenario: ${s.label}`);
        const steps = el("ol");
        for (const step of s.steps || []) steps.append(stepItem(step));
        sLi.append(steps);
        if (s.procedure) sLi.append(el("div", `→ procedimiento ${s.procedure}`, "answer"));
        scenarios.append(sLi);
      }
      rLi.append(scenarios);
      reasons.append(rLi);
    }
    ctLi.append(reasons);
    types.append(ctLi);
  }
  box.append(el("h3", "Tipos de llamada"), types, el("h3", "Procedimientos"));
  const procs = el("ul", undefined, "tree");
  for (const p of tree.procedures || []) {
    const li = el("li");
    li.append(el("strong", `${p.label} (${p.id})`));
    const steps = el("ol");
    for (const step of p.steps || []) steps.append(stepItem(step));
    li.append(steps, el("div", "Tipificaciones: " + p.dispositions.map((d) => (tree.dispositions || {})[d] || d).join(", "), "dispositions"));
    procs.append(li);
  }
  box.append(procs);
  const entry = $("entry").tBodies[0];
  entry.replaceChildren();
  for (const rule of tree.entry || []) {
    const row = document.createElement("tr");
    const facts = Object.entries(rule.when || {}).map(([k, v]) => `${k} = ${[].concat(v).join(" o ")}`).join(" y ");
    row.append(el("td", facts || "siempre"), el("td", rule.node));
    entry.append(row);
  }
}

// --- the editor ---------------------------------------------------------------------------
function draftBody() {
  const text = $("editor").value;
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      return { tree: JSON.parse(trimmed) };
    } catch (err) {
      return { yaml: text }; // YAML is a superset of JSON: the server names the line
    }
  }
  return { yaml: text };
}

function showChecked(result, label) {
  const list = $("problems");
  list.replaceChildren();
  for (const d of result.details) list.append(el("li", d, "problem"));
  $("check-state").textContent = label || (result.valid ? "El guion es válido." : `${result.details.length} problema(s):`);
  $("check-state").className = result.valid ? "ok" : "error";
}

async function check() {
  if (!$("editor").value.trim()) return showChecked({ valid: false, details: ["guion: el editor está vacío"] });
  showChecked(await api("POST", "/api/desk/scripts/validate", draftBody()));
}

async function save() {
  try {
    const created = await api("POST", "/api/desk/scripts", { ...draftBody(), note: $("note").value });
    showChecked({ valid: true, details: [] });
    showNotice(`Borrador guardado como versión ${created.version}. Publíquelo para que los asesores lo sigan.`);
    await loadVersions();
  } catch (err) {
    if (err.status === 422 && err.details.length) {
      showChecked({ valid: false, details: err.details.map((d) => d.message) });
      // The problems are listed beside the editor: the error box keeps only the message.
      showError(new ApiError(err.status, { message: err.message }));
      return;
    }
    showError(err);
  }
}

async function main() {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    $("login-needed").hidden = false;
    return;
  }
  try {
    const me = await api("GET", "/api/whoami");
    $("whoami").textContent = `${me.name} (${me.role})`;
    if (me.role !== "admin") {
      $("admin-only").hidden = false;
      return;
    }
    $("app").hidden = false;
    const data = await loadVersions();
    if (data.live !== null) await openVersion(data.live);
  } catch (err) {
    showError(err);
  }
  $("check").addEventListener("click", () => check().catch(showError));
  $("save").addEventListener("click", () => save());
}

document.addEventListener("DOMContentLoaded", main);
