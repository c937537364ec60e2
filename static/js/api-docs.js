// The API docs page: Swagger UI renders a few controls without an accessible name, names a
// button other than it reads, and scrolls code boxes a keyboard cannot reach (axe:
// select-name, button-name, label-content-name-mismatch, scrollable-region-focusable).
// It re-renders as people open operations, so each new part is mended as it appears.
(() => {
  // Swagger UI carries a dark theme of its own, on a class of <html> that only its
  // standalone top bar's switch sets (this page has no top bar): follow the colour scheme
  // the system asks for, as the app's own pages do (static/css/api-docs.css mends the theme).
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const follow = () => document.documentElement.classList.toggle("dark-mode", dark.matches);
  dark.addEventListener("change", follow);
  follow();

  const root = document.getElementById("swagger-ui");
  if (!root) return;

  const mend = () => {
    // A parameter's enum choices: the row names the parameter.
    root.querySelectorAll("tr[data-param-name] select:not([aria-label])").forEach((select) => {
      select.setAttribute("aria-label", select.closest("tr").dataset.paramName);
    });
    root.querySelectorAll(".copy-to-clipboard button:not([aria-label])").forEach((button) => {
      button.setAttribute("aria-label", "Copy to clipboard");
    });
    root.querySelectorAll("button.close-modal:not([aria-label])").forEach((button) => {
      button.setAttribute("aria-label", "Close");
    });
    // "Authorize" labelled "Apply credentials", "Logout" labelled "Remove authorization":
    // a voice user says what they see, so the visible words are the name.
    root.querySelectorAll(".modal-ux button[aria-label]").forEach((button) => {
      const text = button.textContent.trim();
      if (text && !button.getAttribute("aria-label").includes(text)) {
        button.removeAttribute("aria-label");
      }
    });
    root.querySelectorAll("pre:not([tabindex])").forEach((pre) => {
      pre.setAttribute("tabindex", "0");
    });
  };

  // Only added nodes are watched: the attributes set here do not wake the observer.
  new MutationObserver(mend).observe(root, { childList: true, subtree: true });
  mend();
})();
