// Small enhancements only: every form also works without this file.
document.addEventListener("change", (event) => {
  const input = event.target;
  // Picking "Not applicable" needs a reason before saving: put the cursor there.
  if (input.matches('.status-group input[value="not_applicable"]') && input.checked) {
    const reason = input.form.querySelector(".na-reason textarea");
    if (reason) requestAnimationFrame(() => reason.focus());
  }
});
