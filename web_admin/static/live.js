// One live feed for every page: a WebSocket that reconnects, and the feed-state label.
"use strict";
window.dialboxLive = function (path, onSnapshot, feed, t) {
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + path);
    ws.onopen = () => { feed.textContent = t("live"); feed.dataset.state = "live"; };
    ws.onmessage = (ev) => onSnapshot(JSON.parse(ev.data));
    ws.onclose = () => {
      feed.textContent = t("offline");
      feed.dataset.state = "offline";
      setTimeout(connect, 2000);
    };
  }
  connect();
};
