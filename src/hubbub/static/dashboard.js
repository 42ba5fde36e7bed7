// The hubbub dashboard: polls dashboard/stats once a second and draws the
// last two minutes on plain canvases (no chart library, nothing from a CDN).
const $ = (id) => document.getElementById(id);
const POINTS = 120; // two minutes of one-second samples
const series = { connections: [], channels: [], in: [], out: [] };
let previous = null;
let apiKey = sessionStorage.getItem("hubbub-api-key") || "";
let timer = null;

function fmt(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
}

function push(name, value) {
  const s = series[name];
  s.push(value);
  if (s.length > POINTS) s.shift();
}

function draw(canvas, values) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * ratio || canvas.height !== h * ratio) {
    canvas.width = w * ratio;
    canvas.height = h * ratio;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(document.documentElement);
  const accent = style.getPropertyValue("--accent").trim() || "#5b5bf0";
  const muted = style.getPropertyValue("--muted").trim() || "#888";
  const line = style.getPropertyValue("--line").trim() || "#ddd";
  const max = Math.max(1, ...values) * 1.15;
  const top = 14, bottom = h - 4;
  ctx.strokeStyle = line;
  ctx.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = Math.round(bottom - (bottom - top) * f) + 0.5;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(w, y);
    ctx.stroke();
  }
  ctx.fillStyle = muted;
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(fmt(Math.round(max)), 2, 10);
  if (values.length < 2) return;
  const step = w / (Math.max(values.length, 20) - 1); // fills up over the first 20 s
  const x0 = w - (values.length - 1) * step;
  const y = (v) => bottom - (bottom - top) * (v / max);
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x0 + i * step, y(v)) : ctx.moveTo(x0, y(v))));
  ctx.strokeStyle = accent;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  ctx.stroke();
  ctx.lineTo(w, bottom);
  ctx.lineTo(x0, bottom);
  ctx.closePath();
  const gradient = ctx.createLinearGradient(0, top, 0, bottom);
  gradient.addColorStop(0, accent + "55");
  gradient.addColorStop(1, accent + "05");
  ctx.fillStyle = gradient;
  ctx.fill();
}

function redraw() {
  draw($("c-connections"), series.connections);
  draw($("c-channels"), series.channels);
  draw($("c-in"), series.in);
  draw($("c-out"), series.out);
}

function render(stats) {
  let rateIn = 0, rateOut = 0;
  if (previous) {
    const dt = Math.max(0.001, stats.time - previous.time);
    rateIn = Math.max(0, (stats.messages_in - previous.messages_in) / dt);
    rateOut = Math.max(0, (stats.messages_out - previous.messages_out) / dt);
  }
  previous = stats;
  push("connections", stats.connections);
  push("channels", stats.channels);
  push("in", rateIn);
  push("out", rateOut);
  $("node").textContent = `node ${stats.node}${stats.development ? " · development mode" : ""}`;
  $("v-connections").textContent = fmt(stats.connections);
  $("v-users").textContent = fmt(stats.users);
  $("v-channels").textContent = fmt(stats.channels);
  $("v-subscriptions").textContent = fmt(stats.subscriptions);
  $("v-in").textContent = fmt(rateIn);
  $("v-out").textContent = fmt(rateOut);
  $("uptime").textContent = duration(stats.uptime);
  $("errors").textContent = fmt(stats.errors);
  redraw();

  const most = Math.max(1, ...stats.top_channels.map((c) => c.subscribers));
  const rows = stats.top_channels.map(({ channel, subscribers }) => {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    name.textContent = channel;
    const count = document.createElement("td");
    count.className = "num";
    count.textContent = String(subscribers);
    const barCell = document.createElement("td");
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.setProperty("width", `${(100 * subscribers) / most}%`);
    barCell.append(bar);
    tr.append(name, count, barCell);
    return tr;
  });
  $("top").replaceChildren(...rows);
  $("top-empty").hidden = rows.length > 0;
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status").textContent = text;
}

async function poll() {
  clearTimeout(timer);
  try {
    const headers = apiKey ? { Authorization: `apikey ${apiKey}` } : {};
    const res = await fetch("dashboard/stats", { headers, cache: "no-store" });
    if (res.status === 401) {
      setStatus("closed", "Locked");
      $("login").hidden = false;
      $("login-error").hidden = !apiKey;
      $("login-error").textContent = apiKey ? "That key was not accepted." : "";
      $("api-key").focus();
      return;
    }
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    render(await res.json());
    setStatus("connected", "Live");
  } catch (err) {
    setStatus("reconnecting", "Hub unreachable");
  }
  timer = setTimeout(poll, 1000);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("api-key").value.trim();
  sessionStorage.setItem("hubbub-api-key", apiKey);
  $("login").hidden = true;
  poll();
});
window.addEventListener("resize", redraw);
poll();
