// The checklist page's rows: open in place, keyboard, bulk selection. Without this file each
// row still opens (a <details>) to a link to the item's own page, and the bulk form posts.
(() => {
  const region = () => document.getElementById("checklist-items");
  const rows = () => Array.from(document.querySelectorAll(".item-row"));
  const summaryOf = (row) => row.querySelector(".row-summary");
  let currentId = null;

  function rowOf(element) {
    return element && element.closest ? element.closest(".item-row") : null;
  }

  function current() {
    return rowOf(document.activeElement) || (currentId && document.getElementById(currentId));
  }

  function focusRow(row) {
    if (!row) return;
    rows().forEach((other) => other.classList.toggle("is-current", other === row));
    currentId = row.id;
    summaryOf(row).focus();
    summaryOf(row).scrollIntoView({ block: "nearest" });
  }

  // Work that waits for a row's card to arrive (a status key pressed on a closed row).
  const pending = new Map();

  function withCard(row, action) {
    const form = row.querySelector(".item-form");
    const card = row.querySelector(".item");
    if (card) {
      if (form) action(form);
      return;
    }
    pending.set(row.id, action);
    const details = row.querySelector("details");
    if (!details.open) details.open = true; // its toggle event fetches the card (hx-trigger)
  }

  document.addEventListener("htmx:afterSettle", (event) => {
    const row = rowOf(event.target);
    if (!row || !pending.has(row.id)) return;
    const action = pending.get(row.id);
    pending.delete(row.id);
    const form = row.querySelector(".item-form");
    if (form) action(form);
  });

  function setStatus(row, value) {
    withCard(row, (form) => {
      const radio = form.querySelector(`.status-group input[value="${value}"]`);
      if (!radio || radio.checked) return;
      radio.checked = true;
      // app.js decides what follows: a save a moment later, or the reason field first.
      radio.dispatchEvent(new Event("change", { bubbles: true }));
      if (document.activeElement === document.body) summaryOf(row).focus();
    });
  }

  function save(row) {
    withCard(row, (form) => form.requestSubmit());
  }

  const STATUS_KEYS = { 1: "open", 2: "done", 3: "not_applicable", 4: "failed" };
  const typing = (element) =>
    element && (element.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName)) &&
    !(element.type === "checkbox" || element.type === "radio");

  document.addEventListener("keydown", (event) => {
    const list = region();
    if (!list || event.defaultPrevented || event.altKey) return;
    const target = event.target;
    // Single-key shortcuts act only inside the items (WCAG 2.1.4): elsewhere keys are the page's.
    if (!list.contains(target)) return;
    const row = current();
    if (typing(target)) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter" && target.form &&
          target.form.matches(".item-form")) {
        event.preventDefault();
        target.form.requestSubmit();
      } else if (event.key === "Escape" && row) {
        event.preventDefault();
        focusRow(row);
      }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    const all = rows();
    const index = row ? all.indexOf(row) : -1;
    const onSummary = target.matches(".row-summary");
    switch (event.key) {
      case "j":
        focusRow(all[Math.min(index + 1, all.length - 1)]);
        break;
      case "ArrowDown":
        if (!onSummary) return;
        focusRow(all[Math.min(index + 1, all.length - 1)]);
        break;
      case "k":
        focusRow(all[Math.max(index - 1, 0)]);
        break;
      case "ArrowUp":
        if (!onSummary) return;
        focusRow(all[Math.max(index - 1, 0)]);
        break;
      case "o":
        if (!row) return;
        row.querySelector("details").open = !row.querySelector("details").open;
        break;
      case "s":
        if (!row) return;
        save(row);
        break;
      case "x": {
        const box = row && row.querySelector(".row-select input");
        if (!box) return;
        box.checked = !box.checked;
        box.dispatchEvent(new Event("change", { bubbles: true }));
        break;
      }
      case "/": {
        const search = list.querySelector(".item-search input[type=search]");
        if (!search) return;
        search.focus();
        search.select();
        break;
      }
      case "?":
        openHelp();
        break;
      default:
        if (!(event.key in STATUS_KEYS) || !row) return;
        setStatus(row, STATUS_KEYS[event.key]);
    }
    event.preventDefault();
  });

  document.addEventListener("focusin", (event) => {
    const row = rowOf(event.target);
    if (row && row.id !== currentId) {
      rows().forEach((other) => other.classList.toggle("is-current", other === row));
      currentId = row.id;
    }
  });

  function openHelp() {
    const help = document.getElementById("shortcut-help");
    if (help && !help.open) help.showModal();
  }

  // How many items a bulk change would touch.
  function countSelected() {
    const count = document.getElementById("bulk-count");
    if (!count) return;
    const selected = document.querySelectorAll('.row-select input:checked').length;
    count.textContent = selected
      ? `${selected} item${selected === 1 ? "" : "s"} selected`
      : "Tick items to change several at once";
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches(".row-select input")) countSelected();
  });

  function start() {
    if (!region()) return;
    countSelected();
    const button = document.querySelector(".shortcut-help-button");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", openHelp);
    }
    // A link to an item (#item-N from the role pages and the history, #row-N after a save)
    // opens its row.
    const match = /^#(?:item|row)-(\d+)$/.exec(location.hash);
    const row = match && document.getElementById(`row-${match[1]}`);
    if (row) {
      row.querySelector("details").open = true;
      focusRow(row);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
