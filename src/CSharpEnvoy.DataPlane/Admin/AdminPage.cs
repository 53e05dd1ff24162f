namespace CSharpEnvoy.DataPlane.Admin;

/// <summary>
/// The admin home page: one self-contained HTML document (no CDN, no external fonts or scripts) that reads the admin
/// endpoints every second and shows the server, listeners, routes, clusters with their hosts, and live charts of
/// request rate, error rate and p50/p99 latency per cluster. Rates and quantiles are computed in the page from
/// successive <c>/stats/prometheus</c> samples (counter deltas and histogram bucket deltas), so they describe the last
/// interval rather than the whole uptime.
/// </summary>
internal static class AdminPage
{
    public const string Html = """
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>csenvoy admin</title>
<style>
  :root { --bg:#0f1419; --panel:#172029; --line:#243240; --text:#dbe4ee; --dim:#8aa0b4; --ok:#3fb950; --bad:#f85149; --warn:#d29922; --a:#58a6ff; --b:#bc8cff; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; gap:24px; align-items:baseline; padding:14px 22px; border-bottom:1px solid var(--line); background:var(--panel); }
  header h1 { font-size:18px; margin:0; } header .dim { color:var(--dim); }
  main { padding:18px 22px; display:grid; gap:18px; }
  .cards { display:grid; grid-template-columns:repeat(4, minmax(160px, 1fr)); gap:14px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  .card .v { font-size:26px; font-weight:600; font-variant-numeric:tabular-nums; } .card .k { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  section h2 { font-size:14px; margin:0 0 10px; color:var(--dim); text-transform:uppercase; letter-spacing:.05em; }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  .ok { color:var(--ok); } .bad { color:var(--bad); } .warn { color:var(--warn); }
  .charts { display:grid; grid-template-columns:repeat(3, 1fr); gap:14px; }
  canvas { width:100%; height:150px; background:#111a22; border-radius:6px; }
  .legend { font-size:12px; color:var(--dim); margin-top:4px; } .legend b { display:inline-block; width:10px; height:3px; margin:0 4px 2px 10px; vertical-align:middle; }
  code { color:var(--a); }
</style>
</head>
<body>
<header><h1>csenvoy</h1><span id="version" class="dim"></span><span id="state"></span><span id="uptime" class="dim"></span><span id="node" class="dim"></span></header>
<main>
  <div class="cards">
    <div class="card"><div class="k">requests total</div><div class="v" id="total-requests">–</div></div>
    <div class="card"><div class="k">requests / s</div><div class="v" id="rps">–</div></div>
    <div class="card"><div class="k">5xx rate</div><div class="v" id="error-rate">–</div></div>
    <div class="card"><div class="k">latency p50 / p99 (ms)</div><div class="v" id="latency">–</div></div>
  </div>
  <section><h2>Live, per cluster</h2>
    <div class="charts">
      <div><canvas id="chart-rps" data-points="0"></canvas><div class="legend">requests / s</div></div>
      <div><canvas id="chart-errors" data-points="0"></canvas><div class="legend">5xx / s</div></div>
      <div><canvas id="chart-latency" data-points="0"></canvas><div class="legend">p50 (solid) and p99 (dashed) ms</div></div>
    </div>
    <div class="legend" id="chart-legend"></div>
  </section>
  <section><h2>Clusters</h2><table id="clusters"><thead><tr><th>cluster</th><th>requests</th><th>rq/s</th><th>5xx/s</th><th>p50 ms</th><th>p99 ms</th><th>hosts</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Listeners</h2><table id="listeners"><thead><tr><th>name</th><th>address</th></tr></thead><tbody></tbody></table></section>
  <section><h2>Routes</h2><table id="routes"><thead><tr><th>route config</th><th>virtual host</th><th>domains</th><th>match</th><th>action</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const COLORS = ["#58a6ff", "#bc8cff", "#3fb950", "#d29922", "#f85149", "#39c5cf", "#ff7b72", "#a5d6ff"];
const HISTORY = 60;
let prev = null;                 // previous prometheus sample: {t, series}
const history = {};              // cluster -> [{rps, err, p50, p99}]
const esc = s => String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;" }[c]));
const fmt = (v, d = 1) => v == null || isNaN(v) ? "–" : v.toLocaleString("en-US", { maximumFractionDigits: d });

// Prometheus text -> Map("name{labels}" -> value) plus parsed label sets.
function parseProm(text) {
  const series = new Map();
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const sp = line.lastIndexOf(" ");
    const key = line.slice(0, sp), value = parseFloat(line.slice(sp + 1));
    const brace = key.indexOf("{");
    const name = brace < 0 ? key : key.slice(0, brace);
    const labels = {};
    if (brace >= 0) for (const m of key.slice(brace + 1, -1).matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]] = m[2];
    series.set(key, { name, labels, value });
  }
  return series;
}
function sum(series, name, pred) { let s = 0; for (const e of series.values()) if (e.name === name && pred(e.labels)) s += e.value; return s; }
// Quantile from the bucket deltas between two samples (linear inside the bucket, as the server does).
function quantile(cur, old, name, pred, q) {
  const buckets = [];
  for (const [key, e] of cur) {
    if (e.name !== name + "_bucket" || !pred(e.labels)) continue;
    const le = e.labels.le === "+Inf" ? Infinity : parseFloat(e.labels.le);
    const before = old && old.has(key) ? old.get(key).value : 0;
    buckets.push([le, e.value - before]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let lower = 0, prevCum = 0;
  for (const [le, cum] of buckets) {
    if (cum >= rank && cum > 0) {
      const upper = isFinite(le) ? le : lower;
      const inBucket = cum - prevCum;
      return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - prevCum) / inBucket);
    }
    if (isFinite(le)) lower = le;
    prevCum = cum;
  }
  return lower;
}

function drawChart(id, clusters, pick, dashedPick) {
  const canvas = document.getElementById(id);
  const w = canvas.width = canvas.clientWidth * devicePixelRatio, h = canvas.height = canvas.clientHeight * devicePixelRatio;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  let max = 0, points = 0;
  for (const c of clusters) for (const p of history[c] || []) { max = Math.max(max, pick(p) || 0, dashedPick ? dashedPick(p) || 0 : 0); points++; }
  canvas.dataset.points = points;
  max = max > 0 ? max * 1.15 : 1;
  ctx.strokeStyle = "#243240"; ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) { const y = h * i / 4; ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke(); }
  ctx.fillStyle = "#8aa0b4"; ctx.font = (10 * devicePixelRatio) + "px system-ui"; ctx.fillText(fmt(max, 1), 4, 12 * devicePixelRatio);
  clusters.forEach((c, i) => {
    const data = history[c] || [];
    for (const [fn, dash] of [[pick, []], [dashedPick, [6, 4]]]) {
      if (!fn) continue;
      ctx.strokeStyle = COLORS[i % COLORS.length]; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash(dash);
      ctx.beginPath();
      data.forEach((p, j) => { const v = fn(p); const x = w * (j + HISTORY - data.length) / (HISTORY - 1); const y = h - (isNaN(v) ? 0 : v) / max * h; j ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
      ctx.stroke();
    }
  });
  ctx.setLineDash([]);
}

function parseClustersText(text) {
  const clusters = {};
  for (const line of text.split("\n")) {
    const parts = line.split("::");
    if (parts.length < 3) continue;
    const c = clusters[parts[0]] ??= { hosts: {} };
    if (parts.length === 4 && /[:\/]/.test(parts[1]) && parts[1] !== "default_priority") {
      const h = c.hosts[parts[1]] ??= {};
      h[parts[2]] = parts[3];
    }
  }
  return clusters;
}

async function refresh() {
  try {
    const [info, prom, clustersText, listeners, dump] = await Promise.all([
      fetch("/server_info").then(r => r.json()),
      fetch("/stats/prometheus").then(r => r.text()),
      fetch("/clusters").then(r => r.text()),
      fetch("/listeners?format=json").then(r => r.json()),
      fetch("/config_dump").then(r => r.json()),
    ]);
    const now = performance.now();
    document.getElementById("version").textContent = info.version;
    const state = document.getElementById("state"); state.textContent = info.state; state.className = info.state === "LIVE" ? "ok" : "warn";
    document.getElementById("uptime").textContent = "up " + (info.uptime_current_epoch || "0s");
    document.getElementById("node").textContent = info.node && info.node.id ? "node " + info.node.id : "";

    const series = parseProm(prom);
    const dt = prev ? (now - prev.t) / 1000 : 0;
    const any = () => true;
    const total = sum(series, "envoy_http_downstream_rq_total", any);
    document.getElementById("total-requests").textContent = fmt(total, 0);
    if (prev && dt > 0) {
      const d = (name, pred) => (sum(series, name, pred) - sum(prev.series, name, pred)) / dt;
      const rps = d("envoy_http_downstream_rq_total", any);
      const err = d("envoy_http_downstream_rq_xx", l => l.envoy_response_code_class === "5");
      document.getElementById("rps").textContent = fmt(rps, 1);
      document.getElementById("error-rate").textContent = rps > 0 ? fmt(100 * err / rps, 2) + "%" : "0%";
      // The last interval's quantiles; since start when no request finished in it (the card never goes blank).
      const q = p => {
        const v = quantile(series, prev.series, "envoy_http_downstream_rq_time", any, p);
        return isNaN(v) ? quantile(series, null, "envoy_http_downstream_rq_time", any, p) : v;
      };
      document.getElementById("latency").textContent = fmt(q(0.5), 2) + " / " + fmt(q(0.99), 2);
    }

    const hostsByCluster = parseClustersText(clustersText);
    const names = Object.keys(hostsByCluster).sort();
    const rows = [];
    for (const name of names) {
      const isC = l => l.envoy_cluster_name === name;
      const rq = sum(series, "envoy_cluster_upstream_rq_total", isC);
      let point = { rps: NaN, err: NaN, p50: NaN, p99: NaN };
      if (prev && dt > 0) {
        point = {
          rps: (rq - sum(prev.series, "envoy_cluster_upstream_rq_total", isC)) / dt,
          err: (sum(series, "envoy_cluster_upstream_rq_xx", l => isC(l) && l.envoy_response_code_class === "5") -
                sum(prev.series, "envoy_cluster_upstream_rq_xx", l => isC(l) && l.envoy_response_code_class === "5")) / dt,
          p50: quantile(series, prev.series, "envoy_cluster_upstream_rq_time", isC, 0.5),
          p99: quantile(series, prev.series, "envoy_cluster_upstream_rq_time", isC, 0.99),
        };
        (history[name] ??= []).push(point);
        if (history[name].length > HISTORY) history[name].shift();
      }
      const hosts = Object.entries(hostsByCluster[name].hosts).map(([addr, h]) => {
        const healthy = (h.health_flags || "healthy") === "healthy";
        return `<div><code>${esc(addr)}</code> <span class="${healthy ? "ok" : "bad"}">${esc(h.health_flags || "healthy")}</span>` +
          ` <span class="dim">zone ${esc(h.zone || "–")} · weight ${esc(h.weight || "1")} · rq ${esc(h.rq_total || "0")} · active ${esc(h.rq_active || "0")}</span></div>`;
      }).join("");
      rows.push(`<tr data-cluster="${esc(name)}"><td>${esc(name)}</td><td class="requests">${fmt(rq, 0)}</td><td>${fmt(point.rps)}</td>` +
        `<td class="${point.err > 0 ? "bad" : ""}">${fmt(point.err)}</td><td>${fmt(point.p50, 2)}</td><td>${fmt(point.p99, 2)}</td><td>${hosts || "<span class=dim>none</span>"}</td></tr>`);
    }
    document.querySelector("#clusters tbody").innerHTML = rows.join("");
    drawChart("chart-rps", names, p => p.rps);
    drawChart("chart-errors", names, p => p.err);
    drawChart("chart-latency", names, p => p.p50, p => p.p99);
    document.getElementById("chart-legend").innerHTML = names.map((n, i) => `<b style="background:${COLORS[i % COLORS.length]}"></b>${esc(n)}`).join("");

    document.querySelector("#listeners tbody").innerHTML = (listeners.listener_statuses || []).map(l => {
      const a = l.local_address || {};
      const addr = a.socket_address ? `${a.socket_address.address}:${a.socket_address.port_value || 0}` : (a.pipe ? a.pipe.path : "");
      return `<tr><td>${esc(l.name)}</td><td><code>${esc(addr)}</code></td></tr>`;
    }).join("");

    const routeRows = [];
    for (const cfg of dump.configs || []) {
      const list = [...(cfg.static_route_configs || []), ...(cfg.dynamic_route_configs || [])];
      for (const rc of list) {
        const r = rc.route_config || {};
        for (const vh of r.virtual_hosts || []) for (const route of vh.routes || []) {
          const m = route.match || {};
          const match = m.prefix != null ? "prefix " + m.prefix : m.path != null ? "path " + m.path : m.safe_regex ? "regex " + m.safe_regex.regex : m.path_separated_prefix ? "path_separated_prefix " + m.path_separated_prefix : "";
          const a = route.route ? (route.route.cluster ? "→ " + route.route.cluster : route.route.weighted_clusters ? "→ " + route.route.weighted_clusters.clusters.map(c => c.name + " (" + (c.weight || 0) + ")").join(", ") : "→ header " + route.route.cluster_header)
                  : route.redirect ? "redirect" : route.direct_response ? "direct " + route.direct_response.status : "";
          routeRows.push(`<tr><td>${esc(r.name || "")}</td><td>${esc(vh.name)}</td><td>${esc((vh.domains || []).join(", "))}</td><td><code>${esc(match)}</code></td><td>${esc(a)}</td></tr>`);
        }
      }
    }
    document.querySelector("#routes tbody").innerHTML = routeRows.join("");
    prev = { t: now, series };
  } catch (e) {
    document.getElementById("state").textContent = "admin unreachable";
    document.getElementById("state").className = "bad";
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
""";
}
