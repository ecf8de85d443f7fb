// The A/B test page's dates in the browser's local time, beside their UTC text.
document.addEventListener("DOMContentLoaded", () => {
  for (const span of document.querySelectorAll(".local-time[data-for]")) {
    const moment = new Date(span.dataset.for);
    if (!Number.isNaN(moment.getTime())) span.textContent = `(${moment.toLocaleString()} local)`;
  }
});
