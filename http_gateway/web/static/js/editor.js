// The clip editor on /jobs/{id}: trim handles over the clip's words, click a word to correct it,
// caption style / aspect / framing / pacing, then "Render again" (POST /api/clips/{job}/{n}/render)
// with live progress over the WebSocket; when it completes the new version plays.
import { $, api, formatSeconds, showMessage, toast, watchJob } from "./common.js";

const dialog = $("#editor");
const wordDialog = $("#word-dialog");
const startInput = $("#trim-start");
const endInput = $("#trim-end");
const OPTION_FIELDS = { captionPreset: "#ed-preset", aspectRatio: "#ed-aspect", layout: "#ed-layout" };
const CHECK_FIELDS = { captionEmoji: "#ed-emoji", removeSilence: "#ed-silence", removeFillers: "#ed-fillers" };

let state = null; // { jobId, index, ctx, start, end, fixes: Map, onDone, stop }

function words() { return state.ctx.words; }

function lengthText() {
  const s = state.end - state.start;
  const { minSeconds, maxSeconds } = state.ctx.limits;
  const bad = s < minSeconds || s > maxSeconds;
  return { text: `${s.toFixed(2)} s${bad ? ` — a clip lasts ${minSeconds}–${maxSeconds} s` : ""}`, bad };
}

function paintTrim() {
  startInput.value = state.start;
  endInput.value = state.end;
  $("#trim-start-out").textContent = formatSeconds(state.start);
  $("#trim-end-out").textContent = formatSeconds(state.end);
  startInput.setAttribute("aria-valuetext", `${formatSeconds(state.start)} of the source`);
  endInput.setAttribute("aria-valuetext", `${formatSeconds(state.end)} of the source`);
  const { text, bad } = lengthText();
  const length = $("#trim-length");
  length.textContent = `Clip length ${text}`;
  length.classList.toggle("field-error", bad);
  for (const chip of $("#editor-words").children) {
    const w = words()[Number(chip.dataset.pos)];
    const mid = (w.start + w.end) / 2;
    chip.classList.toggle("in", mid >= state.start && mid < state.end);
  }
}

function chipText(w) { return state.fixes.has(w.index) ? state.fixes.get(w.index) : w.text; }

function paintWords() {
  const box = $("#editor-words");
  box.replaceChildren(...words().map((w, pos) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "word";
    chip.dataset.pos = String(pos);
    const text = chipText(w);
    chip.textContent = text;
    const fixed = state.fixes.has(w.index) ? state.fixes.get(w.index) !== w.text : Boolean(w.heard);
    chip.classList.toggle("fixed", fixed);
    chip.title = `${formatSeconds(w.start)}–${formatSeconds(w.end)}${w.heard ? ` · heard “${w.heard}”` : ""}`;
    chip.setAttribute("aria-label", `${text}, at ${formatSeconds(w.start)}${fixed ? ", corrected" : ""}`);
    chip.addEventListener("click", () => openWord(pos));
    return chip;
  }));
  paintTrim();
}

let wordPos = -1;
function openWord(pos) {
  wordPos = pos;
  const w = words()[pos];
  $("#word-title").textContent = `Word at ${formatSeconds(w.start)}`;
  $("#word-text").value = chipText(w);
  const heard = $("#word-heard");
  heard.textContent = w.heard ? `The speech recognition heard “${w.heard}”.` : "";
  heard.hidden = !w.heard;
  wordDialog.returnValue = "";
  wordDialog.showModal();
  $("#word-text").select();
}

wordDialog.addEventListener("close", () => {
  if (!state || wordPos < 0) return;
  const w = words()[wordPos];
  const action = wordDialog.returnValue;
  if (action === "save") {
    const text = $("#word-text").value.trim();
    if (text) state.fixes.set(w.index, text);
  } else if (action === "start") {
    state.start = Math.min(w.start, state.end - state.ctx.limits.minSeconds);
  } else if (action === "end") {
    state.end = Math.max(w.end, state.start + state.ctx.limits.minSeconds);
  }
  wordPos = -1;
  paintWords();
});
$("#word-text").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); wordDialog.close("save"); }
});

startInput.addEventListener("input", () => {
  state.start = Math.min(Number(startInput.value), state.end - state.ctx.limits.minSeconds);
  paintTrim();
});
endInput.addEventListener("input", () => {
  state.end = Math.max(Number(endInput.value), state.start + state.ctx.limits.minSeconds);
  paintTrim();
});

function fillForm() {
  const { ctx } = state;
  const lo = Math.max(ctx.span[0], words().length ? Math.min(words()[0].start, ctx.start) : ctx.start);
  const hi = Math.min(ctx.span[1], words().length ? Math.max(words()[words().length - 1].end, ctx.end) : ctx.end);
  for (const input of [startInput, endInput]) { input.min = lo; input.max = hi; }
  state.start = ctx.start;
  state.end = ctx.end;
  state.fixes = new Map();
  for (const [key, sel] of Object.entries(OPTION_FIELDS)) $(sel).value = ctx.options[key];
  for (const [key, sel] of Object.entries(CHECK_FIELDS)) $(sel).checked = Boolean(ctx.options[key]);
  $("#ed-emphasis").checked = ctx.options.captionEmphasis !== "none";
  $("#editor-version").textContent = `Version ${ctx.version}`;
  paintWords();
}

/** The request: only what differs from the clip as published. */
function changes() {
  const { ctx } = state;
  const edit = {};
  if (Math.abs(state.start - ctx.start) > 0.005) edit.start = Number(state.start.toFixed(3));
  if (Math.abs(state.end - ctx.end) > 0.005) edit.end = Number(state.end.toFixed(3));
  const fixes = [...state.fixes].filter(([i, text]) => text !== words().find((w) => w.index === i).text);
  if (fixes.length) edit.words = fixes.map(([index, text]) => ({ index, text }));
  for (const [key, sel] of Object.entries(OPTION_FIELDS)) if ($(sel).value !== ctx.options[key]) edit[key] = $(sel).value;
  for (const [key, sel] of Object.entries(CHECK_FIELDS)) if ($(sel).checked !== Boolean(ctx.options[key])) edit[key] = $(sel).checked;
  const emphasis = $("#ed-emphasis").checked ? "auto" : "none";
  if (emphasis !== (ctx.options.captionEmphasis || "auto")) edit.captionEmphasis = emphasis;
  return edit;
}

function busy(on) {
  $("#editor-render").disabled = on;
  $("#editor-reset").disabled = on;
  $("#editor-progress").hidden = !on;
}

function follow(renderId) {
  busy(true);
  const bar = $("#editor-progress-bar");
  state.stop = watchJob(renderId, async (m) => {
    if (m.type === "progress" || m.type === "status") {
      if ("progress" in m) {
        bar.value = m.progress * 100;
        $("#editor-progress-pct").textContent = `${Math.round(m.progress * 100)} %`;
      }
      if (m.message) $("#editor-progress-label").textContent = m.stage ? `${m.stage}: ${m.message}` : m.message;
    } else if (m.type === "completed") {
      busy(false);
      const done = state;
      const manifest = await api(`/api/clips/${encodeURIComponent(done.jobId)}`);
      const clip = manifest.clips.find((c) => c.index === done.index);
      done.onDone(clip, manifest);
      await load(done.jobId, done.index, done.onDone);
      const video = $("#editor-video");
      video.src = clip.downloadUrl;
      video.poster = clip.posterUrl;
      video.play().catch(() => {});
      toast(`Clip ${done.index} rendered again — version ${clip.version}`);
    } else if (m.type === "failed") {
      busy(false);
      showMessage($("#editor-error"), `The render failed: ${m.error || m.message || "no reason given"}`);
    }
  });
}

async function load(jobId, index, onDone) {
  const ctx = await api(`/api/clips/${encodeURIComponent(jobId)}/${index}/edit`);
  if (state && state.stop) state.stop();
  state = { jobId, index, ctx, onDone, fixes: new Map(), stop: null };
  fillForm();
  return ctx;
}

/** Open the editor on clip ``clip`` of job ``jobId``; ``onDone(clip, manifest)`` gets the new version. */
export async function openEditor(jobId, clip, onDone) {
  showMessage($("#editor-error"), "");
  $("#editor-title").textContent = `Edit clip ${clip.index}`;
  const video = $("#editor-video");
  video.src = clip.downloadUrl;
  video.poster = clip.posterUrl;
  busy(false);
  dialog.showModal();
  try {
    const ctx = await load(jobId, clip.index, onDone);
    const running = ctx.renders.find((r) => r.status !== "completed" && r.status !== "failed");
    if (running) follow(running.id);
  } catch (err) {
    showMessage($("#editor-error"), `Couldn't open the editor. ${err.message}`);
  }
}

$("#editor-close").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => { if (state && state.stop) state.stop(); });
$("#editor-reset").addEventListener("click", () => { if (state) fillForm(); showMessage($("#editor-error"), ""); });
$("#editor-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!state) return;
  showMessage($("#editor-error"), "");
  const edit = changes();
  if (!Object.keys(edit).length) {
    showMessage($("#editor-error"), "Nothing has changed yet: trim the clip, correct a word or pick another style.");
    return;
  }
  if (lengthText().bad) {
    showMessage($("#editor-error"), `A clip lasts ${state.ctx.limits.minSeconds}–${state.ctx.limits.maxSeconds} s.`);
    return;
  }
  try {
    const render = await api(`/api/clips/${encodeURIComponent(state.jobId)}/${state.index}/render`,
      { method: "POST", json: edit, ctx: { conflict: "This clip is being rendered already." } });
    $("#editor-progress-label").textContent = "Queued…";
    $("#editor-progress-bar").value = 0;
    $("#editor-progress-pct").textContent = "0 %";
    follow(render.jobId);
  } catch (err) {
    showMessage($("#editor-error"), err.message);
  }
});
