// The dashboard: pick or drop a video (or paste a link), set the options, upload with a real
// progress bar, and follow every unfinished job live over the WebSocket.
import {
  $, ApiError, STATUS_LABELS, TERMINAL, api, csrfToken, formatBytes, formatDate, fullDate, humanError,
  showMessage, toast, watchJob,
} from "./common.js";
import { setupBrandStyles } from "./brand.js";

const form = $("#new-job");
const maxBytes = Number(form.dataset.maxBytes);
const fileInput = $("#video");
const dropzone = $("#dropzone");
const chosen = $("#chosen");
const urlInput = $("#source-url");
const submit = $("#submit-job");
const cancel = $("#cancel-upload");
const jobError = $("#job-error");
const list = $("#job-list");
const jobs = new Map(); // id -> job as the API shows it, updated by WebSocket messages
const watchers = new Map(); // id -> stop()
let file = null;
let currentUpload = null;

// -- the source ---------------------------------------------------------------------------------

function chooseFile(picked) {
  showMessage(jobError, "");
  if (!picked) return;
  if (picked.size > maxBytes) {
    file = null;
    fileInput.value = "";
    dropzone.classList.remove("has-file");
    chosen.hidden = true;
    showMessage(jobError, `“${picked.name}” is ${formatBytes(picked.size)}; the limit is ${formatBytes(maxBytes)}. `
      + "Trim or compress it first, or import it from a link.");
    return;
  }
  file = picked;
  urlInput.value = "";
  chosen.textContent = `${picked.name} · ${formatBytes(picked.size)}`;
  chosen.hidden = false;
  dropzone.classList.add("has-file");
}

fileInput.addEventListener("change", () => chooseFile(fileInput.files[0]));
$("#pick-file").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    fileInput.click();
  }
});
for (const type of ["dragenter", "dragover"]) {
  dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    dropzone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropzone.addEventListener(type, () => dropzone.classList.remove("dragging"));
}
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  const dropped = event.dataTransfer && event.dataTransfer.files[0];
  if (dropped) chooseFile(dropped);
});
urlInput.addEventListener("input", () => {
  if (urlInput.value.trim() && file) {
    file = null;
    fileInput.value = "";
    chosen.hidden = true;
    dropzone.classList.remove("has-file");
  }
});

// -- the options --------------------------------------------------------------------------------

function invalid(input, message) {
  input.setAttribute("aria-invalid", "true");
  input.focus();
  return { error: message };
}

function readOptions() {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const radio = (name) => form.querySelector(`input[name="${name}"]:checked`).value;
  const numInput = $("#numClips");
  const numClips = Number(numInput.value);
  if (!Number.isInteger(numClips) || numClips < Number(numInput.min) || numClips > Number(numInput.max)) {
    return invalid(numInput, `Number of clips must be a whole number from ${numInput.min} to ${numInput.max}.`);
  }
  const startInput = $("#trimStart");
  const endInput = $("#trimEnd");
  const trimStart = startInput.value.trim() === "" ? 0 : Number(startInput.value);
  if (!Number.isFinite(trimStart) || trimStart < 0) return invalid(startInput, "Trim start must be 0 seconds or more.");
  let trimEnd = null;
  if (endInput.value.trim() !== "") {
    trimEnd = Number(endInput.value);
    if (!Number.isFinite(trimEnd) || trimEnd <= trimStart) {
      return invalid(endInput, "Trim end must be later than trim start (or empty for the end of the video).");
    }
  }
  const extra = {};
  for (const el of form.querySelectorAll("[data-option]")) { // options without a designed control
    const kind = el.dataset.kind;
    if (kind === "boolean") extra[el.dataset.option] = el.checked;
    else if (kind === "json") { // an object option (captionStyle): JSON, or empty for none
      if (el.value.trim() === "") extra[el.dataset.option] = null;
      else {
        let value;
        try { value = JSON.parse(el.value); } catch { value = undefined; }
        if (value === null || typeof value !== "object" || Array.isArray(value)) {
          return invalid(el, `${el.labels[0] ? el.labels[0].textContent : el.dataset.option} must be a JSON object, e.g. {"textColor": "#FFD60A"}.`);
        }
        extra[el.dataset.option] = value;
      }
    } else if (kind === "integer" || kind === "number") {
      if (el.value.trim() === "" && el.dataset.nullable) extra[el.dataset.option] = null;
      else if (el.value.trim() !== "") extra[el.dataset.option] = Number(el.value);
    } else if (el.value.trim() !== "") extra[el.dataset.option] = el.value.trim();
    else if (el.dataset.nullable) extra[el.dataset.option] = null; // an empty text field: not set
    else extra[el.dataset.option] = "";
  }
  return {
    options: {
      ...extra,
      mode: radio("mode"),
      numClips,
      clipLength: $("#clipLength").value,
      aspectRatio: radio("aspectRatio"),
      captionPreset: radio("captionPreset"),
      removeAiVoice: $("#removeAiVoice").checked,
      autoHook: $("#autoHook").checked,
      prompt: $("#prompt").value.trim(),
      genre: $("#genre").value,
      trimStart,
      trimEnd,
    },
  };
}

// -- uploading ----------------------------------------------------------------------------------

function setProgress(fraction, label) {
  $("#upload-progress").hidden = false;
  const pct = Math.round(fraction * 100);
  $("#upload-bar").value = pct;
  $("#upload-pct").textContent = `${pct} %`;
  $("#upload-label").textContent = label;
}

/** POST /api/upload with XMLHttpRequest: fetch() cannot report upload progress. */
function sendUpload(video, options) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", "/api/upload");
    xhr.setRequestHeader("Accept", "application/json");
    if (csrfToken()) xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) setProgress(event.loaded / event.total, `Uploading ${video.name}…`);
    });
    xhr.upload.addEventListener("load", () => setProgress(1, "Checking the video…"));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status === 200 && body) resolve(body);
      else {
        reject(new ApiError(xhr.status, humanError(xhr.status, body && body.error, {
          tooLarge: `That file is larger than the ${formatBytes(maxBytes)} upload limit.`,
        }), body));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, humanError(0))));
    xhr.addEventListener("abort", () => reject(new ApiError(-1, "Upload cancelled.")));
    const data = new FormData();
    data.append("options", JSON.stringify(options));
    data.append("video", video, video.name);
    xhr.send(data);
  });
  return { promise, abort: () => xhr.abort() };
}

function busy(on) {
  submit.disabled = on;
  cancel.hidden = !on || !currentUpload;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

cancel.addEventListener("click", () => currentUpload && currentUpload.abort());

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showMessage(jobError, "");
  const url = urlInput.value.trim();
  if (!file && !url) {
    showMessage(jobError, "Choose a video file (or drop one on the box), or paste a link to a video.");
    return;
  }
  if (!file && !/^https?:\/\/\S+$/i.test(url)) {
    urlInput.setAttribute("aria-invalid", "true");
    urlInput.focus();
    showMessage(jobError, "Paste a full link that starts with http:// or https://.");
    return;
  }
  const { options, error } = readOptions();
  if (error) {
    showMessage(jobError, error);
    return;
  }
  try {
    let created;
    if (file) {
      currentUpload = sendUpload(file, options);
      busy(true);
      setProgress(0, `Uploading ${file.name}…`);
      created = await currentUpload.promise;
      toast("Upload complete — processing has started");
    } else {
      busy(true);
      created = await api("/api/upload/url", {
        method: "POST", json: { url, options },
        ctx: { notFound: "Importing from a link isn't available on this server yet. Download the video and upload the file instead." },
      });
      toast("Link accepted — downloading the video");
    }
    file = null;
    fileInput.value = "";
    urlInput.value = "";
    chosen.hidden = true;
    dropzone.classList.remove("has-file");
    $("#upload-progress").hidden = true;
    if (created.webhookSecret) { // the account's signing secret, made for this job: shown this once
      $("#webhook-secret-value").textContent = created.webhookSecret;
      $("#webhook-secret").hidden = false;
    }
    upsert({ id: created.jobId, originalName: created.originalName || url, status: created.status || "queued", progress: 0,
      stage: "", message: "", createdAt: Date.now(), clipCount: 0, posterUrl: null });
    follow(created.jobId);
  } catch (err) {
    $("#upload-progress").hidden = true;
    showMessage(jobError, err.message);
  } finally {
    currentUpload = null;
    busy(false);
  }
});

// -- the job list -------------------------------------------------------------------------------

function subtitle(job) {
  if (job.status === "completed") {
    return `${job.clipCount} clip${job.clipCount === 1 ? "" : "s"} · ${formatDate(job.createdAt)}`;
  }
  if (job.status === "failed") return job.error || job.message || "Failed";
  if (job.status === "queued") return job.message || "Waiting for a free worker…";
  const pct = Math.round((job.progress || 0) * 100);
  return `${job.message || job.stage || "Working"} · ${pct} %`;
}

function renderJob(job) {
  const li = document.createElement("li");
  li.className = "job-item";
  li.dataset.jobId = job.id;
  li.dataset.status = job.status;
  if (job.posterUrl) {
    const img = document.createElement("img");
    img.className = "job-thumb";
    img.src = job.posterUrl;
    img.alt = "";
    img.loading = "lazy";
    li.append(img);
  } else {
    const placeholder = document.createElement("span");
    placeholder.className = "job-thumb";
    li.append(placeholder);
  }
  const main = document.createElement("div");
  main.className = "job-main";
  const link = document.createElement("a");
  link.className = "job-name";
  link.href = `/jobs/${encodeURIComponent(job.id)}`;
  link.textContent = job.originalName;
  link.title = fullDate(job.createdAt);
  const sub = document.createElement("span");
  sub.className = "job-sub";
  sub.textContent = subtitle(job);
  main.append(link, sub);
  if (!TERMINAL.has(job.status)) {
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = Math.round((job.progress || 0) * 100);
    bar.setAttribute("aria-label", `${job.originalName} progress`);
    main.append(bar);
  }
  const badge = document.createElement("span");
  badge.className = `badge status-${job.status}`;
  badge.textContent = STATUS_LABELS[job.status] || job.status;
  li.append(main, badge);
  return li;
}

function renderList() {
  const sorted = [...jobs.values()].sort((a, b) => b.createdAt - a.createdAt);
  list.replaceChildren(...sorted.map(renderJob));
  if (!sorted.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "No jobs yet. Upload a video above and your clips will appear here.";
    list.append(li);
  }
  $("#live-indicator").hidden = watchers.size === 0;
}

function upsert(job) {
  jobs.set(job.id, { ...(jobs.get(job.id) || {}), ...job });
  renderList();
}

async function refresh(jobId) {
  try {
    upsert(await api(`/api/jobs/${encodeURIComponent(jobId)}`));
  } catch (err) {
    showMessage($("#jobs-error"), err.message);
  }
}

function follow(jobId) {
  if (watchers.has(jobId)) return;
  const stop = watchJob(jobId, (message) => {
    const job = jobs.get(jobId) || { id: jobId };
    const update = { ...job };
    if (message.status) update.status = message.status;
    if ("progress" in message) update.progress = message.progress;
    if (message.stage) update.stage = message.stage;
    if (message.message !== undefined) update.message = message.message;
    if (message.type === "failed") update.error = message.error || message.message;
    if (message.type === "completed") update.clipCount = message.clipCount;
    upsert(update);
    if (message.type === "completed" || message.type === "failed") {
      watchers.delete(jobId);
      refresh(jobId); // the poster and final counts
    }
  });
  watchers.set(jobId, stop);
  renderList();
}

async function loadJobs() {
  try {
    const body = await api("/api/jobs");
    for (const job of body.jobs) jobs.set(job.id, job);
    renderList();
    for (const job of body.jobs) if (!TERMINAL.has(job.status)) follow(job.id);
  } catch (err) {
    list.replaceChildren();
    showMessage($("#jobs-error"), err.message);
  }
}

window.addEventListener("pagehide", () => { for (const stop of watchers.values()) stop(); });
loadJobs();
setupBrandStyles(form);

// /?deleted=1: the job page just deleted a job
if (new URLSearchParams(window.location.search).has("deleted")) {
  toast("Job deleted");
  window.history.replaceState(null, "", "/");
}
