// The page chrome on every page: theme switch, log out, copy buttons, byte sizes.
import { $, api, copyText, formatBytes, toast } from "./common.js";

const root = document.documentElement;
const themeButton = $("#theme-toggle");
function labelTheme() {
  const next = root.dataset.theme === "dark" ? "light" : "dark";
  themeButton.setAttribute("aria-label", `Switch to the ${next} theme`);
  themeButton.title = `Switch to the ${next} theme`;
}
if (themeButton) {
  labelTheme();
  themeButton.addEventListener("click", () => {
    root.dataset.theme = root.dataset.theme === "dark" ? "light" : "dark";
    try { localStorage.setItem("clipora-theme", root.dataset.theme); } catch { /* private mode */ }
    labelTheme();
  });
}

const logout = $("#logout");
if (logout) {
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    try {
      await api("/api/auth/logout", { method: "POST" });
      window.location.assign("/login");
    } catch (err) {
      logout.disabled = false;
      toast(err.message);
    }
  });
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copyTarget);
  if (!source) return;
  const ok = await copyText(source.textContent);
  toast(ok ? "Copied to the clipboard" : "Copy failed — select the text and copy it by hand");
});

for (const el of document.querySelectorAll("[data-bytes]")) el.textContent = formatBytes(el.dataset.bytes);
