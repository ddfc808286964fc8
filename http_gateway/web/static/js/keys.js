// /keys: list, create (the plaintext shown once), revoke with confirmation.
import { $, api, formatDate, fullDate, showMessage, toast } from "./common.js";

const form = $("#create-key");
const nameInput = $("#key-name");
const createButton = $("#create-key-button");
const maxKeys = Number(form.dataset.max);
const body = $("#keys-body");
const dialog = $("#revoke-dialog");
let pendingRevoke = null;

function cell(text, label, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (label) td.dataset.label = label;
  if (className) td.className = className;
  return td;
}

function render(keys) {
  body.replaceChildren();
  if (!keys.length) {
    const tr = document.createElement("tr");
    const td = cell("No keys yet. Create one above to call the API from scripts.", null, "muted");
    td.colSpan = 6;
    tr.append(td);
    body.append(tr);
  }
  for (const key of keys) {
    const tr = document.createElement("tr");
    tr.dataset.keyId = key.id;
    if (key.status === "revoked") tr.className = "revoked";
    const created = cell(formatDate(key.createdAt), "Created");
    created.title = fullDate(key.createdAt);
    const used = cell(key.lastUsedAt ? formatDate(key.lastUsedAt) : "never", "Last used");
    used.title = fullDate(key.lastUsedAt);
    const masked = cell("", "Key");
    const code = document.createElement("code");
    code.textContent = `${key.prefix}…${key.last4}`;
    masked.append(code);
    const status = cell("", "Status");
    const badge = document.createElement("span");
    badge.className = `badge ${key.status === "active" ? "status-completed" : "status-queued"}`;
    badge.textContent = key.status;
    status.append(badge);
    const actions = cell("", null, "key-actions");
    if (key.status === "active") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button ghost small";
      button.textContent = "Revoke";
      button.setAttribute("aria-label", `Revoke key ${key.name}`);
      button.addEventListener("click", () => askRevoke(key));
      actions.append(button);
    }
    tr.append(cell(key.name, null, "key-name"), masked, created, used, status, actions);
    body.append(tr);
  }
  const active = keys.filter((k) => k.status === "active").length;
  $("#key-count").textContent = `${active} of ${maxKeys} active`;
  const full = active >= maxKeys;
  createButton.disabled = full;
  nameInput.disabled = full;
  $("#key-limit").textContent = full
    ? `You have ${maxKeys} active keys, the most an account can have. Revoke one you no longer use to create another.`
    : `Up to ${maxKeys} active keys per account.`;
}

async function load() {
  try {
    const { keys } = await api("/api/keys");
    showMessage($("#list-error"), "");
    render(keys);
  } catch (err) {
    showMessage($("#list-error"), err.message);
  }
}

function askRevoke(key) {
  pendingRevoke = key;
  $("#revoke-name").textContent = key.name;
  $("#revoke-prefix").textContent = `${key.prefix}…${key.last4}`;
  dialog.returnValue = "";
  dialog.showModal();
}

dialog.addEventListener("close", async () => {
  const key = pendingRevoke;
  pendingRevoke = null;
  if (dialog.returnValue !== "revoke" || !key) return;
  try {
    await api(`/api/keys/${encodeURIComponent(key.id)}`, { method: "DELETE", ctx: { notFound: "That key no longer exists." } });
    toast(`Key “${key.name}” revoked`);
  } catch (err) {
    showMessage($("#list-error"), err.message);
  }
  await load();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage($("#key-error"), "");
  const name = nameInput.value.trim();
  if (!name) {
    showMessage($("#key-error"), "Give the key a name, so you can tell your keys apart later.");
    nameInput.focus();
    return;
  }
  createButton.disabled = true;
  try {
    const created = await api("/api/keys", { method: "POST", json: { name } });
    $("#new-key-value").textContent = created.key;
    $("#new-key").hidden = false;
    nameInput.value = "";
    $("#new-key").querySelector("button").focus();
  } catch (err) {
    showMessage($("#key-error"), err.message);
  }
  createButton.disabled = false;
  await load();
});

load();
