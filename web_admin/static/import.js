// A call list being imported: the progress bar follows the server; the result page comes when done.
"use strict";
(function () {
  const box = document.getElementById("import");
  const bar = document.getElementById("import-progress");
  async function poll() {
    try {
      const r = await fetch("/api/imports/" + encodeURIComponent(box.dataset.token),
        { credentials: "same-origin" });
      const s = await r.json();
      if (s.state !== "importing") { location.reload(); return; }
      bar.max = Math.max(s.total, 1);
      bar.value = s.done;
      document.getElementById("import-done").textContent = s.done;
      document.getElementById("import-total").textContent = s.total;
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 500);
  }
  poll();
})();
