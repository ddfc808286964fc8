// Runs before first paint (a classic, blocking script) so a dark-mode page never flashes light.
(function () {
  var theme = null;
  try { theme = localStorage.getItem("clipora-theme"); } catch (e) { theme = null; }
  if (theme !== "dark" && theme !== "light") {
    theme = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  document.documentElement.setAttribute("data-theme", theme);
})();
