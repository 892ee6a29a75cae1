// Tollhouse dashboard: charts (uPlot), live updates (server-sent events), copy and confirm buttons.
// No inline script anywhere (the Content-Security-Policy forbids it); data comes from JSON blocks.
(function () {
  "use strict";

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function fmt(n, places) { return n == null ? "—" : Number(n).toLocaleString("en-US", { maximumFractionDigits: places || 0 }); }
  function usd(v) {
    if (v == null) return "—";
    if (v && Math.abs(v) < 0.01) return "$" + Number(v).toFixed(6).replace(/0+$/, "");
    return "$" + Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // ---- charts ---------------------------------------------------------------------------------------
  var charts = [];
  var CHARTS = {
    traffic: [["requests", "Requests", "--c1"], ["errors", "Errors", "--c2"]],
    latency: [["p50_ms", "p50 ms", "--c1"], ["p95_ms", "p95 ms", "--c5"]],
    spend: [["cost_usd", "Spend $", "--c4"], ["saved_usd", "Saved $", "--c3"]],
    tokens: [["tokens", "Tokens", "--c1"]],
  };

  function chartData(kind, s) {
    return [s.t].concat(CHARTS[kind].map(function (c) { return s[c[0]]; }));
  }

  function drawCharts() {
    var block = document.getElementById("series");
    if (!block || typeof uPlot === "undefined") return;
    var s = JSON.parse(block.textContent);
    var axis = { stroke: css("--muted"), grid: { stroke: css("--line"), width: 1 }, ticks: { stroke: css("--line") } };
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = el.getAttribute("data-chart");
      var opts = {
        width: Math.max(260, el.clientWidth), height: 220,
        series: [{}].concat(CHARTS[kind].map(function (c) {
          return { label: c[1], stroke: css(c[2]), width: 2, spanGaps: kind === "latency", points: { show: false } };
        })),
        axes: [axis, Object.assign({ size: 60 }, axis)],
        scales: { x: { time: true } },
        legend: { live: true },
      };
      var chart = new uPlot(opts, chartData(kind, s), el);
      charts.push({ kind: kind, chart: chart, el: el, live: block.getAttribute("data-window") === "hour" });
    });
    var resize = function () {
      charts.forEach(function (c) { c.chart.setSize({ width: Math.max(260, c.el.clientWidth), height: 220 }); });
    };
    window.addEventListener("resize", resize);
  }

  // ---- live updates -----------------------------------------------------------------------------------
  function cell(text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function addTailRow(body, r) {
    var empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    var tr = document.createElement("tr");
    tr.className = "fresh";
    var t = new Date(r.ts * 1000);
    var a = document.createElement("a");
    a.href = "/ui/requests/" + encodeURIComponent(r.request_id);
    a.textContent = t.toISOString().slice(11, 19);
    var first = document.createElement("td");
    first.appendChild(a);
    tr.appendChild(first);
    tr.appendChild(cell(r.key_id || "—"));
    var served = (r.model || "—") + (r.model_served && r.model_served !== r.model ? " → " + r.model_served : "");
    tr.appendChild(cell(served));
    var st = cell(""); var badge = document.createElement("span");
    badge.className = "badge " + (r.status >= 400 ? "bad" : "ok"); badge.textContent = r.status;
    st.appendChild(badge); tr.appendChild(st);
    tr.appendChild(cell(fmt((r.prompt_tokens || 0) + (r.completion_tokens || 0)), "n"));
    tr.appendChild(cell(usd(r.cost_usd), "n"));
    tr.appendChild(cell(r.cache_status || "—"));
    tr.appendChild(cell(fmt(r.latency_ms, 1) + " ms", "n"));
    tr.setAttribute("data-request-id", r.request_id);
    body.insertBefore(tr, body.firstChild);
    while (body.rows.length > 50) body.deleteRow(body.rows.length - 1);
  }

  function setStat(name, text) {
    document.querySelectorAll('[data-stat="' + name + '"]').forEach(function (el) { el.textContent = text; });
  }

  function live() {
    var tail = document.querySelector("[data-live-tail]");
    if (!tail && !document.getElementById("series")) return;
    if (typeof EventSource === "undefined") return;
    var es = new EventSource("/ui/events");
    var state = document.getElementById("live-state");
    es.addEventListener("request", function (e) { if (tail) addTailRow(tail, JSON.parse(e.data)); });
    es.addEventListener("stats", function (e) {
      var s = JSON.parse(e.data);
      setStat("requests", fmt(s.requests));
      setStat("error_rate", (s.error_rate * 100).toFixed(1) + "%");
      setStat("p50_ms", fmt(s.p50_ms)); setStat("p95_ms", fmt(s.p95_ms));
      setStat("overhead_p50_ms", fmt(s.overhead_p50_ms, 2));
      setStat("tokens", fmt(s.tokens)); setStat("cost_usd", usd(s.cost_usd)); setStat("saved_usd", usd(s.saved_usd));
      charts.forEach(function (c) { if (c.live) c.chart.setData(chartData(c.kind, s.series)); });
      if (state) state.setAttribute("data-updated", String(Date.now()));
    });
    es.addEventListener("unavailable", function (e) {
      if (state) state.textContent = JSON.parse(e.data).message;
    });
    es.onerror = function () { if (state) state.setAttribute("data-error", String(Date.now())); };
  }

  // ---- copy, confirm ----------------------------------------------------------------------------------
  function buttons() {
    document.querySelectorAll("[data-copy]").forEach(function (b) {
      b.addEventListener("click", function () {
        var input = document.querySelector(b.getAttribute("data-copy"));
        var note = document.querySelector("[data-copied]");
        var done = function () { if (note) note.textContent = "Copied."; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(done, function () { input.select(); document.execCommand("copy"); done(); });
        } else { input.select(); document.execCommand("copy"); done(); }
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { buttons(); drawCharts(); live(); });
})();
