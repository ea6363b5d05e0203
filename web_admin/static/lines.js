// Test calls and SMS from the lines page: started at once, their progress shown while they run.
"use strict";
(function () {
  const { _, label } = window.dialboxI18n;
  const csrf = document.querySelector("input[name=csrf]").value;
  const out = document.getElementById("test-progress");

  function show(view) {
    out.hidden = false;
    out.dataset.state = view.state;
    const stage = label("stage", view.stage) || view.stage;
    if (view.state === "running") {
      out.textContent = view.line + ": " + stage + " · " + Math.floor(view.elapsed_s) + " " + _("s");
    } else if (view.state === "failed") {
      out.textContent = view.line + ": " + view.error;
    } else {
      const r = view.result || {};
      const what = (r.result ? (label("attempt", r.result) || r.result) : (label("sms_state", r.status) || r.status || ""))
        + (r.reason ? " · " + r.reason : "");  // why the call ended, already in the page's language
      out.textContent = view.line + ": " + _("finished") + " — " + what + " (" + view.elapsed_s + " " + _("s") + ")";
    }
  }

  async function poll(job) {
    for (;;) {
      const r = await fetch("/lines/test/" + job, { headers: { Accept: "application/json" } });
      if (!r.ok) { out.textContent = _("The test was lost; try again."); return; }
      const view = await r.json();
      show(view);
      if (view.state !== "running") return;
      await new Promise((ok) => setTimeout(ok, 500));
    }
  }

  // A reset ends the call on its line: ask first when one is up (the row's state says so).
  for (const button of document.querySelectorAll("button[value=reset]")) {
    button.addEventListener("click", (ev) => {
      const row = button.closest("tr");
      const busy = row && !/\bst-(idle|out_of_service|blocked)\b/.test(row.className);
      if (busy && !window.confirm(_("A call is up on this line: a reset ends it. Reset the line?"))) {
        ev.preventDefault();
      }
    });
  }

  for (const form of document.querySelectorAll("form.line-test")) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = new URLSearchParams(new FormData(form));
      const r = await fetch("/lines/test", { method: "POST", body,
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" } });
      const view = await r.json();
      if (!r.ok) { out.hidden = false; out.dataset.state = "failed"; out.textContent = view.error; return; }
      show(view);
      poll(view.job);
    });
  }
})();
