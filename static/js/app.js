// Small enhancements only: every form also works without this file.
document.addEventListener("change", (event) => {
  const input = event.target;
  // Picking "Not applicable" needs a reason before saving: put the cursor there.
  if (input.matches('.status-group input[value="not_applicable"]') && input.checked) {
    const reason = input.form.querySelector(".na-reason textarea");
    if (reason) requestAnimationFrame(() => reason.focus());
  }
  // A new status saves itself a moment later (the item form's hx-trigger waits for this
  // event), except "Not applicable", which waits for its reason and the Save button, and a
  // change that needs a reason (sign-off was requested) while none is written: the cursor
  // goes there instead. This replaces an htmx event filter: filters are eval'd, which the
  // Content-Security-Policy forbids.
  const changeReason = input.form && input.form.querySelector(".change-reason textarea");
  const reasonMissing = changeReason && !changeReason.value.trim();
  if (input.form && input.name.endsWith("-status") && reasonMissing) {
    if (input.value !== "not_applicable") requestAnimationFrame(() => changeReason.focus());
  } else if (input.form && input.name.endsWith("-status") && input.value !== "not_applicable") {
    input.form.dispatchEvent(new CustomEvent("status-picked"));
  }
  // A failure wants its note: show "Note and evidence".
  if (input.matches('.status-group input[value="failed"]') && input.checked) {
    const more = input.form.querySelector("details.more");
    if (more) more.open = true;
  }
});

// Text a person types is theirs until it is saved: a save answers with what it stored and
// swaps only the item's status block, version and who/when (views._saved_response), never a
// field. A field whose text differs from what the server holds says "Unsaved".
function trackedFields(form) {
  return Array.from(form.querySelectorAll(".unsaved-mark"), (mark) => {
    const box = mark.closest(".field");
    return { box, mark, field: box && box.querySelector("textarea, input") };
  }).filter((entry) => entry.field);
}

function markUnsaved(form) {
  let unsaved = false;
  for (const { box, mark, field } of trackedFields(form)) {
    // The server trims what it stores: spaces at either end are not a change.
    const differs = field.value.trim() !== field.defaultValue.trim();
    box.classList.toggle("is-unsaved", differs);
    mark.hidden = !differs;
    unsaved = unsaved || differs;
  }
  return unsaved;
}

// Editing an item again clears its "Saved" and marks what differs from the saved values.
document.addEventListener("input", (event) => {
  const form = event.target.closest?.(".item-form");
  if (!form) return;
  markUnsaved(form);
  const status = form.querySelector(".save-status:not(.not-saved)");
  if (status) status.textContent = "";
});

// What each item form sent, to tell afterwards what was typed while its save was in flight.
const sentValues = new WeakMap();
document.addEventListener("htmx:beforeRequest", (event) => {
  const form = event.target;
  if (form.matches && form.matches(".item-form")) {
    sentValues.set(form, new Map(trackedFields(form).map(({ field }) => [field.name, field.value])));
  }
});

// A save succeeded: the swapped-in saved values become the fields' baseline, the errors of
// an earlier refusal go, and the card's colour follows its new status.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.target;
  const xhr = event.detail.xhr;
  if (!(form.matches && form.matches(".item-form")) || !xhr || xhr.status !== 200) return;
  const item = form.closest(".item");
  const saved = document.getElementById(`${item.id}-saved`);
  const sent = sentValues.get(form);
  for (const { field } of trackedFields(form)) {
    const key = field.name.slice(field.name.lastIndexOf("-") + 1);
    if (!saved || !(key in saved.dataset)) continue;
    const value = saved.dataset[key];
    // Show what the server kept (trimmed, https:// added), unless the person is still in
    // the field or typed since: their text is never replaced.
    if (sent && field.value === sent.get(field.name) && document.activeElement !== field) {
      field.value = value;
    }
    field.defaultValue = value;
  }
  form.querySelectorAll(".field > .error, .item-form > .error").forEach((error) => error.remove());
  form.querySelectorAll(".has-error").forEach((box) => box.classList.remove("has-error"));
  form.querySelectorAll('[aria-invalid="true"]').forEach((field) => field.removeAttribute("aria-invalid"));
  const head = document.getElementById(`${item.id}-head`);
  if (head) item.className = item.className.replace(/\bstatus-\S+/, `status-${head.dataset.status}`);
  const unsaved = markUnsaved(form);
  const status = form.querySelector(".save-status");
  if (status) {
    status.classList.remove("not-saved");
    status.textContent = "";
    // The live region is emptied first: filled a moment later, screen readers announce it.
    setTimeout(() => { status.textContent = unsaved ? "Saved; newer typing is not saved yet" : "Saved"; }, 100);
  }
});

// htmx puts the focus back on the element with the same id after a swap, but the Save button
// is disabled during the request (hx-disabled-elt) and so has lost the focus by then:
// remember what had it when the request started.
const focusedBeforeSave = new Map();
document.addEventListener("htmx:beforeRequest", (event) => {
  const item = event.target.closest && event.target.closest(".item");
  const active = document.activeElement;
  if (item && active && active.id && item.contains(active)) focusedBeforeSave.set(item.id, active.id);
});

// A refused save (400: a reason or a field to fix) replaces the whole card with the errors and
// the values it was sent with: keep what was typed after it was sent.
const typedDuringRefusal = new Map();
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  const form = event.detail.elt;
  if (event.detail.xhr.status !== 400 || !(target && target.matches && target.matches(".item"))) return;
  if (!(form && form.matches && form.matches(".item-form"))) return;
  const sent = sentValues.get(form) || new Map();
  const typed = new Map();
  for (const { field } of trackedFields(form)) {
    if (field.value !== sent.get(field.name)) typed.set(field.name, field.value);
  }
  if (typed.size) typedDuringRefusal.set(target.id, typed);
});

// After htmx replaced an item (outerHTML: the event fires on the new <article>).
document.addEventListener("htmx:afterSwap", (event) => {
  const item = event.target;
  if (!(item instanceof Element) || !item.matches(".item")) return;
  const focusedId = focusedBeforeSave.get(item.id);
  focusedBeforeSave.delete(item.id);
  if (focusedId && (!document.activeElement || document.activeElement === document.body)) {
    const again = document.getElementById(focusedId);
    if (again && item.contains(again)) again.focus({ preventScroll: true });
  }
  const code = event.detail.xhr && event.detail.xhr.status;
  const form = item.querySelector(".item-form");
  const typed = typedDuringRefusal.get(item.id);
  typedDuringRefusal.delete(item.id);
  if (form && typed) {
    // What was typed while the refused save was in flight goes back in, marked unsaved.
    for (const { field } of trackedFields(form)) {
      if (typed.has(field.name)) field.value = typed.get(field.name);
    }
    markUnsaved(form);
  }
  if (code === 400) {
    // The save was refused: put the cursor in the first field to fix.
    const field = item.querySelector('[aria-invalid="true"], .has-error textarea, .has-error input');
    if (field) field.focus();
  }
});

// A 403 on an item (its owning role was taken away while the page was open) brings the
// read-only card saying whose it is; htmx's config leaves other 4xx/5xx answers unswapped.
document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  if (event.detail.xhr.status === 403 && target && target.matches && target.matches(".item")) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
