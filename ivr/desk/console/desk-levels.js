// The escalation panel of the agent's desktop (docs/desk/levels.md). An ES module:
//
//   import { mountEscalation } from "/console/desk-levels.js";
//   const panel = mountEscalation(document.getElementById("escalar"), contact);
//   panel.update(nextContact);   // a new pop (or null: no contact); mounting the
//                                // same element again does the same
//
// The area choice lists only the targets of the contact's level (GET
// /api/desk/contacts/{id}/escalation); a reason is required; the agent confirms
// before the caller is moved; the panel then shows the state (escalated, or the
// Spanish error: 409 hung up / 503 telephony down, the call stays with the agent).
// It dispatches "desk:escalated" (detail: the API's answer) on the element.
// Data from the API is always written with textContent.
"use strict";

// The page that imports this module loads /console/common.js first (docs/desk/core.md):
// api() (the console's token in the Authorization header; throws ApiError with `status`
// and the API's Spanish `message`) is its global, not a copy here.

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const LEVEL_WORDS = { 1: "uno", 2: "dos", 3: "tres" };

export function mountEscalation(element, contact) {
  // The desktop mounts again on every pop: one panel per element, updated.
  if (element.deskEscalation) {
    element.deskEscalation.update(contact);
    return element.deskEscalation;
  }
  // draft: the area and reason the agent chose, kept when the confirmation is cancelled.
  const panel = { contact: null, options: null, busy: false, draft: { area: "", reason: "" } };

  function clear() {
    element.replaceChildren(el("h2", {}, "Escalar a otro nivel"));
  }

  function message(text, role = "status") {
    const node = el("p", { "data-role": role === "alert" ? "error" : "status", role }, text);
    element.append(node);
    return node;
  }

  function showEscalations(escalations) {
    if (!escalations || !escalations.length) return;
    const list = el("ul", { "data-role": "escalations" });
    for (const e of escalations) {
      const waited = e.queued_seconds == null ? "" : ` (${Math.round(e.queued_seconds)} s)`;
      list.append(el("li", {}, `${e.to_queue} · nivel ${e.to_level}: ${e.outcome_label}${waited} — «${e.reason}»`));
    }
    element.append(list);
  }

  function render() {
    clear();
    const c = panel.contact;
    if (!c) {
      message("Sin contacto en curso.");
      return;
    }
    const o = panel.options;
    if (!o) {
      message("Cargando las áreas de escalamiento…");
      return;
    }
    if (!o.can_escalate) {
      if (o.state === "escalated") message("Contacto escalado: el usuario pasó al siguiente nivel.");
      else if (!o.targets.length) message(`Nivel ${o.level}: es el último nivel, no hay a dónde escalar.`);
      else message("Solo se escala una llamada o chat en curso.");
      showEscalations(o.escalations);
      return;
    }
    const form = el("form", { "data-role": "escalation-form", novalidate: "" });
    const areaLabel = el("label", { for: "escalar-area" }, "Área del siguiente nivel");
    const area = el("select", { id: "escalar-area", "data-role": "area", required: "" });
    for (const t of o.targets) area.append(el("option", { value: t.area }, t.name));
    if (o.targets.some((t) => t.area === panel.draft.area)) area.value = panel.draft.area;
    const reasonLabel = el("label", { for: "escalar-motivo" }, "Motivo (obligatorio)");
    const reason = el("textarea", { id: "escalar-motivo", "data-role": "reason", rows: "2", maxlength: "2000", required: "" });
    reason.value = panel.draft.reason;
    const submit = el("button", { type: "submit", "data-role": "escalate" }, "Escalar");
    form.append(areaLabel, area, reasonLabel, reason, submit);
    const feedback = el("p", { "data-role": "error", role: "alert" });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      feedback.textContent = "";
      const text = reason.value.trim();
      panel.draft = { area: area.value, reason: reason.value };
      if (!text) {
        feedback.textContent = "Indique el motivo del escalamiento.";
        reason.focus();
        return;
      }
      const target = o.targets.find((t) => t.area === area.value);
      confirmStep(target, text);
    });
    element.append(form, feedback);
    showEscalations(o.escalations);
  }

  function confirmStep(target, reasonText) {
    clear();
    const who = panel.contact.kind === "chat" ? "El chat volverá a la cola" : "El usuario escuchará un aviso y esperará";
    const box = el("div", { "data-role": "confirmation" });
    box.append(
      el("p", {}, `¿Escalar a ${target.name} (nivel ${LEVEL_WORDS[target.level] || target.level})?`),
      el("p", {}, `${who} al siguiente asesor. Motivo: «${reasonText}».`),
    );
    const confirm = el("button", { type: "button", "data-role": "confirm" }, "Confirmar escalamiento");
    const cancel = el("button", { type: "button", "data-role": "cancel" }, "Cancelar");
    const feedback = el("p", { "data-role": "error", role: "alert" });
    cancel.addEventListener("click", render);
    confirm.addEventListener("click", async () => {
      if (panel.busy) return;
      panel.busy = true;
      confirm.disabled = cancel.disabled = true;
      feedback.textContent = "";
      try {
        const done = await api("POST", `/api/desk/contacts/${encodeURIComponent(panel.contact.id)}/escalate`,
          { area: target.area, reason: reasonText });
        panel.contact = done.contact;
        clear();
        message(`Escalado a ${target.name}. ${panel.contact.kind === "chat"
          ? "El chat espera en la cola del siguiente nivel."
          : "El usuario espera al asesor del siguiente nivel; su llamada con usted terminó."}`);
        element.dispatchEvent(new CustomEvent("desk:escalated", { detail: done, bubbles: true }));
        await load();
      } catch (error) {
        feedback.textContent = error.status === 503
          ? `${error.message}`
          : `No se pudo escalar: ${error.message}`;
        confirm.disabled = cancel.disabled = false;
      } finally {
        panel.busy = false;
      }
    });
    box.append(confirm, cancel, feedback);
    element.append(box);
  }

  async function load() {
    const c = panel.contact;
    if (!c) {
      panel.options = null;
      render();
      return;
    }
    try {
      const options = await api("GET", `/api/desk/contacts/${encodeURIComponent(c.id)}/escalation`);
      if (panel.contact && panel.contact.id === c.id) {
        panel.options = options;
        // An open confirmation is the agent's: a refresh must not wipe it.
        if (!element.querySelector('[data-role="confirmation"]')) render();
      }
    } catch (error) {
      clear();
      message(`No se pudieron leer las áreas de escalamiento: ${error.message}`, "alert");
    }
  }

  function update(next) {
    const before = panel.contact;
    const changed = (next && next.id) !== (before && before.id);
    if (!changed && before && next && before.state === next.state) return Promise.resolve();
    panel.contact = next || null;
    if (changed) {
      panel.options = null;
      panel.draft = { area: "", reason: "" };
      render();
    }
    return load();
  }

  const handle = { update, get contact() { return panel.contact; } };
  element.deskEscalation = handle;
  update(contact);
  return handle;
}
