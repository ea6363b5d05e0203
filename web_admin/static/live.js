// One live feed for every page: a WebSocket that reconnects, and the feed-state label.
"use strict";
window.dialboxLive = function (path, onSnapshot, feed) {
  const { _ } = window.dialboxI18n;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + path);
    ws.onopen = () => { feed.textContent = _("live"); feed.dataset.state = "live"; };
    ws.onmessage = (ev) => onSnapshot(JSON.parse(ev.data));
    ws.onclose = () => {
      feed.textContent = _("connection lost, reconnecting…");
      feed.dataset.state = "offline";
      setTimeout(connect, 2000);
    };
  }
  connect();
};
