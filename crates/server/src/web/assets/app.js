"use strict";
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
ws.onopen = () => { document.getElementById("conn").textContent = "live"; };
ws.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.type === "event") {
    const li = document.createElement("li");
    li.textContent = `${msg.kind} ${msg.client}: ${msg.text}`;
    document.getElementById("events").prepend(li);
  }
};
