// framewire dashboard: plain JavaScript, no framework, no build step.
//
// Everything live comes over one WebSocket (`/ws`): events, and once a second a stats message
// with streams, clients and devices. Stream tiles hold no connection of their own: each one
// loads `latest.jpg` only when the stats say its stream has a new frame, one request at a time,
// at most ~5 per second. The full-size view is the only long-lived image connection (MJPEG),
// dropped as soon as it closes. Data only ever reaches the page through textContent and
// attributes, never as HTML.
"use strict";

(() => {
  const TILE_MIN_INTERVAL_MS = 200; // ~5 fps per tile at most
  const EVENTS_MAX = 200;
  const COMMAND_OUTPUTS_MAX = 20;
  const FILES_PAGE = 60;
  const FILTER_DEBOUNCE_MS = 300;
  const UPLOAD_REFRESH_DEBOUNCE_MS = 400;
  const WS_STALE_MS = 5000; // stats come every second; this long without a message means trouble
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 15000;
  const JPEG = 1;

  const $ = (id) => document.getElementById(id);

  /** An element with an optional class and text (as text, never HTML). */
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  /** Sets text only when it changed, so selections and layout survive the 1 s refresh. */
  function setText(e, text) {
    const t = text === undefined || text === null ? "" : String(text);
    if (e.textContent !== t) e.textContent = t;
  }

  // ---- formatting (same conventions as the CLI: decimal units, three significant digits)

  function threeDigits(v) {
    if (v < 9.995) return v.toFixed(2);
    if (v < 99.95) return v.toFixed(1);
    return v.toFixed(0);
  }

  function fmtBytes(n) {
    if (typeof n !== "number" || !Number.isFinite(n)) return "–";
    if (n < 1000) return `${n} B`;
    const units = ["kB", "MB", "GB", "TB", "PB"];
    let v = n / 1000;
    let u = 0;
    while (v >= 999.95 && u < units.length - 1) {
      v /= 1000;
      u += 1;
    }
    return `${threeDigits(v)} ${units[u]}`;
  }

  function fmtCount(n) {
    return typeof n === "number" ? n.toLocaleString("en-US") : "–";
  }

  function fmtMs(v) {
    if (typeof v !== "number") return "–";
    return v < 10 ? v.toFixed(1) : v.toFixed(0);
  }

  /** A duration in µs, short: `42 s`, `5 min`, `3 h 12 min`, `4 d`. */
  function fmtDuration(us) {
    const s = Math.max(0, Math.floor(us / 1e6));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d`;
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");

  function fmtClock(us) {
    const d = new Date(us / 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtDateTime(us) {
    const d = new Date(us / 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  /** A stored path as a URL path: each segment percent-encoded (spaces, `#`, `?`, non-ASCII). */
  const encPath = (p) => p.split("/").map(encodeURIComponent).join("/");
  const baseName = (p) => p.slice(p.lastIndexOf("/") + 1);
  const dirName = (p) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/") + 1) : "");

  function debounce(fn, ms) {
    let t = 0;
    return (...a) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...a), ms);
    };
  }

  // ---- hub clock: relative times are computed on the hub's clock, so a skewed phone clock
  // does not make a client look connected for "-3 min".

  const clock = { hubUs: 0, at: 0 };
  const hubNowUs = () => (clock.at ? clock.hubUs + (performance.now() - clock.at) * 1000 : Date.now() * 1000);

  // ---- connection status and header

  function setConn(state, text) {
    const c = $("conn");
    c.className = `conn ${state}`;
    setText($("conn-text"), text);
    document.body.classList.toggle("offline", state !== "live");
  }

  // ---- WebSocket with reconnect and backoff

  const sock = { ws: null, backoff: BACKOFF_MIN_MS, retry: 0, countdown: 0, lastMsg: 0, live: false, everLive: false };

  function connect() {
    clearTimeout(sock.retry);
    clearInterval(sock.countdown);
    sock.retry = 0;
    setConn("connecting", sock.everLive ? "reconnecting…" : "connecting…");
    const url = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      scheduleReconnect();
      return;
    }
    sock.ws = ws;
    sock.live = false;
    sock.lastMsg = performance.now();
    ws.onopen = () => {
      sock.lastMsg = performance.now();
      // The hub sends its recent history again on every connection.
      clearEvents();
    };
    ws.onmessage = (m) => {
      if (sock.ws !== ws) return;
      sock.lastMsg = performance.now();
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch (_) {
        return;
      }
      handleMessage(msg);
    };
    ws.onclose = () => {
      if (sock.ws !== ws) return;
      sock.ws = null;
      scheduleReconnect();
    };
    ws.onerror = () => {}; // a close follows; nothing more to say
  }

  function scheduleReconnect() {
    sock.live = false;
    if (sock.retry) return;
    const delay = Math.round(sock.backoff * (0.8 + Math.random() * 0.4));
    sock.backoff = Math.min(sock.backoff * 2, BACKOFF_MAX_MS);
    const due = performance.now() + delay;
    const show = () => {
      const s = Math.max(0, Math.ceil((due - performance.now()) / 1000));
      setConn("reconnecting", `reconnecting in ${s} s`);
    };
    show();
    sock.countdown = setInterval(show, 1000);
    sock.retry = setTimeout(connect, delay);
  }

  /** Drops a socket that has gone quiet (a dead network path may never report a close). */
  setInterval(() => {
    const ws = sock.ws;
    if (ws && ws.readyState === WebSocket.OPEN && performance.now() - sock.lastMsg > WS_STALE_MS) {
      sock.ws = null;
      ws.onclose = null;
      ws.close();
      scheduleReconnect();
    }
  }, 1000);

  /** Back on the network or on screen: try now instead of waiting out the backoff. */
  function reconnectSoon() {
    if (sock.retry && !document.hidden) {
      sock.backoff = BACKOFF_MIN_MS;
      connect();
    }
  }
  window.addEventListener("online", reconnectSoon);
  document.addEventListener("visibilitychange", () => {
    reconnectSoon();
    for (const t of tiles.values()) t.pump();
  });

  function handleMessage(msg) {
    if (msg.type === "event") {
      addEvent(msg);
      if (msg.kind === "stored" && sock.live) refreshFilesSoon();
    } else if (msg.type === "stats") {
      if (!sock.live) {
        sock.live = true;
        sock.backoff = BACKOFF_MIN_MS;
        setConn("live", "live");
        // Uploads may have happened while we were away.
        if (sock.everLive) refreshFilesSoon();
        sock.everLive = true;
      }
      onStats(msg);
    }
  }

  function onStats(s) {
    clock.hubUs = s.time_us;
    clock.at = performance.now();
    setText($("files-stored"), fmtCount(s.files_stored));
    setText($("bytes-stored"), fmtBytes(s.bytes_stored));
    renderStreams(Array.isArray(s.streams) ? s.streams : []);
    renderClients(Array.isArray(s.clients) ? s.clients : []);
    renderDevices(Array.isArray(s.devices) ? s.devices : []);
  }

  // ---- live stream tiles

  const tiles = new Map();
  const tilesEl = $("tiles");
  const tileObserver =
    "IntersectionObserver" in window
      ? new IntersectionObserver(
          (entries) => {
            for (const e of entries) {
              const t = e.target.tile;
              if (!t) continue;
              t.visible = e.isIntersecting;
              t.pump();
            }
          },
          { rootMargin: "200px" },
        )
      : null;

  class Tile {
    constructor(name) {
      this.name = name;
      this.want = 0; // newest seq the hub has
      this.shown = 0; // seq last loaded (or failed)
      this.inflight = 0;
      this.loading = false;
      this.lastStart = -Infinity;
      this.timer = 0;
      this.visible = true;

      const root = el("article", "tile");
      root.tabIndex = 0;
      root.setAttribute("role", "button");
      root.setAttribute("aria-label", `${name}: open the full-size live view`);
      root.dataset.stream = name;
      root.tile = this;
      this.root = root;

      const frame = el("div", "frame");
      const img = el("img");
      img.alt = `${name}, latest frame`;
      img.decoding = "async";
      img.hidden = true;
      this.img = img;
      this.placeholder = el("span", "placeholder", "waiting for a frame…");
      frame.append(img, this.placeholder);

      const head = el("div", "tile-head");
      this.nameEl = el("span", "name", name);
      this.resEl = el("span", "res");
      this.fpsEl = el("span", "fps", "– fps");
      head.append(this.nameEl, this.resEl, this.fpsEl);

      const figs = el("dl", "figs");
      const fig = (label, title) => {
        const wrap = el("div");
        const dt = el("dt", null, label);
        const dd = el("dd", null, "–");
        if (title) wrap.title = title;
        wrap.append(dt, dd);
        figs.append(wrap);
        return dd;
      };
      this.latEl = fig("latency", "capture → hub, p50 / p99");
      this.dropsEl = fig("drops", "dropped late at the hub + skipped by the publisher");
      this.skipEl = fig("skipped", "frames newer ones replaced before a viewer took them");
      this.viewersEl = fig("viewers", "full-size views and native subscribers now");

      root.append(frame, head, figs);

      img.onload = () => {
        this.loading = false;
        this.shown = this.inflight;
        img.hidden = false;
        this.placeholder.hidden = true;
        this.pump();
      };
      img.onerror = () => {
        this.loading = false;
        this.shown = this.inflight; // do not retry the same frame; the next stats will move on
        this.pump();
      };
      root.addEventListener("click", () => openViewer(this.name, root));
      root.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          openViewer(this.name, root);
        }
      });
      if (tileObserver) tileObserver.observe(root);
    }

    update(s) {
      const idle = !(s.fps_in > 0);
      this.root.classList.toggle("idle", idle);
      setText(this.fpsEl, `${(s.fps_in || 0).toFixed(1)} fps`);
      const l = s.latency_to_hub_ms;
      setText(this.latEl, l ? `${fmtMs(l.p50)} / ${fmtMs(l.p99)} ms` : "–");
      setText(this.dropsEl, fmtCount((s.dropped_late || 0) + (s.publisher_skipped || 0)));
      setText(this.skipEl, fmtCount(s.skipped || 0));
      setText(this.viewersEl, fmtCount(s.subscribers || 0));
      setText(this.resEl, s.width ? `${s.width}×${s.height}` : "");
      if (s.format === JPEG && s.seq > 0) {
        if (s.seq !== this.want) {
          this.want = s.seq;
          this.pump();
        }
      } else if (!s.seq) {
        setText(this.placeholder, "waiting for a frame…");
      } else {
        setText(this.placeholder, "not JPEG: no preview");
      }
    }

    /** Loads the newest frame if it is new, nothing is in flight, and the rate cap allows. */
    pump() {
      if (this.loading || !this.want || this.want === this.shown) return;
      if (!this.visible || document.hidden) return;
      const wait = this.lastStart + TILE_MIN_INTERVAL_MS - performance.now();
      if (wait > 0) {
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = 0;
            this.pump();
          }, wait);
        }
        return;
      }
      this.loading = true;
      this.lastStart = performance.now();
      this.inflight = this.want;
      this.img.src = `/streams/${encodeURIComponent(this.name)}/latest.jpg?t=${this.want}`;
    }

    destroy() {
      clearTimeout(this.timer);
      if (tileObserver) tileObserver.unobserve(this.root);
      this.img.onload = this.img.onerror = null;
      this.img.removeAttribute("src");
      this.root.remove();
    }
  }

  function renderStreams(streams) {
    const seen = new Set();
    streams.forEach((s, i) => {
      if (typeof s.name !== "string") return;
      seen.add(s.name);
      let t = tiles.get(s.name);
      if (!t) {
        t = new Tile(s.name);
        tiles.set(s.name, t);
      }
      if (tilesEl.children[i] !== t.root) tilesEl.insertBefore(t.root, tilesEl.children[i] || null);
      t.update(s);
    });
    for (const [name, t] of tiles) {
      if (!seen.has(name)) {
        t.destroy();
        tiles.delete(name);
      }
    }
    $("tiles-empty").hidden = tiles.size > 0;
    setText($("streams-count"), tiles.size ? String(tiles.size) : "");
    if (viewer.name) {
      const s = streams.find((x) => x.name === viewer.name);
      setText(
        $("viewer-info"),
        s
          ? `${(s.fps_in || 0).toFixed(1)} fps in · ${(s.fps_out || 0).toFixed(1)} fps out` +
              (s.latency_to_subscriber_ms ? ` · to viewers p50 ${fmtMs(s.latency_to_subscriber_ms.p50)} ms` : "")
          : "stream gone",
      );
    }
  }

  // ---- full-size live view (MJPEG): the page's only long-lived image connection

  const viewer = { name: null, img: null, opener: null };

  function openViewer(name, opener) {
    closeViewer(false);
    viewer.name = name;
    viewer.opener = opener || null;
    setText($("viewer-title"), name);
    setText($("viewer-info"), "");
    const img = el("img");
    img.alt = `${name}, live`;
    img.onerror = () => {
      if (viewer.img === img) setText($("viewer-info"), "the live stream stopped");
    };
    img.src = `/streams/${encodeURIComponent(name)}.mjpeg`;
    viewer.img = img;
    $("viewer-frame").replaceChildren(img);
    $("viewer").hidden = false;
    document.body.classList.add("viewing");
    $("viewer-close").focus();
  }

  function closeViewer(restoreFocus = true) {
    const img = viewer.img;
    if (img) {
      // Dropping the src ends the MJPEG request; removing the element makes sure of it.
      img.onerror = null;
      img.removeAttribute("src");
      img.remove();
    }
    const wasOpen = viewer.name !== null;
    viewer.img = null;
    viewer.name = null;
    $("viewer").hidden = true;
    document.body.classList.remove("viewing");
    if (wasOpen && restoreFocus && viewer.opener && viewer.opener.isConnected) viewer.opener.focus();
    viewer.opener = null;
  }

  $("viewer-close").addEventListener("click", () => closeViewer());
  document.addEventListener("keydown", (e) => {
    if (viewer.name === null) return;
    if (e.key === "Escape") {
      e.preventDefault();
      closeViewer();
    } else if (e.key === "Tab") {
      // The dialog has one control: keep focus inside it.
      e.preventDefault();
      $("viewer-close").focus();
    }
  });

  // ---- clients table

  const clientRows = new Map();

  function renderClients(list) {
    const body = $("clients-body");
    const now = hubNowUs();
    const seen = new Set();
    list.forEach((c, i) => {
      seen.add(c.id);
      let row = clientRows.get(c.id);
      if (!row) {
        const tr = el("tr");
        const cells = {};
        for (const k of ["name", "addr", "roles", "since", "in", "out"]) {
          cells[k] = el("td", k === "in" || k === "out" ? "num" : k);
          tr.append(cells[k]);
        }
        row = { tr, cells, roles: null };
        clientRows.set(c.id, row);
      }
      setText(row.cells.name, c.name);
      setText(row.cells.addr, c.addr);
      const roles = Array.isArray(c.roles) ? c.roles.join(",") : "";
      if (row.roles !== roles) {
        row.roles = roles;
        row.cells.roles.replaceChildren(
          ...(roles ? c.roles.map((r) => el("span", "chip", r)) : [el("span", "muted", "–")]),
        );
      }
      setText(row.cells.since, `${fmtDuration(now - c.since_us)} ago`);
      row.cells.since.title = fmtDateTime(c.since_us);
      setText(row.cells.in, fmtBytes(c.bytes_in));
      setText(row.cells.out, fmtBytes(c.bytes_out));
      if (body.children[i] !== row.tr) body.insertBefore(row.tr, body.children[i] || null);
    });
    for (const [id, row] of clientRows) {
      if (!seen.has(id)) {
        row.tr.remove();
        clientRows.delete(id);
      }
    }
    if (!list.length && !body.querySelector(".empty-row")) {
      const tr = el("tr", "empty-row");
      const td = el("td", "muted", "No clients connected.");
      td.colSpan = 6;
      tr.append(td);
      body.append(tr);
    } else if (list.length) {
      const e = body.querySelector(".empty-row");
      if (e) e.remove();
    }
    setText($("clients-count"), list.length ? String(list.length) : "");
  }

  // ---- devices and commands

  let deviceKey = null;

  function renderDevices(devices) {
    const names = devices.map((d) => d.name).filter((n) => typeof n === "string");
    const key = JSON.stringify(devices.map((d) => [d.name, d.peer]));
    if (key === deviceKey) return;
    deviceKey = key;
    const sel = $("cmd-device");
    const current = sel.value;
    if (!names.length) {
      const o = el("option", null, "no devices connected");
      o.value = "";
      sel.replaceChildren(o);
      sel.disabled = true;
      return;
    }
    sel.disabled = false;
    sel.replaceChildren(
      ...devices.map((d) => {
        const o = el("option", null, d.name);
        o.value = d.name;
        o.title = `${d.peer} · since ${fmtDateTime(d.since_us)}`;
        return o;
      }),
    );
    sel.value = names.includes(current) ? current : names[0];
  }

  /** `set name "front door"` → ["set", "name", "front door"]. */
  function splitCommandLine(line) {
    const out = [];
    let cur = null;
    let quote = null;
    for (const ch of line) {
      if (quote) {
        if (ch === quote) quote = null;
        else cur += ch;
      } else if (ch === '"' || ch === "'") {
        quote = ch;
        cur = cur === null ? "" : cur;
      } else if (/\s/.test(ch)) {
        if (cur !== null) out.push(cur);
        cur = null;
      } else {
        cur = (cur === null ? "" : cur) + ch;
      }
    }
    if (quote) throw new Error(`unclosed ${quote} quote`);
    if (cur !== null) out.push(cur);
    return out;
  }

  /** One entry in the command output, pending until `done` is called. */
  function commandEntry(device, line) {
    const out = $("cmd-out");
    const entry = el("div", "cmd-entry pending");
    entry.dataset.status = "pending";
    const head = el("div", "cmd-head");
    const badge = el("span", "badge", "…");
    const what = el("span", "cmd-what", `${device} › ${line}`);
    const when = el("time", "cmd-time", fmtClock(Date.now() * 1000));
    head.append(badge, what, when);
    const reply = el("pre", "reply");
    entry.append(head, reply);
    out.prepend(entry);
    while (out.children.length > COMMAND_OUTPUTS_MAX) out.lastElementChild.remove();
    return {
      done(status, text) {
        entry.classList.remove("pending");
        entry.classList.add(status === "ok" ? "ok" : "bad");
        entry.dataset.status = status;
        setText(badge, status.replace(/_/g, " "));
        setText(reply, text === "" ? "(empty reply)" : text);
      },
    };
  }

  function commandError(text) {
    const out = $("cmd-out");
    const e = el("div", "cmd-entry bad", text);
    e.dataset.status = "error";
    out.prepend(e);
    while (out.children.length > COMMAND_OUTPUTS_MAX) out.lastElementChild.remove();
  }

  $("cmd-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const device = $("cmd-device").value;
    const input = $("cmd-line");
    if (!device) {
      commandError("No device selected: none is connected.");
      return;
    }
    let words;
    try {
      words = splitCommandLine(input.value);
    } catch (e) {
      commandError(`Cannot read the command: ${e.message}.`);
      return;
    }
    if (!words.length) {
      commandError("Type a command first, e.g. status.");
      input.focus();
      return;
    }
    const [command, ...args] = words;
    const entry = commandEntry(device, words.join(" "));
    const button = $("cmd-send");
    button.disabled = true;
    try {
      const res = await fetch(`/api/devices/${encodeURIComponent(device)}/commands`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ command, args }),
      });
      let body = null;
      try {
        body = await res.json();
      } catch (_) {
        body = null;
      }
      if (body && typeof body.status === "string") {
        entry.done(body.status, typeof body.reply === "string" ? body.reply : "");
      } else {
        entry.done("error", body && body.error ? String(body.error) : `HTTP ${res.status} from the hub`);
      }
    } catch (e) {
      entry.done("error", `Could not reach the hub: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  });

  // ---- event log

  const eventsEl = $("events");
  const KNOWN_KINDS = new Set(["connect", "disconnect", "stored", "reject", "message", "command", "device", "stream", "lagged"]);

  function addEvent(e) {
    const li = el("li", "event");
    const kind = String(e.kind || "");
    li.dataset.kind = kind;
    const t = el("time", "ev-time", typeof e.time_us === "number" ? fmtClock(e.time_us) : "");
    if (typeof e.time_us === "number") t.title = fmtDateTime(e.time_us);
    const k = el("span", `ev-kind kind-${KNOWN_KINDS.has(kind) ? kind : "other"}`, kind);
    const c = el("span", "ev-client", e.client || "");
    const x = el("span", "ev-text", e.text || "");
    li.append(t, k, c, x);
    eventsEl.prepend(li);
    while (eventsEl.children.length > EVENTS_MAX) eventsEl.lastElementChild.remove();
  }

  function clearEvents() {
    eventsEl.replaceChildren();
  }

  // ---- files gallery

  const files = { after: null, count: 0, gen: 0, ctrl: null, items: new Map(), senders: new Set() };

  function fileIcon(path) {
    const name = baseName(path);
    const dot = name.lastIndexOf(".");
    const ext = dot > 0 ? name.slice(dot + 1).slice(0, 4).toUpperCase() : "";
    const icon = el("div", "icon", ext || "FILE");
    icon.setAttribute("aria-hidden", "true");
    return icon;
  }

  function fileItem(f) {
    const li = el("li", "file");
    li.dataset.path = f.path;
    const a = el("a");
    a.href = `/files/${encPath(f.path)}`;
    a.download = baseName(f.path);
    a.title = `${f.path}\n${fmtBytes(f.size)} · from ${f.sender} · ${fmtDateTime(f.stored_us)}\nblake3 ${f.blake3}`;
    const thumb = el("div", "thumb");
    if (f.image) {
      const img = el("img");
      img.loading = "lazy"; // before src, or it loads at once
      img.decoding = "async";
      img.alt = "";
      img.onerror = () => img.replaceWith(fileIcon(f.path));
      // The hash in the query: a replaced file gets a new thumbnail, not a cached old one.
      img.src = `/thumbs/${encPath(f.path)}?v=${encodeURIComponent(String(f.blake3 || "").slice(0, 16))}`;
      thumb.append(img);
    } else {
      thumb.append(fileIcon(f.path));
    }
    const name = el("span", "fname", baseName(f.path));
    const dir = el("span", "fdir", dirName(f.path));
    const meta = el("span", "fmeta", `${fmtBytes(f.size)} · ${f.sender}`);
    a.append(thumb, name, dir, meta);
    li.append(a);
    return li;
  }

  /** Loads the first page (or, when refreshing, as many files as are shown), or the next page. */
  async function loadFiles({ append = false, keep = false } = {}) {
    const prefix = $("filter-prefix").value;
    const sender = $("filter-sender").value.trim();
    const limit = keep ? Math.min(1000, Math.max(FILES_PAGE, files.count)) : FILES_PAGE;
    const q = new URLSearchParams();
    if (prefix) q.set("prefix", prefix);
    if (sender) q.set("sender", sender);
    q.set("limit", String(limit));
    if (append && files.after) q.set("after", files.after);
    if (files.ctrl) files.ctrl.abort();
    const ctrl = new AbortController();
    files.ctrl = ctrl;
    const gen = ++files.gen;
    const status = $("files-status");
    if (!append && !keep) setText(status, "Loading…");
    let data;
    try {
      const res = await fetch(`/api/files?${q}`, { signal: ctrl.signal });
      const body = await res.json().catch(() => null);
      if (!res.ok) throw new Error(body && body.error ? body.error : `HTTP ${res.status}`);
      data = body;
    } catch (e) {
      if (e.name === "AbortError") return;
      if (gen === files.gen) {
        status.classList.add("error");
        setText(status, `Could not list files: ${e.message}`);
      }
      return;
    }
    if (gen !== files.gen) return;
    files.ctrl = null;
    status.classList.remove("error");
    const list = Array.isArray(data.files) ? data.files : [];
    const gallery = $("gallery");
    // Reuse the items that did not change, so their thumbnails do not reload.
    const old = append ? null : files.items;
    if (!append) files.items = new Map();
    const nodes = [];
    for (const f of list) {
      const key = `${f.path}\n${f.blake3}`;
      let li = old && old.get(key);
      if (!li) li = fileItem(f);
      files.items.set(key, li);
      nodes.push(li);
      if (f.sender) files.senders.add(f.sender);
    }
    if (append) {
      gallery.append(...nodes);
      files.count += nodes.length;
    } else {
      gallery.replaceChildren(...nodes);
      files.count = nodes.length;
    }
    files.after = data.next_after || null;
    $("files-more").hidden = !files.after;
    const filtered = prefix || sender;
    setText(
      status,
      files.count === 0
        ? filtered
          ? "No files match."
          : "No files stored yet."
        : `${fmtCount(files.count)} file${files.count === 1 ? "" : "s"}${files.after ? ", more below" : ""}${filtered ? " matching" : ""}`,
    );
    const dl = $("senders");
    if (dl.children.length !== files.senders.size) {
      dl.replaceChildren(
        ...[...files.senders].sort().map((s) => {
          const o = el("option");
          o.value = s;
          return o;
        }),
      );
    }
  }

  const refreshFilesSoon = debounce(() => loadFiles({ keep: true }), UPLOAD_REFRESH_DEBOUNCE_MS);
  const filterChanged = debounce(() => loadFiles(), FILTER_DEBOUNCE_MS);
  $("filter-prefix").addEventListener("input", filterChanged);
  $("filter-sender").addEventListener("input", filterChanged);
  $("files-more").addEventListener("click", () => loadFiles({ append: true }));

  // ---- start

  renderDevices([]);
  renderClients([]);
  loadFiles();
  connect();
})();
