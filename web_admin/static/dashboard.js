// Live dashboard: the server pushes the status over a WebSocket whenever it changes.
"use strict";
(function () {
  const strings = JSON.parse(document.getElementById("strings").textContent);
  const t = (key) => strings[key] || key;
  const feed = document.getElementById("feed-state");

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function render(status) {
    const counters = status.campaign.counters;
    document.querySelectorAll("[data-counter]").forEach((td) => {
      td.textContent = counters[td.dataset.counter];
    });
    document.getElementById("campaign-state").textContent =
      status.campaign.running ? t("running") : t("paused");
    document.getElementById("health").textContent =
      status.health.lines.in_service + "/" + status.health.lines.total;
    const lines = document.querySelector("#lines tbody");
    lines.replaceChildren(...status.lines.map((ln) => {
      const tr = document.createElement("tr");
      tr.dataset.line = ln.name;
      tr.className = "st-" + ln.state;
      tr.append(cell(ln.name), cell(ln.kind), cell(t("st_" + ln.state), "state"),
        cell(ln.signal_dbm, "signal"), cell(ln.operator, "network"), cell(ln.reason, "reason"));
      return tr;
    }));
    const ops = document.querySelector("#operators tbody");
    ops.replaceChildren(...status.operators.map((op) => {
      const tr = document.createElement("tr");
      tr.dataset.position = op.position;
      tr.className = "op-" + op.state;
      tr.append(cell(op.name), cell(t("op_" + op.state), "state"), cell(op.calls, "calls"));
      return tr;
    }));
  }

  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws");
    ws.onopen = () => { feed.textContent = t("live"); feed.dataset.state = "live"; };
    ws.onmessage = (ev) => render(JSON.parse(ev.data));
    ws.onclose = () => {
      feed.textContent = t("offline");
      feed.dataset.state = "offline";
      setTimeout(connect, 2000);
    };
  }
  connect();
})();
