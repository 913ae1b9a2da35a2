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
// Calls the ops API with common.js's api() (the console's token); text via textContent.

// The page that imports this module loads /console/common.js first (docs/desk/core.md):
// api() (the console's token in the Authorization header; throws ApiError with `status`
// and the API's Spanish `message`) is its global, not a copy here.

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const seconds = (s) => (s === null || s === undefined ? "en curso" : `${Math.round(s)} s`);

export function mountScript(element, contact) {
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
  let busy = false;

  const message = el("p", null, "script-message");
  message.setAttribute("role", "alert");
  message.hidden = true;

  function fail(err) {
    message.textContent = err.message;
    message.hidden = false;
    if (err.status === 409) setTimeout(refresh, 0); // the script moved on elsewhere: show where it is
  }

  async function act(method, path, body) {
    if (busy) return null;
    busy = true;
    try {
      message.hidden = true;
      return await api(method, path, body);
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
    const select = el("select");
    select.name = "disposition";
    select.required = true;
    select.append(new Option("— elija la tipificación —", ""));
    for (const d of view.dispositions) select.append(new Option(d.label, d.id));
    const note = el("textarea");
    note.name = "note";
    note.rows = 2;
    note.maxLength = 4000;
    note.placeholder = "Nota (opcional)";
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
        element.dispatchEvent(new CustomEvent("script-closed", { detail: closed.contact }));
      }
    });
    return form;
  }

  function draw() {
    element.replaceChildren();
    element.append(el("h2", "Guion"));
    if (!view) {
      element.append(message);
      return;
    }
    element.append(labels());
    if (view.notice) element.append(el("p", view.notice, "script-notice"));
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
      early.append(el("summary", "La llamada terminó antes"), dispositionForm(true));
      element.append(early);
    }
  }

  async function refresh() {
    const started = await act("POST", `${base}/script/start`);
    if (started) view = started;
    draw();
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
