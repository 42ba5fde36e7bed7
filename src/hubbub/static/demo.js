// The hubbub demo chat. Every piece of user content goes through textContent:
// nothing a user types is ever parsed as HTML.
import { Hubbub } from "../hubbub.js";

const $ = (id) => document.getElementById(id);
const ROOM = /^[a-z0-9_-]{1,32}$/;
const HISTORY = 50;
const GROUP_MS = 5 * 60 * 1000;

const app = {
  dev: false,
  nickname: "",
  user: localStorage.getItem("hubbub-demo-user") || undefined,
  hub: null,
  rooms: new Map(), // name -> room
  current: null,
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function nameOf(info) {
  if (!info) return "server";
  const name = info.info && typeof info.info.name === "string" ? info.info.name : "";
  return name || info.user || "anonymous";
}

let toastTimer;
function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 3500);
}

// -- sign in --------------------------------------------------------------------------

async function fetchToken() {
  const res = await fetch("demo/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ nickname: app.nickname, user: app.user }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
  app.user = body.user;
  localStorage.setItem("hubbub-demo-user", body.user);
  return body.token;
}

function tokenName(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return (payload.info && payload.info.name) || payload.sub || "";
  } catch {
    return "";
  }
}

function showLogin(error) {
  $("login").hidden = false;
  $("nickname-field").hidden = !app.dev;
  $("token-field").hidden = app.dev;
  $("login-error").hidden = !error;
  $("login-error").textContent = error || "";
  (app.dev ? $("nickname") : $("token")).focus();
}

async function signIn(event) {
  event?.preventDefault();
  let options;
  if (app.dev) {
    app.nickname = $("nickname").value.trim().replace(/\s+/g, " ");
    if (!app.nickname) return showLogin("Pick a nickname.");
    localStorage.setItem("hubbub-demo-nickname", app.nickname);
    options = { getToken: fetchToken };
  } else {
    const token = $("token").value.trim();
    if (!token) return showLogin("Paste a connection token.");
    app.nickname = tokenName(token);
    options = { token };
  }
  $("login").hidden = true;
  start(options);
}

function signOut() {
  localStorage.removeItem("hubbub-demo-nickname");
  location.reload();
}

// -- connection -----------------------------------------------------------------------

const STATE_LABEL = {
  connecting: "Connecting…",
  connected: "Live",
  disconnected: "Reconnecting…",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

function start(options) {
  const hub = new Hubbub("ws", { ...options, batch: true });
  app.hub = hub;
  hub.on("state", (state) => {
    const status = $("status");
    status.dataset.state = state;
    status.textContent = STATE_LABEL[state] || state;
    $("banner").hidden = !(state === "reconnecting" || state === "disconnected");
  });
  hub.on("unauthorized", ({ reason }) => {
    for (const room of app.rooms.values()) room.list.remove();
    app.rooms.clear();
    $("rooms").replaceChildren();
    showLogin(`The hub refused the token (${reason}).`);
  });
  hub.on("error", (err) => toast(err.message));
  $("me").textContent = app.nickname;
  $("me").hidden = false;
  $("logout").hidden = false;
  hub.connect();
  const rooms = (location.hash.slice(1) || "lobby").split(",").filter((r) => ROOM.test(r));
  for (const name of rooms.length ? rooms : ["lobby"]) openRoom(name);
  switchRoom(rooms[0] || "lobby");
}

// -- rooms ----------------------------------------------------------------------------

function openRoom(name) {
  if (app.rooms.has(name)) return app.rooms.get(name);
  const room = {
    name,
    channel: `chat:${name}`,
    list: el("ol", "messages"),
    seen: new Set(),
    presence: new Map(), // client id -> {user, name}
    unread: 0,
    historyLoaded: false,
    button: el("button"),
  };
  room.list.dataset.room = name;
  room.list.hidden = true;
  $("messages-wrap").append(room.list);
  room.button.type = "button";
  room.button.dataset.room = name;
  room.button.append(el("span", "hash", "#"), el("span", "", name), el("span", "unread"));
  room.button.addEventListener("click", () => switchRoom(name));
  const li = el("li");
  li.append(room.button);
  $("rooms").append(li);
  app.rooms.set(name, room);

  room.sub = app.hub.subscribe(room.channel, {
    onSubscribe: () => {
      refreshPresence(room);
      if (!room.historyLoaded) loadHistory(room);
    },
    onMessage: (msg) => addMessage(room, msg, true),
    onJoin: (info) => {
      const known = [...room.presence.values()].some((p) => p.user === info.user);
      room.presence.set(info.client, { user: info.user, name: nameOf(info) });
      if (!known) addNotice(room, `${nameOf(info)} joined`);
      renderPresence();
    },
    onLeave: (info) => {
      room.presence.delete(info.client);
      const still = [...room.presence.values()].some((p) => p.user === info.user);
      if (!still) addNotice(room, `${nameOf(info)} left`);
      renderPresence();
    },
    onRecover: ({ recovered, missed }) => {
      if (recovered) {
        if (missed && room === app.current) toast(`Back online: ${missed} missed message${missed > 1 ? "s" : ""} recovered`);
      } else {
        // the server could not fill the gap (history lost or too old): start over
        room.list.replaceChildren();
        room.seen.clear();
        addNotice(room, "Some messages could not be recovered; showing the latest.", "warn");
        loadHistory(room);
      }
    },
    onError: (err) => addNotice(room, `Cannot join #${name}: ${err.message}`, "warn"),
  });
  return room;
}

function switchRoom(name) {
  const room = app.rooms.get(name) || openRoom(name);
  app.current = room;
  room.unread = 0;
  for (const r of app.rooms.values()) {
    r.list.hidden = r !== room;
    r.button.setAttribute("aria-current", String(r === room));
    const badge = r.button.querySelector(".unread");
    badge.textContent = r.unread ? String(r.unread) : "";
    badge.hidden = !r.unread;
  }
  $("room-name").textContent = name;
  $("text").placeholder = `Message #${name}`;
  location.hash = [...app.rooms.keys()].join(",");
  renderEmpty();
  renderPresence();
  scrollDown(true);
  $("text").focus();
}

async function loadHistory(room) {
  try {
    const result = await app.hub.history(room.channel, { limit: HISTORY, reverse: true });
    room.historyLoaded = true;
    for (const p of result.publications.reverse()) {
      addMessage(room, { data: p.data, offset: p.offset, epoch: result.epoch, info: p.info }, false);
    }
    scrollDown(true);
  } catch (err) {
    addNotice(room, `History unavailable: ${err.message}`, "warn");
  }
}

async function refreshPresence(room) {
  try {
    const clients = await app.hub.presence(room.channel);
    room.presence = new Map(
      Object.entries(clients).map(([id, info]) => [id, { user: info.user, name: nameOf(info) }]),
    );
    renderPresence();
  } catch (err) {
    console.warn("presence failed", err);
  }
}

function renderPresence() {
  const room = app.current;
  if (!room) return;
  const users = new Map();
  for (const p of room.presence.values()) users.set(p.user, p.name);
  const items = [...users].sort((a, b) => a[1].localeCompare(b[1])).map(([user, name]) => {
    const li = el("li", "", name);
    li.dataset.user = user;
    if (user === app.hub.user) li.append(el("span", "you", "(you)"));
    return li;
  });
  $("online").replaceChildren(...items);
  $("online-count").textContent = String(users.size);
}

// -- messages -------------------------------------------------------------------------

function renderEmpty() {
  $("empty").hidden = !app.current || app.current.list.childElementCount > 0;
}

function scrollDown(force) {
  const wrap = $("messages-wrap");
  if (force || wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 120) {
    wrap.scrollTop = wrap.scrollHeight;
  }
}

function addMessage(room, msg, live) {
  const key = `${msg.epoch}:${msg.offset}`;
  if (room.seen.has(key)) return;
  room.seen.add(key);
  const data = msg.data && typeof msg.data === "object" ? msg.data : { text: msg.data };
  const text = typeof data.text === "string" ? data.text : JSON.stringify(msg.data);
  const author = nameOf(msg.info);
  const ts = typeof data.ts === "number" ? data.ts : null;

  const li = el("li", "msg");
  li.dataset.offset = String(msg.offset);
  li.dataset.user = msg.info ? msg.info.user : "";
  li.dataset.ts = String(ts || 0);
  if (msg.info && msg.info.user === app.hub.user) li.classList.add("mine");
  const avatar = el("div", "avatar", author.slice(0, 1).toUpperCase());
  avatar.style.setProperty("--hue", String(hue(author)));
  const meta = el("div", "meta");
  meta.append(el("span", "author", author));
  if (ts) meta.append(el("time", "time", new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
  li.append(avatar, meta, el("div", "text", text));

  // keep offset order: history may arrive after the first live messages
  let next = null;
  for (const other of room.list.querySelectorAll(".msg")) {
    if (+other.dataset.offset > msg.offset) {
      next = other;
      break;
    }
  }
  const prev = next ? next.previousElementSibling : room.list.lastElementChild;
  const grouped =
    prev && prev.classList.contains("msg") && prev.dataset.user === li.dataset.user &&
    ts && Math.abs(ts - +prev.dataset.ts) < GROUP_MS;
  if (!grouped) li.classList.add("first");
  room.list.insertBefore(li, next);

  if (live && room !== app.current) {
    room.unread += 1;
    const badge = room.button.querySelector(".unread");
    badge.textContent = String(room.unread);
    badge.hidden = false;
  }
  if (room === app.current) {
    renderEmpty();
    scrollDown(!live || li.classList.contains("mine"));
  }
}

function addNotice(room, text, kind) {
  const li = el("li", kind ? `notice ${kind}` : "notice", text);
  room.list.append(li);
  if (room === app.current) {
    renderEmpty();
    scrollDown(false);
  }
}

async function send(event) {
  event.preventDefault();
  const input = $("text");
  const text = input.value.trim();
  if (!text || !app.current) return;
  input.value = "";
  try {
    await app.hub.publish(app.current.channel, { text, ts: Date.now() });
  } catch (err) {
    if (!input.value) input.value = text;
    toast(`Not sent: ${err.message}`);
  }
}

function addRoom(event) {
  event.preventDefault();
  const input = $("new-room-name");
  const name = input.value.trim().toLowerCase();
  if (!ROOM.test(name)) return toast("Room names use a-z, 0-9, - and _");
  input.value = "";
  switchRoom(name);
}

// -- boot -----------------------------------------------------------------------------

async function boot() {
  $("login-form").addEventListener("submit", signIn);
  $("composer").addEventListener("submit", send);
  $("new-room").addEventListener("submit", addRoom);
  $("logout").addEventListener("click", signOut);
  try {
    const res = await fetch("demo/config");
    app.dev = (await res.json()).development === true;
  } catch {
    app.dev = false;
  }
  const saved = localStorage.getItem("hubbub-demo-nickname");
  if (app.dev && saved) {
    $("nickname").value = saved;
    return signIn();
  }
  showLogin();
}

boot();
