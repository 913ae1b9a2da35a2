// The demo chat page: a WhatsApp user played through the simulator
// (ivr/chat/webpage.py proxies /chat/api/* to its control API).
"use strict";

const log = document.getElementById("log");
const errorBox = document.getElementById("error");
const contact = document.getElementById("contact");
let since = null;

function wa() { return contact.value.replace(/[^0-9]/g, ""); }

function bubble(kind, text, options) {
  const div = document.createElement("div");
  div.className = "msg " + kind;
  div.textContent = text;
  if (options && options.length) {
    const row = document.createElement("div");
    row.className = "options";
    for (const option of options) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "option";
      button.dataset.id = option.id;
      button.textContent = option.title;
      button.addEventListener("click", () => pick(option));
      row.appendChild(button);
    }
    div.appendChild(row);
  }
  log.appendChild(div);
  div.scrollIntoView();
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error("el simulador respondió " + response.status);
  return response.json();
}

function read(payload) {
  if (payload.type === "text") return {text: payload.text.body, options: []};
  if (payload.type === "template") return {text: "[plantilla " + payload.template.name + "]", options: []};
  const inter = payload.interactive || {};
  const action = inter.action || {};
  const options = (action.buttons || []).map(b => ({id: b.reply.id, title: b.reply.title, kind: "button_reply"}));
  for (const section of action.sections || []) {
    for (const row of section.rows) options.push({id: row.id, title: row.title, kind: "list_reply"});
  }
  return {text: inter.body ? inter.body.text : "", options};
}

async function poll() {
  try {
    if (since === null) since = (await api("GET", "/chat/api/messages?to=-&since=0")).next;
    const data = await api("GET", "/chat/api/messages?to=" + wa() + "&since=" + since);
    for (const message of data.messages) {
      const shown = read(message.payload);
      bubble("bot", shown.text, shown.options);
    }
    since = data.next;
    showError("");
  } catch (err) {
    showError(String(err.message || err));
  }
}

async function send(text) {
  bubble("user", text, []);
  await api("POST", "/chat/api/send", {from: wa(), text});
}

async function pick(option) {
  bubble("user", option.title, []);
  await api("POST", "/chat/api/send", {from: wa(), reply_id: option.id, title: option.title, reply_kind: option.kind});
}

document.getElementById("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  try { await send(text); } catch (err) { showError(String(err.message || err)); }
});
document.getElementById("photo").addEventListener("click", async () => {
  bubble("user", "📷 [foto]", []);
  try { await api("POST", "/chat/api/send", {from: wa(), kind: "image"}); } catch (err) { showError(String(err.message || err)); }
});

// Read the chat's start (a link from the SMS: /chat?text=...) into the box.
const prefilled = new URLSearchParams(location.search).get("text");
if (prefilled) document.getElementById("text").value = prefilled;
poll();
setInterval(poll, 500);
