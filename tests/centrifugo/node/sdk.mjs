// Drives the real centrifuge-js SDK (npm `centrifuge`, Node transport `ws`) against
// hubbub's /connection/websocket and prints what it sees as JSON lines on stdout.
// Usage: node sdk.mjs <basic|listen|badtoken> <ws-url> <token> <channel>
import { Centrifuge } from "centrifuge";
import WebSocket from "ws";

const [mode, url, token, channel] = process.argv.slice(2);
const emit = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));

const client = new Centrifuge(url, {
  token,
  websocket: WebSocket,
  minReconnectDelay: 50,
  maxReconnectDelay: 300,
});
client.on("connected", (ctx) => emit("connected", { client: ctx.client, transport: ctx.transport }));
client.on("connecting", (ctx) => emit("connecting", { code: ctx.code, reason: ctx.reason }));
client.on("disconnected", (ctx) => emit("disconnected", { code: ctx.code, reason: ctx.reason }));

async function basic() {
  const sub = client.newSubscription(channel);
  sub.on("publication", (ctx) => emit("publication", { offset: ctx.offset, data: ctx.data }));
  client.connect();
  await sub.subscribe();
  await sub.ready(5000);
  await sub.publish({ from: "node" });
  const history = await sub.history({ limit: -1 });
  emit("history", {
    offsets: history.publications.map((p) => p.offset),
    data: history.publications.map((p) => p.data),
    epoch: history.epoch,
  });
  const presence = await sub.presence();
  emit("presence", { users: Object.values(presence.clients).map((c) => c.user) });
  const stats = await sub.presenceStats();
  emit("stats", { clients: stats.numClients, users: stats.numUsers });
  const rpc = await client.rpc("echo", { hello: "node" });
  emit("rpc", { data: rpc.data });
  try {
    await client.rpc("missing", {});
  } catch (err) {
    emit("rpc_error", { code: err.code });
  }
  client.disconnect();
  emit("done");
}

async function listen() {
  const sub = client.newSubscription(channel);
  sub.on("subscribed", (ctx) =>
    emit("subscribed", { wasRecovering: ctx.wasRecovering, recovered: ctx.recovered }),
  );
  sub.on("publication", (ctx) => emit("publication", { offset: ctx.offset, data: ctx.data }));
  client.connect();
  sub.subscribe();
  process.stdin.on("data", () => {}); // stop when the test closes stdin
  process.stdin.on("end", () => {
    client.disconnect();
    process.exit(0);
  });
}

async function badtoken() {
  client.connect();
  setTimeout(() => {
    emit("done");
    process.exit(0);
  }, 1500);
}

({ basic, listen, badtoken })[mode]().catch((err) => {
  emit("failed", { message: String(err && (err.message || JSON.stringify(err))) });
  process.exit(1);
});
