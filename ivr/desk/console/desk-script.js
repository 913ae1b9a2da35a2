// The agent desktop's script panel (issue 12 §3): an ES module.
//
//   import { mountScript } from "/console/desk-script.js";
//   const panel = mountScript(document.getElementById("guion"), contact);   // {id} or a pop's {contact_id}
//   panel.refresh();   // re-read (after a reconnect);  panel.destroy();  // empty the element
//
// It opens the contact's script (POST /api/desk/contacts/{id}/script/start: the node the IVR
// context implies, or where the script was left), shows the current step's text with the IVR
// values inserted, its answers as buttons, the path so far with the seconds of each step, the
// procedure, and at the procedure's end the disposition form (required). Before the end, the
// agent may still close with one of the script's early dispositions (the caller hung up).
// The element receives a "script-closed" event (detail: the closed contact) when it closes.
// Uses the console's token (sessionStorage) in the Authorization header; text via textContent.

// The page loads /console/common.js (a classic script) first: its api() (the token in the
// header, ApiError with the API's Spanish message, ApiError(0) in Spanish when the server
// does not answer) is a global this module reads.
const call = (method, path, body) => api(method, path, body);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const seconds = (s) => (s === null || s === undefined ? "en curso" : `${Math.round(s)} s`);

export function mountScript(element, contact) {
  // No contact (the desktop between calls, escritorio.js calls with null): the hint only.
  if (!contact) {
    element.citasScript = null;
    element.replaceChildren(el("h2", "Guion"), el("p", "El guion se abre al contestar.", "hint"));
    return { refresh() {}, destroy() { element.replaceChildren(); } };
  }
  // A contact (`id`) or a screen pop (`contact_id`) names the contact. The desktop mounts
  // on every pop and wrap-up: the same contact on the same element is only re-read.
  const contactId = contact.id || contact.contact_id;
  const mounted = element.citasScript;
  if (mounted && mounted.contactId === contactId) {
    mounted.panel.refresh();
    return mounted.panel;
  }
  const base = `/api/desk/contacts/${encodeURIComponent(contactId)}`;
  let view = null;
  let drawn = null;  // the view last drawn, as JSON: a re-read that changed nothing draws nothing
  let busy = false;
  // What the agent has started in each disposition form (the early close, the closing
  // one): a redraw (an answer, a re-read that changed the view) builds new forms, and
  // must not lose a choice or a half-typed note. Each form keeps its own.
  const drafts = { early: { disposition: "", note: "" }, close: { disposition: "", note: "" } };
  let earlyOpen = false;

  const message = el("p", null, "script-message");
  message.setAttribute("role", "alert");
  message.hidden = true;

  function fail(err) {
    message.textContent = err.message;
    message.hidden = false;
    if (err.status === 409) {
      // The script moved on elsewhere (another tab) or the contact left this agent (escalated,
      // closed): show where it is, and keep saying why the click did nothing.
      setTimeout(async () => {
        await refresh();
        message.textContent = err.message;
        message.hidden = false;
      }, 0);
    }
  }

  async function act(method, path, body) {
    if (busy) return null;
    busy = true;
    try {
      message.hidden = true;
      return await call(method, path, body);
    } catch (err) {
      fail(err);
      return null;
    } finally {
      busy = false;
    }
  }

  function pathList() {
    const list = el("ol", null, "script-path");
    for (const step of view.path) {
      const answer = step.answer ? ` → ${step.answer_label || step.answer}` : "";
      list.append(el("li", `${step.label}${answer} (${seconds(step.seconds)})`));
    }
    return list;
  }

  function labels() {
    const parts = ["call_type", "reason", "scenario", "procedure"].map((k) => view.labels[k]).filter((x) => x);
    return el("p", parts.join(" › ") || "Sin tipo de llamada aún", "script-labels");
  }

  function dispositionForm(early) {
    const form = el("form", null, early ? "script-early" : "script-close");
    form.noValidate = true;  // the browser's "Please select an item" is in its own language: our check says it in Spanish
    const select = el("select");
    select.name = "disposition";
    select.required = true;
    select.append(new Option("— elija la tipificación —", ""));
    const draft = early ? drafts.early : drafts.close;
    for (const d of view.dispositions) select.append(new Option(d.label, d.id));
    select.value = draft.disposition;
    if (select.value !== draft.disposition) select.value = draft.disposition = "";  // no longer offered
    select.addEventListener("change", () => { draft.disposition = select.value; });
    const note = el("textarea");
    note.name = "note";
    note.rows = 2;
    note.maxLength = 4000;
    note.placeholder = "Nota (opcional)";
    note.value = draft.note;
    note.addEventListener("input", () => { draft.note = note.value; });
    const button = el("button", early ? "Cerrar sin terminar el guion" : "Cerrar contacto");
    button.type = "submit";
    const label = el("label", "Tipificación ");
    label.append(select);
    form.append(label, el("br"), note, el("br"), button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!select.value) return fail(new Error("Elija una tipificación: es obligatoria para cerrar."));
      const closed = await act("POST", `${base}/close`, { disposition: select.value, note: note.value });
      if (closed) {
        view = { ...view, state: "closed", disposition: select.value };
        draw();
        refresh();  // the stored path: the close ended the last step (no "en curso" left on a closed contact)
        element.dispatchEvent(new CustomEvent("script-closed", { detail: closed.contact }));
      }
    });
    return form;
  }

  function draw() {
    drawn = JSON.stringify(view);
    element.replaceChildren();
    element.append(el("h2", "Guion"));
    if (!view) {
      element.append(message);
      return;
    }
    element.append(labels());
    if (view.notice) element.append(el("p", view.notice, "script-notice"));
    if (view.state === "escalated") {
      // Final for this agent: the next level's agent goes on with the script (levels part).
      element.append(el("p", "Contacto escalado: el guion sigue con el asesor del siguiente nivel.", "script-closed"), pathList(), message);
      return;
    }
    if (view.state === "closed") {
      const chosen = view.dispositions.find((d) => d.id === view.disposition);
      element.append(el("p", `Contacto cerrado: ${chosen ? chosen.label : view.disposition}.`, "script-closed"), pathList(), message);
      return;
    }
    const node = view.node;
    const current = el("div", null, `script-node script-${node.kind}`);
    current.dataset.node = node.id;
    current.append(el("p", node.text, "script-text"));
    const answers = el("div", null, "script-answers");
    for (const a of node.answers) {
      const button = el("button", a.label);
      button.type = "button";
      button.dataset.answer = a.id;
      button.addEventListener("click", async () => {
        const next = await act("POST", `${base}/script/answer`, { node_id: node.id, answer: a.id });
        if (next) {
          view = next;
          draw();
        }
      });
      answers.append(button);
    }
    current.append(answers);
    element.append(current);
    if (view.closing) element.append(dispositionForm(false));
    element.append(message, el("h3", "Camino"), pathList());
    if (!view.closing && view.dispositions.length) {
      const early = el("details", null, "script-early-box");
      early.open = earlyOpen;
      early.addEventListener("toggle", () => { earlyOpen = early.open; });
      early.append(el("summary", "La llamada terminó antes"), dispositionForm(true));
      element.append(early);
    }
  }

  async function refresh() {
    // The desktop re-reads on every pop and wrap-up of the same contact: most change
    // nothing, and a redraw then would only replace the buttons under the agent's pointer.
    const started = await act("POST", `${base}/script/start`);
    // Another contact's panel (or the between-calls hint) took the element meanwhile:
    // this late answer must not draw the old contact over it.
    if (!element.citasScript || element.citasScript.contactId !== contactId) return;
    if (started) view = started;
    if (JSON.stringify(view) !== drawn || !element.contains(message)) draw();
  }

  draw();
  refresh();
  const panel = {
    refresh,
    destroy() {
      element.replaceChildren();
      delete element.citasScript;
    },
  };
  element.citasScript = { contactId, panel };
  return panel;
}
