// The console page "Palabras clave" (ivr/text/http.py): plain DOM over the ops API,
// with the token the console keeps in sessionStorage. Data is always written with textContent.
// TOKEN_KEY, ROLE_LABEL, $, api, ApiError, showError, showNotice: common.js.
"use strict";

const ACTION_LABEL = {
  list_created: "lista creada", list_changed: "lista cambiada", list_deleted: "lista borrada",
  keyword_added: "palabra agregada", keyword_changed: "palabra cambiada", keyword_removed: "palabra quitada",
};
const SENTIMENT_LABEL = { negativo: "negativo", neutral: "neutral", positivo: "positivo" };
const state = { me: null, lists: [] };


const isAdmin = () => state.me && state.me.role === "admin";
const formatTime = (iso) => (iso ? new Date(iso).toLocaleString("es-CO") : "");

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.disabled = !isAdmin();
  b.addEventListener("click", onClick);
  return b;
}

function describe(value) {
  if (!value) return "";
  const parts = [];
  if (value.name !== undefined) parts.push(value.name);
  if (value.phrase !== undefined) parts.push(`«${value.phrase}»` + (value.raises_priority ? " (sube prioridad)" : ""));
  if (value.keywords) parts.push(value.keywords.map((k) => k.phrase).join(", "));
  return parts.join(" · ");
}

// --- rendering --------------------------------------------------------------------
function renderLists(lists) {
  state.lists = lists;
  const blocks = lists.map((list) => {
    const block = document.createElement("div");
    block.className = "keyword-list";
    block.dataset.list = list.name;
    const title = document.createElement("h3");
    title.textContent = list.name;
    const description = document.createElement("p");
    description.className = "hint";
    description.textContent = list.description;
    const table = document.createElement("table");
    table.className = "keywords";
    const head = document.createElement("tr");
    for (const h of ["Palabra o frase", "Sube la prioridad", ""]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.append(th);
    }
    table.createTHead().append(head);
    const body = table.createTBody();
    for (const k of list.keywords) {
      const tr = document.createElement("tr");
      tr.dataset.keyword = k.phrase;
      tr.append(cell(k.phrase, "phrase"), cell(k.raises_priority ? "sí" : "no", "raises"));
      const actions = document.createElement("td");
      actions.append(
        button(k.raises_priority ? "No subir prioridad" : "Subir prioridad", "toggle",
          () => change("PUT", `/api/keywords/${encodeURIComponent(k.id)}`, { raises_priority: !k.raises_priority }, "Palabra clave cambiada.")),
        button("Quitar", "remove", () => change("DELETE", `/api/keywords/${encodeURIComponent(k.id)}`, {}, "Palabra clave quitada.")),
      );
      tr.append(actions);
      body.append(tr);
    }
    const remove = button("Borrar la lista", "remove-list",
      () => change("DELETE", `/api/keyword-lists/${encodeURIComponent(list.id)}`, {}, "Lista borrada."));
    block.append(title, description, table, remove);
    return block;
  });
  $("lists").replaceChildren(...blocks);
  const select = $("keyword-list");
  const chosen = select.value;
  select.replaceChildren(...lists.map((l) => new Option(l.name, l.id)));
  if (lists.some((l) => l.id === chosen)) select.value = chosen;
}

function renderAudit(entries) {
  const rows = entries.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.action = e.action;
    tr.append(cell(formatTime(e.at)), cell(e.actor), cell(ACTION_LABEL[e.action] || e.action, "action"),
      cell(describe(e.old_value)), cell(describe(e.new_value)), cell(e.reason, "reason"));
    return tr;
  });
  $("audit").tBodies[0].replaceChildren(...rows);
}

async function refresh() {
  const [lists, audit] = await Promise.all([api("GET", "/api/keyword-lists"), api("GET", "/api/keyword-audit?limit=100")]);
  renderLists(lists.lists);
  renderAudit(audit.entries);
}

// --- changes -------------------------------------------------------------------------
async function change(method, path, body, done) {
  const reason = $("row-reason").value.trim();
  if (!reason) {
    showError(new ApiError(422, { message: "escriba el motivo del cambio", details: [{ field: "motivo", message: "obligatorio" }] }));
    $("row-reason").focus();
    return;
  }
  try {
    await api(method, path, { ...body, reason });
    showNotice(done);
    await refresh();
  } catch (err) {
    showError(err);
  }
}

async function createList(event) {
  event.preventDefault();
  try {
    await api("POST", "/api/keyword-lists", {
      name: $("list-name").value, description: $("list-description").value, reason: $("list-reason").value,
    });
    showNotice(`Lista «${$("list-name").value.trim()}» creada.`);
    $("list-form").reset();
    await refresh();
  } catch (err) {
    showError(err);
  }
}

async function addKeyword(event) {
  event.preventDefault();
  const listId = $("keyword-list").value;
  try {
    const added = await api("POST", `/api/keyword-lists/${encodeURIComponent(listId)}/keywords`, {
      phrase: $("keyword-phrase").value, raises_priority: $("keyword-raises").checked, reason: $("keyword-reason").value,
    });
    showNotice(`Palabra clave «${added.phrase}» agregada a «${added.list}».`);
    $("keyword-phrase").value = "";
    await refresh();
  } catch (err) {
    showError(err);
  }
}

async function tryText(event) {
  event.preventDefault();
  try {
    const result = await api("POST", "/api/text/analyse", { text: $("try-text").value });
    $("try-label").textContent = SENTIMENT_LABEL[result.label] || result.label;
    $("try-score").textContent = result.score.toFixed(2);
    $("try-words").textContent = result.words.map((w) => `${w.text} (${w.weight > 0 ? "+" : ""}${w.weight})`).join(", ") || "ninguna";
    $("try-keywords").textContent = result.keywords.map((k) => `${k.written} → ${k.phrase} (${k.list})`).join(", ") || "ninguna";
    $("try-priority").textContent = result.raises_priority ? `Un caso con este texto pasaría a prioridad alta: ${result.raises_priority}.` : "";
    $("try-result").hidden = false;
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
  $("admin-only").hidden = isAdmin();
  for (const id of ["list-form", "keyword-form"]) {
    for (const el of $(id).elements) el.disabled = !isAdmin();
  }
  $("row-reason").disabled = !isAdmin();
  $("list-form").addEventListener("submit", createList);
  $("keyword-form").addEventListener("submit", addKeyword);
  $("try-form").addEventListener("submit", tryText);
  $("app").hidden = false;
  try {
    await refresh();
  } catch (err) {
    showError(err);
  }
}

document.addEventListener("DOMContentLoaded", start);
