// hubbub.js: browser client for the hubbub WebSocket protocol v1.
// An ES module with no dependencies and no build step:
//   import { Hubbub } from "/hubbub.js";
//   const hub = new Hubbub("/ws", { getToken: async () => (await fetch("/token")).text() });
//   hub.subscribe("chat:lobby", { onMessage: (m) => console.log(m.data) });
//   hub.connect();
// It reconnects with exponential backoff and full jitter, resubscribes with
// `since` so that no publication is missed or shown twice, answers pings, and
// asks getToken() again once when the server says the token is no good (4001).

const RETRY_TOKEN = 4001; // unauthorized: refresh the token once, then stop
const FORBIDDEN = 4003; // origin refused, connection limit, kicked by the server: stop

export class HubbubError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "HubbubError";
    this.code = code; // server error code (400, 403, ...), or 0 for client-side errors
  }
}

function wsUrl(url) {
  const u = new URL(url, globalThis.location ? location.href : undefined);
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  return u;
}

export class Subscription {
  constructor(hub, channel, handlers) {
    this.hub = hub;
    this.channel = channel;
    this.handlers = handlers || {};
    this.epoch = null; // position of the last publication seen (or of the subscribe ack)
    this.offset = null;
    this.state = "pending"; // pending | subscribed | unsubscribed | failed
    this.ready = new Promise((resolve, reject) => ([this._resolve, this._reject] = [resolve, reject]));
    this.ready.catch(() => {}); // an unobserved failure is reported through onError
  }

  unsubscribe() {
    this.hub._unsubscribe(this);
  }

  _call(name, arg) {
    try {
      this.handlers[name]?.(arg, this);
    } catch (err) {
      console.error(`[hubbub] ${name} handler failed`, err);
    }
  }

  _since() {
    return this.epoch === null ? undefined : { offset: this.offset, epoch: this.epoch };
  }

  _onAck(ack, since) {
    if (this.state === "unsubscribed") return;
    if (since && ack.recovered) {
      for (const p of ack.publications || []) {
        this._deliver({ channel: this.channel, data: p.data, offset: p.offset, epoch: ack.epoch, info: p.info });
      }
    }
    if (this.epoch !== ack.epoch || this.offset < ack.offset) {
      this.epoch = ack.epoch;
      this.offset = ack.offset;
    }
    const first = this.state === "pending";
    this.state = "subscribed";
    if (first) this._resolve(this);
    if (since) {
      this._call("onRecover", {
        recovered: !!ack.recovered,
        missed: ack.recovered ? (ack.publications || []).length : null,
        offset: ack.offset,
        epoch: ack.epoch,
      });
    }
    this._call("onSubscribe", { offset: ack.offset, epoch: ack.epoch });
  }

  _deliver(msg) {
    if (msg.epoch === this.epoch && msg.offset <= this.offset) return; // seen already
    const epochChanged = this.epoch !== null && msg.epoch !== this.epoch;
    this.epoch = msg.epoch;
    this.offset = msg.offset;
    if (epochChanged) {
      // the channel's history was lost on the server: the app should reload its state
      this._call("onRecover", { recovered: false, missed: null, offset: msg.offset, epoch: msg.epoch });
    }
    this._call("onMessage", msg);
  }

  _fail(err) {
    this.state = "failed";
    this._reject(err);
    this._call("onError", err);
  }

  _serverUnsubscribed(reason) {
    // ended by the server (server API unsubscribe): final, never resubscribed
    const pending = this.state === "pending";
    this.state = "unsubscribed";
    if (pending) this._reject(new HubbubError(0, `unsubscribed by the server: ${reason}`));
    this._call("onUnsubscribe", { reason });
  }
}

export class Hubbub {
  constructor(url, options = {}) {
    this.url = url;
    this.options = {
      token: null,
      getToken: null,
      batch: false,
      minDelay: 500, // ms: first reconnect waits up to this long
      maxDelay: 20000, // ms: upper bound of the backoff
      timeout: 10000, // ms: how long a call waits for a connection and its reply
      ...options,
    };
    this.state = "disconnected"; // connecting | connected | disconnected | reconnecting | closed
    this.client = null;
    this.user = null;
    this._token = this.options.token;
    this._needToken = !this._token;
    this._refreshed = false;
    this._subs = new Map();
    this._pending = new Map();
    this._waiters = new Set();
    this._listeners = new Map();
    this._ids = 0;
    this._attempt = 0;
    this._ws = null;
    this._timer = null;
    this._idle = null;
    this._stopped = true;
    this._welcomed = false;
    this._online = () => this._wakeUp();
  }

  // -- events: state, connected, disconnected, unauthorized, error ---------------------

  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this.off(event, fn); // unsubscribe function
  }

  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  _emit(event, arg) {
    for (const fn of this._listeners.get(event) || []) {
      try {
        fn(arg);
      } catch (err) {
        console.error(`[hubbub] ${event} listener failed`, err);
      }
    }
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this._emit("state", state);
  }

  // -- connection -------------------------------------------------------------------

  connect() {
    if (!this._stopped) return this;
    this._stopped = false;
    this._attempt = 0;
    this._refreshed = false;
    globalThis.addEventListener?.("online", this._online);
    this._open();
    return this;
  }

  close() {
    this._stopped = true;
    globalThis.removeEventListener?.("online", this._online);
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    this._drop(new HubbubError(0, "client closed"));
    if (ws) ws.close(1000, "client closed");
    for (const w of this._waiters) w.reject(new HubbubError(0, "client closed"));
    this._waiters.clear();
    this._setState("closed");
  }

  async _open() {
    this._timer = null;
    this._setState(this.client === null && this._attempt === 0 ? "connecting" : "reconnecting");
    if (this._needToken && this.options.getToken) {
      try {
        this._token = await this.options.getToken();
      } catch (err) {
        return this._unauthorized(`getToken failed: ${err}`);
      }
      this._needToken = false;
    }
    if (this._stopped) return;
    const u = wsUrl(this.url);
    if (this._token) u.searchParams.set("token", this._token);
    if (this.options.batch) u.searchParams.set("batch", "1");
    let ws;
    try {
      ws = new WebSocket(u.href);
    } catch (err) {
      console.warn("[hubbub] cannot open", err);
      return this._retry();
    }
    this._ws = ws;
    this._welcomed = false;
    ws.onmessage = (ev) => this._onData(ws, ev.data);
    ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
  }

  _retry() {
    if (this._stopped) return;
    const o = this.options;
    const delay = Math.random() * Math.min(o.maxDelay, o.minDelay * 2 ** this._attempt);
    this._attempt = Math.min(this._attempt + 1, 30);
    this._setState("reconnecting");
    this._timer = setTimeout(() => this._open(), delay);
  }

  _wakeUp() {
    // the browser says the network is back: do not wait for the backoff timer
    if (this._timer !== null && !this._stopped) {
      clearTimeout(this._timer);
      this._open();
    }
  }

  _unauthorized(reason) {
    this.close();
    this._emit("unauthorized", { reason });
  }

  _drop(err) {
    this._ws = null;
    clearTimeout(this._idle);
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this._pending.clear();
  }

  _onClose(ws, code, reason) {
    if (ws !== this._ws) return;
    const welcomed = this._welcomed;
    this._drop(new HubbubError(0, `disconnected (${code})`));
    if (this._stopped) return;
    this._setState("disconnected");
    this._emit("disconnected", { code, reason });
    if (code === FORBIDDEN) {
      this.close();
      return this._emit("forbidden", { reason });
    }
    if (code === RETRY_TOKEN) {
      // token expired or rejected: ask for a new one once; a second refusal is final
      if (!this.options.getToken || (this._refreshed && !welcomed)) {
        return this._unauthorized(reason || "unauthorized");
      }
      this._refreshed = true;
      this._needToken = true;
    }
    this._retry(); // 1006, 1012, 4008, 4009 and anything else: back off and reconnect
  }

  _send(frame) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(JSON.stringify(frame));
  }

  _resetIdle(seconds) {
    clearTimeout(this._idle);
    const ws = this._ws;
    // no frame (not even a ping) for a whole ping interval and a margin: the link is dead
    this._idle = setTimeout(() => {
      if (ws !== this._ws) return;
      ws.onclose = null;
      ws.close(4000, "heartbeat timeout");
      this._onClose(ws, 1006, "no ping from the server");
    }, (seconds + 10) * 1000);
  }

  // -- frames -----------------------------------------------------------------------

  _onData(ws, data) {
    if (ws !== this._ws) return;
    if (this._pingInterval) this._resetIdle(this._pingInterval);
    if (typeof data !== "string") return console.warn("[hubbub] ignoring a binary frame");
    for (const line of data.split("\n")) {
      if (!line) continue;
      let frame;
      try {
        frame = JSON.parse(line);
      } catch {
        console.warn("[hubbub] ignoring a malformed frame", line.slice(0, 200));
        continue;
      }
      if (!frame || typeof frame !== "object" || typeof frame.type !== "string") {
        console.warn("[hubbub] ignoring a frame without a type", line.slice(0, 200));
        continue;
      }
      try {
        this._handle(frame);
      } catch (err) {
        console.error("[hubbub] error handling a frame", frame, err);
      }
    }
  }

  _handle(f) {
    const sub = typeof f.channel === "string" ? this._subs.get(f.channel) : undefined;
    switch (f.type) {
      case "welcome":
        return this._onWelcome(f);
      case "ping":
        return this._send({ type: "pong" });
      case "ack":
      case "error": {
        const p = this._pending.get(f.id);
        if (p) {
          this._pending.delete(f.id);
          clearTimeout(p.timer);
          if (f.type === "error") return p.reject(new HubbubError(f.code, f.message));
          p.onAck?.(f); // now, before the frames that follow the ack in this batch
          return p.resolve(f);
        }
        if (f.type === "error") this._emit("error", new HubbubError(f.code, f.message));
        return;
      }
      case "message":
        if (!Number.isInteger(f.offset) || typeof f.epoch !== "string") {
          return console.warn("[hubbub] ignoring a message without offset/epoch", f);
        }
        if (sub && sub.state === "subscribed") sub._deliver(f);
        return;
      case "join":
        return sub?._call("onJoin", f.info);
      case "leave":
        return sub?._call("onLeave", f.info);
      case "unsubscribe":
        if (!sub) return;
        this._subs.delete(f.channel);
        return sub._serverUnsubscribed(f.reason || "");
    }
  }

  _onWelcome(f) {
    this._welcomed = true;
    this.client = f.client;
    this.user = f.user;
    this._pingInterval = +f.ping_interval || 25;
    this._resetIdle(this._pingInterval);
    this._attempt = 0;
    this._refreshed = false;
    this._setState("connected");
    this._emit("connected", { client: f.client, user: f.user });
    for (const w of this._waiters) w.resolve();
    this._waiters.clear();
    for (const sub of this._subs.values()) this._subscribe(sub);
  }

  // -- commands ---------------------------------------------------------------------

  _whenConnected() {
    if (this.state === "connected") return Promise.resolve();
    if (this._stopped) return Promise.reject(new HubbubError(0, "not connected: call connect()"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._waiters.delete(w);
        reject(new HubbubError(0, "timed out waiting for a connection"));
      }, this.options.timeout);
      const w = { resolve: () => (clearTimeout(timer), resolve()), reject: (e) => (clearTimeout(timer), reject(e)) };
      this._waiters.add(w);
    });
  }

  _request(frame, onAck) {
    return new Promise((resolve, reject) => {
      const id = ++this._ids;
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new HubbubError(0, `${frame.type} timed out`));
      }, this.options.timeout);
      this._pending.set(id, { resolve, reject, timer, onAck });
      this._send({ ...frame, id });
    });
  }

  async _command(frame) {
    await this._whenConnected();
    const { type, id, ...result } = await this._request(frame);
    return result;
  }

  /** Subscribe to `channel`; handlers: onMessage, onJoin, onLeave, onRecover, onError,
   * onSubscribe, onUnsubscribe ({reason}: the server ended it; it is not resubscribed). */
  subscribe(channel, handlers = {}) {
    if (this._subs.has(channel)) throw new HubbubError(409, `already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, handlers);
    this._subs.set(channel, sub);
    if (this.state === "connected") this._subscribe(sub);
    return sub;
  }

  _subscribe(sub) {
    const since = sub._since();
    const frame = { type: "subscribe", channel: sub.channel };
    if (since) frame.since = since;
    const onAck = (ack) => this._subs.get(sub.channel) === sub && sub._onAck(ack, since);
    this._request(frame, onAck).catch((err) => {
      if (err.code === 0 || this._subs.get(sub.channel) !== sub) return; // retried on reconnect
      this._subs.delete(sub.channel);
      sub._fail(err);
    });
  }

  _unsubscribe(sub) {
    if (this._subs.get(sub.channel) !== sub) return;
    this._subs.delete(sub.channel);
    sub.state = "unsubscribed";
    if (this.state === "connected") this._request({ type: "unsubscribe", channel: sub.channel }).catch(() => {});
  }

  getSubscription(channel) {
    return this._subs.get(channel);
  }

  /** Publish `data` (any JSON value); resolves to {offset, epoch}. */
  publish(channel, data) {
    return this._command({ type: "publish", channel, data });
  }

  /** Call a server rpc handler; resolves to its result. */
  async rpc(method, data = null) {
    return (await this._command({ type: "rpc", method, data })).data;
  }

  /** Who is subscribed: {client_id: {client, user, info}}. */
  async presence(channel) {
    return (await this._command({ type: "presence", channel })).clients;
  }

  /** {num_clients, num_users} */
  presenceStats(channel) {
    return this._command({ type: "presence_stats", channel });
  }

  /** {publications, offset, epoch}; options: limit, since: {offset, epoch}, reverse. */
  history(channel, { limit, since, reverse } = {}) {
    const frame = { type: "history", channel };
    if (limit !== undefined) frame.limit = limit;
    if (since) frame.since = since;
    if (reverse) frame.reverse = true;
    return this._command(frame);
  }
}

export default Hubbub;
