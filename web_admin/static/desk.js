// The operator's desk: the card pops when a call is put through; one click (or key 1..9) per outcome.
// An inbound call rings here (a tone made in the page) until the operator takes it (Enter).
"use strict";
(function () {
  const { _, label } = window.dialboxI18n;
  const csrf = document.body.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  let desk = JSON.parse($("desk-snapshot").textContent);
  let busy = false;

  // The ring of an inbound call: 425 Hz, 1 s on and 2 s off, made here (the box sends nothing
  // until the call is taken). level() is what it plays now, in dB (the tests listen to it).
  const ring = (function () {
    let ctx = null, osc = null, gain = null, an = null, timer = null;
    function start() {
      if (osc) return;
      try {
        ctx = ctx || new AudioContext();
        if (ctx.state === "suspended") ctx.resume();
        osc = ctx.createOscillator();
        osc.frequency.value = 425;
        gain = ctx.createGain();
        gain.gain.value = 0;
        an = an || ctx.createAnalyser();
        an.fftSize = 2048;
        osc.connect(gain);
        gain.connect(ctx.destination);
        gain.connect(an);
        osc.start();
        let on = false;
        const cadence = () => {
          on = !on;
          gain.gain.setTargetAtTime(on ? 0.3 : 0, ctx.currentTime, 0.01);
          timer = setTimeout(cadence, on ? 1000 : 2000);
        };
        cadence();
      } catch (e) { osc = null; }  // no Web Audio: the desk still shows the call and Take
    }
    function stop() {
      clearTimeout(timer);
      if (osc) { osc.stop(); osc.disconnect(); gain.disconnect(); }
      osc = null;
    }
    function level() {
      if (!an) return null;
      const bins = new Float32Array(an.frequencyBinCount);
      an.getFloatFrequencyData(bins);
      const i = Math.round(425 / (ctx.sampleRate / an.fftSize));
      return Math.max(bins[i - 1], bins[i], bins[i + 1]);
    }
    document.addEventListener("click", () => { if (ctx && ctx.state === "suspended") ctx.resume(); });
    return { start: start, stop: stop, level: level, on: () => !!osc };
  })();
  window.dialboxRing = ring;

  function text(el, value) {
    el.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
  }

  function row(cells) {
    const tr = document.createElement("tr");
    cells.forEach((c) => { const td = document.createElement("td"); text(td, c); tr.append(td); });
    return tr;
  }

  // A stored outcome is a disposition (promise, refusal...) or a call result (answered, busy...).
  function outcomeName(key) {
    if (!key) return "";
    const out = label("out", key);
    return out !== key ? out : label("attempt", key);
  }

  // The big state: what the operator is doing now.
  function stateOf(d) {
    if (!d || !d.operator) return "offline";
    const st = d.operator.state;
    if (st === "not_ready" || st === "break") return st;
    if (d.call && d.call.stage === "preview") return "preview";
    if (d.call && d.call.offered) return "ringing";
    if (st === "wrap_up" || (d.call && d.call.stage === "ended")) return "wrap_up";
    if (st === "talking" || (d.call && d.call.stage === "bridged")) return "talking";
    if (st === "reserved") return "reserved";
    return "waiting";
  }

  function showError(msg) {
    const el = $("desk-error");
    el.textContent = msg || "";
    el.hidden = !msg;
  }

  // The newest view shown (the box numbers its views): an action's answer that a live push
  // overtook on the way is older than what is on screen, and must not draw over it.
  let shownSeq = 0;

  function render(d) {
    if (d && typeof d.seq === "number") {
      if (d.seq < shownSeq) return;
      shownSeq = d.seq;
    }
    desk = d;
    if (d && d.error) { showError(d.error); return; }
    const state = stateOf(d);
    const box = $("desk-state");
    box.dataset.state = state;
    $("desk-state-text").textContent = label("desk", state);
    document.title = label("desk", state) + " — dialbox";  // visible on the tab when in another window
    $("desk-operator").textContent = d && d.operator ? d.operator.name + " · " + d.operator.position : "";
    const op = d && d.operator;
    const ready = !!op && op.state !== "not_ready" && op.state !== "break" && !op.pending;
    const note = $("desk-note");
    const why = !op ? "" : op.pending ? _("The break starts after this call and its wrap-up")
      : op.state === "break" ? label("break", op.reason)
      : op.reason === "desk_gone" ? _("Your desk was closed: press Ready to take calls")
      : op.reason === "wrap_limit" ? _("Wrap-up time ran out: press Ready to take calls")
      : op.reason === "missed_call" ? _("A call rang out on your desk: press Ready to take calls") : "";
    note.textContent = why;
    note.hidden = !why;
    $("break").disabled = !op || !op.position || op.state === "break" || !!op.pending;
    const toggle = $("ready-toggle");
    toggle.setAttribute("aria-pressed", ready ? "true" : "false");
    toggle.textContent = ready ? _("Not ready") : _("Ready for calls");
    toggle.disabled = !op;
    const call = d ? d.call : null;
    const previewing = !!call && call.stage === "preview";
    const offered = state === "ringing";
    if (offered) ring.start(); else ring.stop();
    $("take").hidden = !offered;
    $("dial").hidden = !previewing;
    $("skip").hidden = !previewing;
    $("hangup").hidden = previewing || offered;
    $("hangup").disabled = !call || call.stage === "ended";
    // One outcome per call: once saved (during the call) it is shown and no second is offered.
    const saved = call ? call.outcome : null;
    document.querySelectorAll("button.outcome").forEach((b) => { b.disabled = !call || previewing || offered || !!saved; });
    $("outcome-saved").textContent = saved ? _("Outcome saved") + ": " + label("out", saved) : "";
    $("outcome-saved").hidden = !saved;
    $("card").hidden = !call;
    $("no-card").hidden = !!call;
    if (!call) { closeFields(); return; }
    const a = call.account || {};
    text($("debtor-name"), a.debtor_name);
    text($("call-meta"), (call.inbound ? _("inbound") + (call.caller ? " " + call.caller : "") : _("outbound")) + " · " + call.line
      + " · " + label("stage", call.stage));
    text($("debt"), a.debt_text);
    text($("dpd"), a.dpd);
    text($("segment"), a.segment);
    text($("region"), a.region);
    text($("account-id"), a.account_id);
    text($("last-outcome"), outcomeName(a.last_outcome));
    $("flags").replaceChildren(...(a.flags || []).map((f) => {
      const s = document.createElement("span"); s.className = "flag"; s.textContent = label("flag", f); return s;
    }));
    $("phones").replaceChildren(...(a.phones || []).map((p) => {
      const li = document.createElement("li"); li.textContent = p.e164 + " · " + label("phone", p.kind); return li;
    }));
    $("promises").replaceChildren(...(a.promises || []).map((p) =>
      row([p.date_text, p.amount_text, label("ptp", p.status)])));
    $("history").replaceChildren(...(a.history || []).map((h) =>
      row([h.at_text, outcomeName(h.outcome), h.operator, outcomeName(h.disposition), h.note])));
    $("sms-received").replaceChildren(...(a.sms_received || []).map((m) => {
      const tr = row([m.at_text, m.text, m.flagged ? _("Reads like a refusal") : ""]);
      if (m.flagged) tr.className = "warn";
      return tr;
    }));
    showRecordings(a.recordings || []);
    $("script").hidden = !a.script;
    text($("script-text"), a.script);
  }

  // The debtor's recorded conversations, each with a player; kept while the list is the same,
  // so a desk update does not cut a playback short.
  let shownRecordings = "";
  function showRecordings(list) {
    const ids = list.map((r) => r.call_id).join(" ");
    if (ids === shownRecordings) return;
    shownRecordings = ids;
    $("recordings").replaceChildren(...list.map((r) => {
      const s = Math.round(r.duration_s || 0);
      const tr = row([new Date(r.at * 1000).toLocaleString(document.documentElement.lang),
        r.operator, Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0")]);
      const td = document.createElement("td");
      const player = document.createElement("audio");
      player.controls = true;
      player.preload = "none";
      player.src = "/recordings/" + encodeURIComponent(r.call_id);
      player.dataset.call = r.call_id;
      td.append(player);
      tr.append(td);
      return tr;
    }));
  }

  async function post(path, body) {
    if (busy) return null;
    busy = true;
    try {
      const r = await fetch(path, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body) });
      const data = await r.json().catch(() => ({ error: _("Internal error. Details are in the log; tell a technician.") }));
      if (!r.ok) return data;
      showError("");
      render(data.desk);
      return data;
    } catch (e) {
      return { error: _("connection lost, reconnecting…") };
    } finally {
      busy = false;
    }
  }

  function closeFields() {
    // keys 1..9 must work again at once, so focus leaves a field that is being hidden
    if (document.activeElement && document.activeElement.closest("form.outcome-fields")) {
      document.activeElement.blur();
    }
    document.querySelectorAll("form.outcome-fields").forEach((f) => {
      f.hidden = true; f.reset(); f.querySelector(".field-error").textContent = "";
    });
    document.querySelectorAll("button.outcome").forEach((b) => b.classList.remove("chosen"));
  }

  async function dispose(kind, details, form) {
    if (!desk || !desk.call) return;
    const note = $("call-note").value.trim();
    if (note) details = Object.assign({ note: note }, details);
    const out = await post("/desk/disposition", { call_id: desk.call.call_id, kind: kind, details: details });
    if (out && out.error) {
      if (form) form.querySelector(".field-error").textContent = out.error; else showError(out.error);
      return;
    }
    if (out) { closeFields(); $("call-note").value = ""; }
  }

  function choose(button) {
    if (button.disabled) return;
    const kind = button.dataset.kind;
    closeFields();
    if (!button.dataset.fields) { dispose(kind, {}, null); return; }
    button.classList.add("chosen");
    const form = $("fields-" + kind);
    form.hidden = false;
    form.querySelector("input, textarea").focus();
  }

  document.querySelectorAll("button.outcome").forEach((b) => b.addEventListener("click", () => choose(b)));
  document.querySelectorAll("form.outcome-fields").forEach((form) => {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const details = {};
      new FormData(form).forEach((v, k) => { details[k] = String(v); });
      dispose(form.dataset.kind, details, form);
    });
    form.querySelector("button.cancel").addEventListener("click", closeFields);
  });
  $("break").addEventListener("click", async () => {
    const out = await post("/desk/break", { reason: $("break-reason").value });
    if (out && out.error) showError(out.error);
  });
  $("ready-toggle").addEventListener("click", async () => {
    const ready = $("ready-toggle").getAttribute("aria-pressed") !== "true";
    const out = await post("/desk/ready", { ready: ready });
    if (out && out.error) showError(out.error);
  });
  async function take() {
    if (!desk || !desk.call || !desk.call.offered) return;
    ring.stop();  // at once: the debtor's voice comes next
    const out = await post("/desk/take", { call_id: desk.call.call_id });
    if (out && out.error) showError(out.error);
  }
  $("take").addEventListener("click", take);
  for (const [id, path] of [["dial", "/desk/dial"], ["skip", "/desk/skip"]]) {
    $(id).addEventListener("click", async () => {
      if (!desk || !desk.call) return;
      const out = await post(path, { call_id: desk.call.call_id });
      if (out && out.error) showError(out.error);
    });
  }
  $("hangup").addEventListener("click", async () => {
    if (!desk || !desk.call) return;
    const out = await post("/desk/hangup", { call_id: desk.call.call_id });
    if (out && out.error) showError(out.error);
  });
  document.addEventListener("keydown", (ev) => {
    const tag = ev.target.tagName;
    if (ev.key === "Escape") { closeFields(); return; }
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || ev.ctrlKey || ev.altKey || ev.metaKey) {
      return;
    }
    if (ev.key === "Enter" && desk && desk.call && desk.call.offered) {
      ev.preventDefault();  // not also a click on the button that has the focus
      take();
      return;
    }
    const b = document.querySelector('button.outcome[data-key="' + ev.key + '"]');
    if (b) { ev.preventDefault(); choose(b); }
  });

  const feed = $("feed-state");
  render(desk);
  const audio = window.dialboxAudio = window.dialboxDeskAudio();
  // The heartbeat tells the box this desk is still here; silence makes the operator not ready.
  window.dialboxLive("/desk/ws", render, feed,
    { onOpen: (ws) => { shownSeq = 0; audio.onOpen(ws); },  // a restarted box counts anew
      onRtc: audio.onMessage, heartbeatMs: 5000 });
})();
