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

// Editing an item again clears its "Saved".
document.addEventListener("input", (event) => {
  const status = event.target.closest?.(".item")?.querySelector(".save-status:not(.not-saved)");
  if (status) status.textContent = "";
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
  if (code === 400) {
    // The save was refused: put the cursor in the first field to fix.
    const field = item.querySelector('[aria-invalid="true"], .has-error textarea, .has-error input');
    if (field) field.focus();
  } else if (code === 200 && event.detail.requestConfig && event.detail.requestConfig.verb === "post") {
    // The live region is new: fill it a moment later so screen readers announce it.
    const status = item.querySelector(".save-status");
    if (status) setTimeout(() => { status.textContent = "Saved"; }, 100);
  }
});
