// One live feed for every page: a WebSocket that reconnects, and the feed-state label.
// `hooks` (optional): onOpen(ws) on every (re)connection, onRtc(msg) for {"rtc": msg} messages.
"use strict";
// hooks.heartbeatMs: the page says "hb" that often; the server closes a feed it stops hearing.
window.dialboxLive = function (path, onSnapshot, feed, hooks) {
  const { _ } = window.dialboxI18n;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + path);
    let beat = null;
    ws.onopen = () => {
      feed.textContent = _("live");
      feed.dataset.state = "live";
      if (hooks && hooks.onOpen) hooks.onOpen(ws);
      if (hooks && hooks.heartbeatMs) beat = setInterval(() => ws.send("hb"), hooks.heartbeatMs);
    };
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);
      if (data && data.rtc !== undefined) {
        if (hooks && hooks.onRtc) hooks.onRtc(data.rtc);
        return;
      }
      onSnapshot(data);
    };
    ws.onclose = () => {
      if (beat) clearInterval(beat);
      feed.textContent = _("connection lost, reconnecting…");
      feed.dataset.state = "offline";
      setTimeout(connect, 2000);
    };
  }
  connect();
};
