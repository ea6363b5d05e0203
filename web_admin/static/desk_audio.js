// The operator's headset: one RTCPeerConnection with the box for the shift, signalled over the
// desk's WebSocket. The box offers (G.711 first); the page answers with the microphone. Calls are
// switched inside the box, so nothing is renegotiated between calls. If the audio drops the page
// reconnects by itself; the box pauses the operator meanwhile.
"use strict";
window.dialboxDeskAudio = function () {
  const { _ } = window.dialboxI18n;
  const $ = (id) => document.getElementById(id);
  const DOWN = {
    network: _("No audio: connection lost, reconnecting…"),
    tab_closed: _("No audio: the desk was closed"),
    microphone: _("No audio: the microphone is lost"),
    replaced: _("Audio moved to another window"),
    stopped: _("Audio stopped"),
  };
  const CHECK = {
    tone: _("You should hear a tone…"),
    speak: _("Say something: it is played back in 3 seconds…"),
    playback: _("Playing back what you said…"),
    done: _("Check done: did you hear the tone and your voice?"),
  };
  const CODECS = ["audio/PCMA", "audio/PCMU", "audio/opus"];
  let ws = null, pc = null, micStream = null, micTrack = null, retry = null, muted = false;
  let ctx = null, pcs = 0, spectrum = null;
  const speaker = $("remote-audio");

  function send(msg) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  function show(id, text, state) {
    const el = $(id);
    el.textContent = text;
    el.dataset.state = state;
  }

  // Live level meters from Web Audio: what the microphone picks up, what the speaker plays.
  function meter(stream, id) {
    try {
      ctx = ctx || new AudioContext();
      const an = ctx.createAnalyser();
      an.fftSize = 512;
      ctx.createMediaStreamSource(stream).connect(an);
      const buf = new Float32Array(an.fftSize);
      const el = $(id);
      (function draw() {
        if (!el.isConnected) return;
        an.getFloatTimeDomainData(buf);
        let sum = 0;
        for (const x of buf) sum += x * x;
        const db = 10 * Math.log10(sum / buf.length + 1e-12);  // dBFS
        el.value = Math.max(0, Math.min(1, (db + 60) / 60));
        el.dataset.db = db.toFixed(1);
        setTimeout(draw, 100);
      })();
    } catch (e) { /* no Web Audio: the meters stay still, the audio itself works */ }
  }

  async function openMic() {
    if (micTrack && micTrack.readyState === "live") return micTrack;
    micStream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    micTrack = micStream.getAudioTracks()[0];
    micTrack.enabled = !muted;
    micTrack.addEventListener("ended", () => {  // unplugged, or taken by another program
      show("mic-state", _("lost: plug the headset in"), "lost");
      send({ rtc: "mic", ok: false });
      later(3000);
    });
    show("mic-state", muted ? _("muted") : _("on"), muted ? "muted" : "on");
    meter(micStream, "mic-level");
    return micTrack;
  }

  function later(ms) {
    clearTimeout(retry);
    retry = setTimeout(start, ms);
  }

  async function start() {
    clearTimeout(retry);
    try {
      await openMic();
    } catch (e) {
      show("mic-state", _("not allowed: allow the microphone for this site"), "lost");
      send({ rtc: "mic", ok: false });
      later(5000);
      return;
    }
    send({ rtc: "hello" });
  }

  async function answer(offer) {
    if (pc) pc.close();
    const mine = pc = new RTCPeerConnection({ iceServers: [] });
    pcs += 1;
    pc.ontrack = (ev) => {
      const stream = new MediaStream([ev.track]);
      speaker.srcObject = stream;
      speaker.play().catch(() => {});
      show("spk-state", _("on"), "on");
      meter(stream, "spk-level");
      try {  // what is heard, by frequency: the tests tell the debtor from a whisper with it
        ctx = ctx || new AudioContext();
        spectrum = ctx.createAnalyser();
        spectrum.fftSize = 4096;
        ctx.createMediaStreamSource(stream).connect(spectrum);
      } catch (e) { spectrum = null; }
    };
    pc.onconnectionstatechange = () => {
      if (mine !== pc) return;
      if (mine.connectionState === "failed" || mine.connectionState === "closed") {
        show("audio-state", _("Audio lost, reconnecting…"), "down");
        later(1000);
      }
    };
    await pc.setRemoteDescription(offer);
    const tr = pc.getTransceivers()[0];
    await tr.sender.replaceTrack(micTrack);
    tr.direction = "sendrecv";
    if (tr.setCodecPreferences && window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities) {
      const caps = RTCRtpReceiver.getCapabilities("audio").codecs
        .filter((c) => CODECS.includes(c.mimeType));
      caps.sort((a, b) => CODECS.indexOf(a.mimeType) - CODECS.indexOf(b.mimeType));
      try { tr.setCodecPreferences(caps); } catch (e) { /* the browser's own order then */ }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc.iceGatheringState !== "complete") {  // the box takes the candidates in one answer
      await new Promise((done) => {
        const t0 = setTimeout(done, 3000);
        pc.addEventListener("icegatheringstatechange", () => {
          if (pc.iceGatheringState === "complete") { clearTimeout(t0); done(); }
        });
      });
    }
    if (mine === pc) send({ rtc: "answer", sdp: pc.localDescription.sdp });
  }

  function onState(m) {
    const box = $("audio");
    if (m.reason === "unavailable") {  // this box carries no audio: nothing to reconnect to
      clearTimeout(retry);
      box.dataset.state = "unavailable";
      $("audio-state").textContent = m.message || "";
      $("audio-state").dataset.state = "down";
      return;
    }
    box.dataset.state = m.up ? "up" : "down";
    if (m.up) show("audio-state", _("Audio on"), "up");
    else show("audio-state", DOWN[m.reason] || DOWN.network, "down");
    $("audio-codec").textContent = m.codec || "";
  }

  function onCheck(m) {
    $("check-step").textContent = CHECK[m.step] || "";
    $("check-headset").disabled = m.step !== "done";
    if (m.step === "done" && !m.heard_mic) {
      $("check-step").textContent = _("The box heard nothing from your microphone: check the headset plug and the sound settings");
    }
  }

  $("mute").addEventListener("click", () => {
    muted = !muted;
    if (micTrack) micTrack.enabled = !muted;  // the box keeps hearing silence: no reconnect
    $("mute").setAttribute("aria-pressed", muted ? "true" : "false");
    $("mute").textContent = muted ? _("Unmute") : _("Mute");
    show("mic-state", muted ? _("muted") : _("on"), muted ? "muted" : "on");
  });
  $("volume").addEventListener("input", () => { speaker.volume = Number($("volume").value); });
  $("check-headset").addEventListener("click", () => {
    if (ctx && ctx.state === "suspended") ctx.resume();
    send({ rtc: "check" });
    $("check-headset").disabled = true;
  });
  document.addEventListener("click", () => {  // browsers start sound only after a gesture
    if (ctx && ctx.state === "suspended") ctx.resume();
    if (speaker.srcObject && speaker.paused) speaker.play().catch(() => {});
  });
  window.addEventListener("pagehide", () => send({ rtc: "bye" }));

  // What the browser's own WebRTC statistics say (the audio received, its codec).
  async function stats() {
    if (!pc) return null;
    const report = await pc.getStats();
    let energy = 0, codecId = null, packets = 0;
    report.forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") {
        energy = r.totalAudioEnergy || 0; codecId = r.codecId; packets = r.packetsReceived;
      }
    });
    const codec = codecId && report.get(codecId) ? report.get(codecId).mimeType : null;
    return { pcId: pcs, energy: energy, packets: packets, codec: codec, state: pc.connectionState };
  }

  // The level (dB) of one frequency in what the speaker plays now.
  function heard(hz) {
    if (!spectrum) return null;
    const bins = new Float32Array(spectrum.frequencyBinCount);
    spectrum.getFloatFrequencyData(bins);
    const i = Math.round(hz / (ctx.sampleRate / spectrum.fftSize));
    return Math.max(bins[i - 1], bins[i], bins[i + 1]);
  }

  return {
    stats: stats,
    heard: heard,
    onOpen(socket) { ws = socket; start(); },
    onMessage(m) {
      if (m.type === "offer") answer(m).catch(() => later(2000));
      else if (m.type === "state") onState(m);
      else if (m.type === "check") onCheck(m);
      else if (m.type === "error") {
        $("check-step").textContent = m.message || "";
        $("check-headset").disabled = false;
      }
    },
  };
};
