// Shared helpers: the JSON API client, human error messages, formatting, copying, job watching.
// A library only (no side effects): page modules import it; site.js wires the page chrome.

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

const OPTION_LABELS = {
  mode: "Mode", numClips: "Number of clips", clipLength: "Clip length", aspectRatio: "Aspect ratio",
  captionPreset: "Caption style", removeAiVoice: "Remove AI voice", autoHook: "Auto hook", prompt: "Focus",
  genre: "Genre", trimStart: "Trim start", trimEnd: "Trim end",
};

const capital = (s) => (s ? s.charAt(0).toUpperCase() + s.slice(1) : s);
const sentence = (s) => (s && !/[.!?]$/.test(s) ? `${s}.` : s);

function formatWait(seconds) {
  const s = Math.max(1, Math.round(Number(seconds)));
  return s < 90 ? `${s} seconds` : `${Math.ceil(s / 60)} minutes`;
}

/** The API's `{"error": …}` as a sentence a person can act on. `ctx` adds what the caller knows. */
export function humanError(status, message, ctx = {}) {
  const raw = (message || "").trim();
  const option = raw.match(/^invalid option '(\w+)': got (.*), expected (.*)$/);
  const msg = option
    ? `${OPTION_LABELS[option[1]] || option[1]} must be ${option[3]} (got ${option[2]})`
    : capital(raw.replace(/^invalid options: /, ""));
  switch (status) {
    case 0: return "Can't reach the Clipora server. Check your connection and try again.";
    case 400: return sentence(msg) || "That request wasn't valid.";
    case 401: return ctx.login ? "That email and password don't match an account."
      : "You're signed out. Log in again to continue.";
    case 403: return /csrf|cross-site/i.test(raw) ? "This page is out of date. Reload it and try again."
      : sentence(msg) || "You don't have access to that.";
    case 404: return ctx.notFound || (raw && raw !== "not found" ? sentence(msg) : "That doesn't exist any more.");
    case 409: return sentence(msg) || "That conflicts with something that already exists.";
    case 413: return ctx.tooLarge || "That file is larger than this server accepts.";
    case 429: return `Too many attempts. Try again in ${ctx.retryAfter ? formatWait(ctx.retryAfter) : "a minute"}.`;
    case 503: return `Processing is unavailable right now${raw ? ` (${raw})` : ""}. Try again in a few minutes.`;
    default:
      if (status >= 500) return "Something went wrong on the server. Try again in a moment.";
      return sentence(msg) || `The request failed (HTTP ${status}).`;
  }
}

/** fetch() for the JSON API: same-origin cookie + CSRF token; throws ApiError with a human message. */
export async function api(path, { method = "GET", json, ctx = {} } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  if (method !== "GET" && csrfToken()) headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, humanError(0));
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const retryAfter = response.headers.get("Retry-After");
    throw new ApiError(response.status, humanError(response.status, body && body.error, { ...ctx, retryAfter }), body);
  }
  return body;
}

export function showMessage(el, message) {
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

export function formatBytes(n) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = Number(n);
  let i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return i === 0 ? `${value} bytes` : `${value >= 10 || Number.isInteger(value) ? Math.round(value) : value.toFixed(1)} ${units[i]}`;
}

export function formatSeconds(s) {
  const total = Math.max(0, Number(s) || 0);
  const m = Math.floor(total / 60);
  const sec = (total - m * 60).toFixed(1).padStart(4, "0");
  return `${m}:${sec}`;
}

export function formatDate(ms) {
  if (!ms) return "never";
  const diff = (Date.now() - Number(ms)) / 1000;
  if (diff < 45) return "just now";
  if (diff < 3600) return `${Math.round(diff / 60)} min ago`;
  if (diff < 86400) return `${Math.round(diff / 3600)} h ago`;
  return new Date(Number(ms)).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

export function fullDate(ms) {
  return ms ? new Date(Number(ms)).toLocaleString() : "";
}

let toastTimer = null;
export function toast(message) {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 3200);
}

/** Clipboard with a fallback for plain-http hosts, where navigator.clipboard does not exist. */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall through to the selection copy */ }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  area.remove();
  return ok;
}

export const TERMINAL = new Set(["completed", "failed"]);

/**
 * Follows one job over /ws?jobId= (the session cookie authenticates it). Calls onMessage with each
 * server message; reconnects with backoff if the socket drops before the final message.
 * Returns a function that stops watching.
 */
export function watchJob(jobId, onMessage) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${window.location.host}/ws?jobId=${encodeURIComponent(jobId)}`;
  let socket = null;
  let done = false;
  let retries = 0;
  let timer = null;
  const open = () => {
    socket = new WebSocket(url);
    socket.addEventListener("message", (event) => {
      retries = 0;
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === "completed" || message.type === "failed") done = true;
      onMessage(message);
    });
    socket.addEventListener("close", () => {
      if (done) return;
      retries += 1;
      timer = setTimeout(open, Math.min(15000, 500 * 2 ** Math.min(retries, 5)));
    });
  };
  open();
  return () => {
    done = true;
    clearTimeout(timer);
    if (socket && socket.readyState <= 1) socket.close();
  };
}

export const STATUS_LABELS = {
  queued: "Queued", downloading: "Downloading", processing: "Processing", completed: "Completed", failed: "Failed",
};
