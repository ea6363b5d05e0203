// Live dashboard: the server pushes the status over a WebSocket whenever it changes.
"use strict";
(function () {
  const { _, label } = window.dialboxI18n;
  const MONITOR = { listen: _("Listen"), whisper: _("Whisper"), barge: _("Barge in") };
  const feed = document.getElementById("feed-state");

  function span(text, cls) {
    const s = document.createElement("span");
    s.textContent = text === null || text === undefined ? "" : String(text);
    s.className = cls;
    return s;
  }

  function lineTile(ln) {
    const div = document.createElement("div");
    div.className = "tile st-" + ln.state;
    div.dataset.line = ln.name;
    div.title = ln.name + " · " + label("st", ln.state) + (ln.reason ? " · " + ln.reason : "");
    const detail = (ln.signal_dbm !== null && ln.signal_dbm !== undefined ? ln.signal_dbm + " dBm" : "")
      + (ln.reason || "");
    div.append(span(ln.name, "name"), span(label("st", ln.state), "state"), span(detail, "detail"));
    return div;
  }

  function opTile(op) {
    const div = document.createElement("div");
    div.className = "tile op-" + op.state;
    div.dataset.position = op.position;
    const detail = span(_("Calls") + ": ", "detail");
    detail.append(span(op.calls, "calls"));
    div.append(span(op.name, "name"), span(label("op", op.state), "state"), detail);
    if (op.state === "talking") {
      const box = span("", "monitor");
      for (const mode of ["listen", "whisper", "barge"]) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "link";
        b.dataset.monitor = mode;
        b.dataset.position = op.position;
        b.textContent = MONITOR[mode];
        box.append(b);
      }
      div.append(box);
    }
    return div;
  }

  function render(status) {
    const counters = status.campaign.counters;
    document.querySelectorAll("[data-counter]").forEach((el) => {
      el.textContent = counters[el.dataset.counter];
    });
    const state = document.getElementById("campaign-state");
    state.textContent = label("cs", status.campaign.running ? "running" : "paused");
    state.className = "badge " + (status.campaign.running ? "ok" : "muted");
    document.getElementById("campaign-name").textContent = status.campaign.name;
    document.getElementById("warnings").replaceChildren(...(status.health.warnings || []).map((w) => {
      const p = document.createElement("p");
      p.className = "error banner";
      p.dataset.warning = w.code;
      p.textContent = label("warn", w.code) + " (" + Math.floor(w.free_mb) + " " + _("MB") + ")";
      return p;
    }));
    document.getElementById("health").textContent =
      status.health.lines.in_service + "/" + status.health.lines.total;
    document.getElementById("lines").replaceChildren(...status.lines.map(lineTile));
    document.getElementById("operators").replaceChildren(...status.operators.map(opTile));
    document.querySelectorAll("[data-group]").forEach((el) => {
      const states = el.dataset.states.split(" ");
      el.textContent = status.lines.filter((ln) => states.includes(ln.state)).length;
    });
    document.querySelectorAll("[data-op-state]").forEach((el) => {
      el.textContent = status.operators.filter((op) => op.state === el.dataset.opState).length;
    });
  }

  // Listen to a live call, whisper to the operator, barge in: through the supervisor's headset.
  let monitoring = null;
  async function monitor(position, mode) {
    const r = await fetch("/monitor", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf },
      body: JSON.stringify({ position: position, mode: mode }) });
    const out = await r.json().catch(() => ({ error: _("Internal error. Details are in the log; tell a technician.") }));
    const state = document.getElementById("monitor-state");
    if (!r.ok) { state.textContent = out.error; state.dataset.state = "error"; return; }
    monitoring = mode === "stop" ? null : position;
    state.dataset.state = mode;
    state.textContent = mode === "stop" ? "" : MONITOR[mode] + ": " + position + " ";
    if (monitoring) {
      const stop = document.createElement("button");
      stop.type = "button"; stop.id = "monitor-stop"; stop.textContent = _("Stop listening");
      stop.addEventListener("click", () => monitor(position, "stop"));
      state.append(stop);
    }
  }
  document.getElementById("operators").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-monitor]");
    if (b) monitor(b.dataset.position, b.dataset.monitor);
  });

  const audio = window.dialboxAudio = window.dialboxDeskAudio();
  window.dialboxLive("/ws", render, feed, { onOpen: audio.onOpen, onRtc: audio.onMessage });
})();
