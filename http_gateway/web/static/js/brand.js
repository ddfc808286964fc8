// The dashboard's brand style: the account's saved styles (a picker that sets captionStyleId), a form that
// saves the current style, font uploads (/api/fonts), and a live preview of the style on the chosen preset's
// sample. The job is sent with captionStyleId and the JSON changes as they are: the server copies the saved
// style into the job and puts the changes over it, field by field (what the preview shows).
import { $, ApiError, api, csrfToken, humanError, showMessage } from "./common.js";

// captionStyle.font's bundled families, as app.css names them (@font-face over /fonts/)
const FAMILIES = {
  "luckiest-guy": '"Luckiest Guy"', "montserrat-black": '"Montserrat Black"', "poppins-extrabold": '"Poppins ExtraBold"',
  "noto-sans-black": '"Noto Sans Black"', "noto-sans-extrabold": '"Noto Sans ExtraBold"',
};
const DEFAULT_POSITION = 0.7; // the captions' centre in a 9:16 frame when the style does not move them
const MAX_FONT_BYTES = 10 * 1024 * 1024;

export function setupBrandStyles(form) {
  const picker = $("#opt-captionStyleId");
  const changes = $("#opt-captionStyle");
  const nameInput = $("#style-name");
  const saveButton = $("#save-style");
  const deleteButton = $("#delete-style");
  const fontInput = $("#font-file");
  const fontList = $("#font-list");
  const error = $("#style-error");
  const status = $("#style-status");
  const caption = $("#preview-caption");
  const styles = new Map(); // id -> saved style
  const faces = new Map(); // uploaded font id -> Promise of its FontFace
  if (!picker || !caption) return;

  const say = (message) => { status.textContent = message || ""; };
  const fail = (err) => showMessage(error, err instanceof ApiError ? err.message : String(err));
  const preset = () => (form.querySelector('input[name="captionPreset"]:checked') || {}).value || "none";

  /** The JSON changes as an object ({} when empty), or null when they are not a JSON object. */
  function parsedChanges() {
    const text = changes.value.trim();
    if (!text) return {};
    try {
      const value = JSON.parse(text);
      return value && typeof value === "object" && !Array.isArray(value) ? value : null;
    } catch {
      return null;
    }
  }

  /** What the job will get: the saved style's fields with the changes over them (no server-set fontFile). */
  function currentStyle() {
    const saved = styles.get(picker.value);
    const style = { ...(saved ? saved.style : {}), ...(parsedChanges() || {}) };
    delete style.fontFile;
    return style;
  }

  function fontFace(id) {
    if (!faces.has(id)) {
      const face = new FontFace(`clipora-${id}`, `url(/api/fonts/${id}/file)`);
      faces.set(id, face.load().then((loaded) => {
        document.fonts.add(loaded);
        render();
        return loaded;
      }).catch(() => showMessage(error, "That font could not be loaded for the preview.")));
    }
    return faces.get(id);
  }

  function render() {
    const name = preset();
    const sample = form.querySelector(`.preset-choice .preset-sample.preset-${name}`);
    // captionPreset none burns nothing in; its caption files use a plain look like karaoke's, without highlight
    caption.className = `preset-sample preview-caption preset-${name === "none" ? "karaoke" : name}`;
    caption.replaceChildren();
    if (name === "none" || !sample) {
      for (const word of ["Here's", "the", "secret"]) {
        const span = document.createElement("span");
        span.className = "w";
        span.textContent = word;
        caption.append(span, " ");
      }
    } else {
      for (const node of sample.childNodes) caption.append(node.cloneNode(true));
    }
    const style = currentStyle();
    caption.dataset.style = JSON.stringify(style); // what the preview shows (read by the browser tests)
    const c = caption.style;
    c.fontFamily = "";
    c.fontSize = "";
    c.textTransform = style.uppercase === true ? "uppercase" : style.uppercase === false ? "none" : "";
    c.top = `${100 * (typeof style.position === "number" ? style.position : DEFAULT_POSITION)}%`;
    if (typeof style.font === "string") {
      if (FAMILIES[style.font]) c.fontFamily = FAMILIES[style.font];
      else if (style.font.startsWith("font_")) {
        c.fontFamily = `"clipora-${style.font}", sans-serif`;
        fontFace(style.font);
      }
    }
    if (typeof style.size === "number") {
      const base = parseFloat(getComputedStyle(caption).fontSize) || 16;
      c.fontSize = `${base * style.size}px`;
    }
    const words = [...caption.querySelectorAll(".w")];
    words.forEach((w, i) => {
      const accent = w.classList.contains("on") || w.classList.contains("key");
      w.hidden = typeof style.wordsPerGroup === "number" && i >= style.wordsPerGroup;
      w.style.color = accent ? (style.highlightColor || "") : (style.textColor || "");
      w.style.webkitTextStrokeWidth = typeof style.outlineWidth === "number" ? `${2 * style.outlineWidth}em` : "";
      w.style.webkitTextStrokeColor = style.outlineColor || "";
      w.style.textShadow = style.shadowColor ? `0.06em 0.08em 0.05em ${style.shadowColor}` : "";
    });
    deleteButton.hidden = !picker.value;
    if (parsedChanges() === null) say("The changes are not a JSON object yet; the preview leaves them out.");
    else if (status.textContent.startsWith("The changes are not")) say("");
  }

  function fillPicker(selected) {
    picker.replaceChildren(new Option("None: the preset's own look", ""));
    for (const s of styles.values()) picker.append(new Option(s.captionPreset ? `${s.name} (${s.captionPreset})` : s.name, s.id));
    picker.value = styles.has(selected) ? selected : "";
  }

  async function loadStyles(selected = picker.value) {
    const body = await api("/api/styles");
    styles.clear();
    for (const s of body.styles) styles.set(s.id, s);
    fillPicker(selected);
    render();
  }

  function useFont(id) {
    const current = parsedChanges() || {};
    current.font = id;
    changes.value = JSON.stringify(current);
    render();
  }

  function fontItem(font) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "font-name";
    label.textContent = `${font.family} ${font.style}`;
    label.title = `${font.fullName} · ${font.format} · ${font.coverage.join(", ")} · ${font.id}`;
    const use = document.createElement("button");
    use.type = "button";
    use.className = "button ghost small";
    use.textContent = "Use";
    use.setAttribute("aria-label", `Use ${font.family} ${font.style}`);
    use.addEventListener("click", () => useFont(font.id));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button ghost small";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete ${font.family} ${font.style}`);
    remove.addEventListener("click", async () => {
      showMessage(error, "");
      try {
        await api(`/api/fonts/${font.id}`, { method: "DELETE" });
        say(`Deleted ${font.family} ${font.style}.`);
        await loadFonts();
      } catch (err) { fail(err); }
    });
    li.append(label, use, remove);
    return li;
  }

  async function loadFonts() {
    const body = await api("/api/fonts");
    fontList.replaceChildren(...body.fonts.map(fontItem));
  }

  picker.addEventListener("change", () => {
    const saved = styles.get(picker.value);
    if (saved && saved.captionPreset) { // the saved style's preset, as the server would pick it
      const radio = form.querySelector(`input[name="captionPreset"][value="${saved.captionPreset}"]`);
      if (radio) radio.checked = true;
    }
    render();
  });
  changes.addEventListener("input", render);
  for (const radio of form.querySelectorAll('input[name="captionPreset"]')) radio.addEventListener("change", render);

  saveButton.addEventListener("click", async () => {
    showMessage(error, "");
    const name = nameInput.value.trim();
    if (!name) {
      nameInput.setAttribute("aria-invalid", "true");
      nameInput.focus();
      showMessage(error, "Give the style a name to save it.");
      return;
    }
    nameInput.removeAttribute("aria-invalid");
    if (parsedChanges() === null) {
      changes.setAttribute("aria-invalid", "true");
      showMessage(error, 'The changes must be a JSON object, e.g. {"textColor": "#FFD60A"}.');
      return;
    }
    const p = preset();
    try {
      const saved = await api("/api/styles", { method: "POST",
        json: { name, style: currentStyle(), captionPreset: p === "none" ? null : p } });
      changes.value = "";
      changes.removeAttribute("aria-invalid");
      nameInput.value = "";
      await loadStyles(saved.id);
      say(`Saved “${saved.name}”.`);
    } catch (err) { fail(err); }
  });

  deleteButton.addEventListener("click", async () => {
    const saved = styles.get(picker.value);
    if (!saved || !window.confirm(`Delete the saved style “${saved.name}”? Jobs that used it keep their look.`)) return;
    showMessage(error, "");
    try {
      await api(`/api/styles/${saved.id}`, { method: "DELETE" });
      await loadStyles("");
      say(`Deleted “${saved.name}”.`);
    } catch (err) { fail(err); }
  });

  fontInput.addEventListener("change", async () => {
    const picked = fontInput.files[0];
    showMessage(error, "");
    if (!picked) return;
    if (picked.size > MAX_FONT_BYTES) {
      showMessage(error, `“${picked.name}” is larger than the 10 MB a font may be.`);
      fontInput.value = "";
      return;
    }
    const data = new FormData();
    data.append("font", picked, picked.name);
    const headers = { Accept: "application/json" };
    if (csrfToken()) headers["X-CSRF-Token"] = csrfToken();
    say(`Uploading ${picked.name}…`);
    try {
      let response;
      try {
        response = await fetch("/api/fonts", { method: "POST", body: data, headers, credentials: "same-origin" });
      } catch {
        throw new ApiError(0, humanError(0));
      }
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        throw new ApiError(response.status, humanError(response.status, body && body.error,
          { tooLarge: "That font is larger than the 10 MB a font may be." }), body);
      }
      await loadFonts();
      useFont(body.id);
      say(`Uploaded ${body.family} ${body.style}; the changes now use it.`);
    } catch (err) {
      say("");
      fail(err);
    } finally {
      fontInput.value = "";
    }
  });

  render();
  Promise.all([loadStyles(""), loadFonts()]).catch(fail);
}
