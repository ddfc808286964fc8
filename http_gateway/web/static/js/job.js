// /jobs/{id}: live progress while the job runs, then the gallery of clips.
import { $, STATUS_LABELS, api, copyText, formatSeconds, showMessage, toast, watchJob } from "./common.js";
import { openEditor } from "./editor.js";

const root = $("#job");
const jobId = root.dataset.jobId;
const badge = $("#job-status");

function setStatus(status) {
  root.dataset.status = status;
  badge.className = `badge status-${status}`;
  badge.textContent = STATUS_LABELS[status] || status;
}

function setProgress(message) {
  if ("progress" in message) {
    const pct = Math.round(message.progress * 100);
    $("#progress-bar").value = message.progress * 100;
    $("#progress-pct").textContent = `${pct} %`;
  }
  if (message.message) $("#progress-label").textContent = message.message;
  if (message.stage) $("#progress-stage").textContent = message.stage;
}

function fail(text) {
  setStatus("failed");
  $("#progress-card").hidden = true;
  $("#failure").hidden = false;
  $("#failure-message").textContent = text || "The job failed without a message.";
}

function link(el, href, filename) {
  el.href = href;
  el.setAttribute("download", filename);
  el.setAttribute("aria-label", `Download ${filename}`);
}

function renderClip(clip, manifestUrl) {
  const node = $("#clip-template").content.firstElementChild.cloneNode(true);
  const meta = clip.metadata || {};
  const name = String(clip.index).padStart(2, "0");
  const title = meta.title || `Clip ${clip.index}`;
  node.id = `clip-${name}`;
  const media = node.querySelector(".clip-media");
  media.classList.add(`ar-${(clip.aspectRatio || "9:16").replace(":", "-")}`);
  const video = node.querySelector("video");
  video.poster = clip.posterUrl;
  video.src = clip.downloadUrl;
  video.setAttribute("aria-label", `Clip ${clip.index}: ${title}`);
  node.querySelector(".clip-title").textContent = title;
  const score = meta.viral_score ?? clip.score;
  node.querySelector(".score").textContent = score == null ? "" : `${Number(score).toFixed(1)} / 10`;
  const hook = node.querySelector(".clip-hook");
  hook.textContent = meta.viral_hook ? `“${meta.viral_hook}”` : "";
  hook.hidden = !meta.viral_hook;
  const insight = node.querySelector(".clip-insight");
  insight.querySelector(".text").textContent = meta.key_insight || "";
  insight.hidden = !meta.key_insight;
  const tags = (meta.hashtags || []).map((t) => `#${String(t).replace(/^#/, "")}`).join(" ");
  const tagBox = node.querySelector(".hashtags");
  tagBox.querySelector(".tags").textContent = tags;
  tagBox.hidden = !tags;
  const copy = tagBox.querySelector(".copy-tags");
  copy.setAttribute("aria-label", `Copy the hashtags of clip ${clip.index}`);
  copy.addEventListener("click", async () => {
    toast((await copyText(tags)) ? "Hashtags copied" : "Copy failed — select the hashtags and copy them by hand");
  });
  node.querySelector(".clip-meta").textContent =
    `${formatSeconds(clip.start)}–${formatSeconds(clip.end)} of the source · ${Number(clip.duration).toFixed(1)} s`;
  const captions = clip.captionsUrl || clip.downloadUrl.replace(/\.mp4$/, ".ass");
  link(node.querySelector(".dl-mp4"), clip.downloadUrl, `clip_${name}.mp4`);
  link(node.querySelector(".dl-jpg"), clip.posterUrl, `clip_${name}.jpg`);
  link(node.querySelector(".dl-ass"), captions, `clip_${name}.ass`);
  // the same cues as SubRip and WebVTT (absent from the manifests of jobs made before they existed)
  for (const [ext, url] of [["srt", clip.srtUrl], ["vtt", clip.vttUrl]]) {
    const el = node.querySelector(`.dl-${ext}`);
    if (url) link(el, url, `clip_${name}.${ext}`);
    else el.hidden = true;
  }
  link(node.querySelector(".dl-manifest"), manifestUrl, "manifest.json");
  node.querySelector(".downloads").setAttribute("aria-label", `Downloads for clip ${clip.index}`);
  // a re-rendered clip: its version, and the earlier ones' files
  const versions = node.querySelector(".clip-versions");
  if (clip.version > 1) {
    versions.replaceChildren(`Version ${clip.version} · earlier: `, ...(clip.versions || []).flatMap((v, k) => {
      const a = document.createElement("a");
      a.href = v.downloadUrl;
      a.textContent = `v${v.version}`;
      a.setAttribute("download", `clip_${name}.v${v.version}.mp4`);
      a.setAttribute("aria-label", `Download version ${v.version} of clip ${clip.index}`);
      return k ? [", ", a] : [a];
    }));
    versions.hidden = false;
  }
  const edit = node.querySelector(".edit-clip");
  edit.setAttribute("aria-label", `Edit clip ${clip.index}`);
  edit.addEventListener("click", () => openEditor(jobId, clip, (fresh) => {
    node.replaceWith(renderClip(fresh, manifestUrl));
  }));
  return node;
}

async function showClips() {
  setStatus("completed");
  $("#progress-card").hidden = true;
  const gallery = $("#gallery");
  try {
    const manifest = await api(`/api/clips/${encodeURIComponent(jobId)}`);
    const manifestUrl = `/api/clips/${encodeURIComponent(jobId)}/manifest.json`;
    gallery.replaceChildren(...manifest.clips.map((clip) => renderClip(clip, manifestUrl)));
    const notes = [].concat(manifest.notes || []);
    if (!manifest.clips.length) notes.unshift("No clips could be made from this video.");
    showMessage($("#notes"), notes.join(" "));
  } catch (err) {
    showMessage($("#notes"), `Couldn't load the clips. ${err.message}`);
  }
}

const deleteDialog = $("#delete-dialog");
$("#delete-job").addEventListener("click", () => {
  deleteDialog.returnValue = "";
  deleteDialog.showModal();
});
deleteDialog.addEventListener("close", async () => {
  if (deleteDialog.returnValue !== "delete") return;
  try {
    await api(`/api/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE", ctx: { notFound: "This job no longer exists." } });
    window.location.assign("/?deleted=1");
  } catch (err) {
    showMessage($("#delete-error"), `Couldn't delete the job. ${err.message}`);
  }
});

const status = root.dataset.status;
if (status === "completed") showClips();
else if (status !== "failed") {
  watchJob(jobId, (message) => {
    if (message.type === "completed") showClips();
    else if (message.type === "failed") fail(message.error || message.message);
    else {
      if (message.status) setStatus(message.status);
      setProgress(message);
    }
  });
}
