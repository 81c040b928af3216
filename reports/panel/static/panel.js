/* The bench panel page: one EventSource, the whole state first (init), then small events.
   Every section of a run is replaced whole when it changes; the force trace is appended to.
   Nothing here decides anything: verdicts come from the server (reports.verdicts), and an
   answer is only sent — the run's console records which answer counted. */
(function () {
  "use strict";

  const NAME_KEY = "traction-rig-panel-operator";
  const runs = new Map();        // id -> run snapshot, kept current by the events
  const local = new Map();       // run id -> {ask -> what this page sent / was told}
  let selected = null;
  let skewMs = 0;                // server clock minus this browser's clock
  let waiting = false;
  let plot = null, plotDue = false, anglePlot = null;
  // the angles a status line may carry (reports/rundir.py LIVE_ANGLES), as the page names them
  const ANGLES = [["flexion_deg", "flexion", "#2e7d32"], ["lateral_deg", "lateral", "#6a1b9a"]];

  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const now = () => Date.now() + skewMs;
  const GAUGE_STALE_S = 1.0;
  const ms = (utc) => (utc ? Date.parse(utc) : NaN);
  const clock = (utc) => { const t = ms(utc); return isNaN(t) ? "?" : new Date(t).toLocaleTimeString([], {hour12: false}); };
  const num = (x, digits) => (typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "—");
  function duration(s) {
    if (!isFinite(s)) return "?";
    s = Math.max(0, Math.round(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${r} s` : `${r} s`;
  }
  function setSkew(utc) { const t = ms(utc); if (!isNaN(t)) skewMs = t - Date.now(); }
  function mine(runId) { if (!local.has(runId)) local.set(runId, {}); return local.get(runId); }
  const current = () => (selected === null ? null : runs.get(selected));

  // ------------------------------------------------------------ events
  // Every request is relative to the page's URL, /p/<key>/ (docs/panel.md): it carries the
  // run's key to the server without this script ever reading or storing it.
  function connect() {
    const source = new EventSource("events");
    const conn = $("#connection");
    source.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
    source.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "connection lost — reconnecting…"; };
    source.addEventListener("init", (ev) => {
      const data = JSON.parse(ev.data);
      setSkew(data.now_utc);
      waiting = !!data.waiting;
      runs.clear();
      for (const r of data.runs) runs.set(r.id, r);
      if (selected === null || !runs.has(selected)) selected = data.runs.length ? data.runs[0].id : null;
      renderAll();
    });
    source.addEventListener("run", (ev) => {
      const r = JSON.parse(ev.data);
      runs.set(r.id, r);
      if (selected === null) { selected = r.id; renderAll(); } else renderTabs();
    });
    for (const name of ["identity", "progress", "context", "verdicts", "heartbeat", "operator", "end"]) {
      source.addEventListener(name, (ev) => {
        const data = JSON.parse(ev.data);
        const r = runs.get(data.run);
        if (!r) return;
        r[name] = data.value;
        if (name === "progress" && data.value) setSkew(data.value.now_utc);
        if (data.run === selected) render(name);
        if (name === "verdicts" || name === "end" || name === "identity") renderTabs();
      });
    }
    source.addEventListener("trace", (ev) => {
      const data = JSON.parse(ev.data);
      const r = runs.get(data.run);
      if (!r) return;
      appendTrace(r.trace, data.value);
      if (data.run === selected) { renderForceValues(); schedulePlot(); }
    });
  }

  function appendTrace(trace, add) {
    for (const key of ["status", "gauge"]) {
      trace[key].t.push(...add[key].t);
      trace[key].f.push(...add[key].f);
    }
    // the section's angles (a flexion-distraction table): on the status lines' times
    if (add.angle) {
      trace.angle = trace.angle || {t: []};
      trace.angle.t.push(...add.angle.t);
      for (const [name] of ANGLES) (trace.angle[name] = trace.angle[name] || []).push(...(add.angle[name] || []));
    }
    trace.latest = add.latest;
    trace.window_s = add.window_s;
    const newest = Math.max(lastOf(trace.status.t), lastOf(trace.gauge.t));
    if (!isFinite(newest)) return;
    for (const key of ["status", "gauge"]) {
      const t = trace[key].t;
      let cut = 0;
      while (cut < t.length && t[cut] < newest - trace.window_s) cut++;
      if (cut) { t.splice(0, cut); trace[key].f.splice(0, cut); }
    }
    if (trace.angle) {
      let cut = 0;
      while (cut < trace.angle.t.length && trace.angle.t[cut] < newest - trace.window_s) cut++;
      if (cut) for (const key of Object.keys(trace.angle)) trace.angle[key].splice(0, cut);
    }
  }
  const lastOf = (a) => (a.length ? a[a.length - 1] : -Infinity);

  // ------------------------------------------------------------ rendering
  function renderAll() {
    renderTabs();
    $("#waiting").hidden = !(waiting && runs.size === 0);
    for (const name of ["identity", "progress", "context", "verdicts", "heartbeat", "operator", "end"]) render(name);
    renderForceValues();
    schedulePlot();
  }

  function render(name) {
    const r = current();
    if (!r) return;
    ({
      identity: renderIdentity, progress: renderProgress, context: renderProgress, verdicts: renderVerdicts,
      heartbeat: renderHeartbeat, operator: renderOperator,
      end: (run) => { renderEnd(run); renderOperator(run); renderProgress(run); renderVerdicts(run); renderHeartbeat(run); },
    })[name](r);
  }

  function renderTabs() {
    const nav = $("#run-tabs");
    nav.replaceChildren();
    if (runs.size < 2) return; // one run: nothing to choose
    for (const r of runs.values()) {
      const id = r.identity || {};
      const label = id.rig ? `${id.rig}${id.table && id.table.serial ? " · " + id.table.serial : ""}` : r.name;
      const b = el("button", {type: "button", "data-run": r.id, "aria-selected": String(r.id === selected),
                              "data-verdict": r.end && r.verdicts ? r.verdicts.overall : "",
                              "data-state": r.end ? "ended" : "running", title: r.dir},
                   el("span", {class: "dot"}), label);
      b.addEventListener("click", () => { selected = r.id; renderAll(); });
      nav.append(b);
    }
  }

  function renderIdentity(r) {
    const dl = $("#identity");
    dl.replaceChildren();
    const id = r.identity;
    if (!id) { dl.append(el("dt", {text: "run"}), el("dd", {text: r.name + " (not started yet)"})); return; }
    const cal = id.calibration || {};
    const rows = [
      ["rig", `${id.rig || "?"}${id.emulated ? " (emulated)" : ""}${id.worker ? " · worker " + id.worker : ""}`],
      ["table", `${id.table.serial || "?"}${id.table.model ? " · " + id.table.model : ""}`],
      ["firmware", id.table.firmware || "?"],
      ["gauge", `${id.gauge.model || "?"} · serial ${id.gauge.serial || "?"}`],
      ["calibration", `${cal.certificate || "?"}, due ${cal.due || "?"}${cal.expired ? " — EXPIRED" : ""}`,
       cal.expired ? "expired" : null],
      ["specification", `${id.specification.title || id.specification.name || "?"} (v${id.specification.version || "?"})`],
      ["operator", id.operator || "—"],
      ["started", clock(id.started_utc)],
      ["run", r.name],
    ];
    for (const [k, v, cls] of rows) {
      dl.append(el("dt", {text: k}), el("dd", {text: v, class: cls, "data-field": k}));
    }
  }

  function renderForceValues() {
    const r = current();
    if (!r) return;
    const l = r.trace.latest || {};
    // a buffered gauge's samples arrive when its capture ends: a value older than the
    // controller's newest reading is the last capture's, not the force now
    const stale = typeof l.gauge_t === "number" && typeof l.t === "number" && l.t - l.gauge_t > GAUGE_STALE_S;
    $("#force-gauge").textContent = typeof l.gauge_n === "number" && !stale ? `${num(l.gauge_n, 1)} N` : "—";
    $("#force-gauge-age").textContent = stale
      ? `not measuring now; the last capture ended at ${num(l.gauge_n, 1)} N, ${duration(l.t - l.gauge_t)} ago` : "";
    $("#force-actual").textContent = typeof l.force_n === "number" ? `${num(l.force_n, 1)} N` : "—";
    $("#phase").textContent = l.phase || "—";
    const angled = hasAngles(r.trace);
    $("#angle").hidden = !angled;
    if (angled) {
      for (const [name, label] of ANGLES) {
        $(`#angle-${label}`).textContent = typeof l[name] === "number" ? `${num(l[name], 1)}°` : "—";
      }
    }
    const flags = $("#flags");
    flags.replaceChildren();
    if (l.estop) flags.append(el("span", {text: "E-STOP"}));
    if (l.tripped) flags.append(el("span", {text: "OVER-FORCE TRIP"}));
    if (l.fault && l.fault !== "NONE" && l.fault !== "OK") flags.append(el("span", {text: `FAULT ${l.fault}`}));
  }

  function schedulePlot() {
    if (plotDue) return;
    plotDue = true;
    requestAnimationFrame(() => { plotDue = false; drawPlot(); });
  }

  function sorted(t, f) {
    for (let i = 1; i < t.length; i++) {
      if (t[i] < t[i - 1]) {
        const idx = t.map((_, k) => k).sort((a, b) => t[a] - t[b]);
        return [idx.map((k) => t[k]), idx.map((k) => f[k])];
      }
    }
    return [t, f];
  }

  function hasAngles(tr) {
    return !!(tr && tr.angle && tr.angle.t && tr.angle.t.length);
  }

  // the section's angles beside the force: the controller's encoders, on the same time axis
  function drawAnglePlot(r) {
    const box = $("#angle-plot");
    const tr = r.trace;
    if (!hasAngles(tr)) return;
    const cols = ANGLES.map(([name]) => sorted(tr.angle.t, tr.angle[name] || tr.angle.t.map(() => null)));
    const data = [cols[0][0], ...cols.map((c) => c[1])];
    const width = Math.max(300, box.clientWidth || 600);
    if (!anglePlot) {
      anglePlot = new uPlot({
        width, height: 220,
        scales: {x: {time: false, range: (u, lo, hi) => [Math.max(hi, tr.window_s) - tr.window_s, Math.max(hi, tr.window_s)]}},
        axes: [{label: "s since the feed started", font: "14px system-ui", labelFont: "14px system-ui"},
               {label: "°", font: "14px system-ui", labelFont: "14px system-ui", size: 60}],
        legend: {live: false},
        cursor: {show: false},
        series: [{}, ...ANGLES.map(([, label, color]) => (
          {label: `${label} angle (controller)`, stroke: color, width: 2, spanGaps: true, points: {show: false}}))],
      }, data, box);
      window.addEventListener("resize", () => anglePlot && anglePlot.setSize({width: Math.max(300, box.clientWidth), height: 220}));
    } else {
      anglePlot.setData(data);
    }
    box.dataset.points = String(data[0].length);
    box.dataset.newest = String(lastOf(data[0]));
  }

  function drawPlot() {
    const r = current();
    if (r && typeof uPlot !== "undefined") drawAnglePlot(r);
    const box = $("#force-plot");
    if (!r || typeof uPlot === "undefined") return;
    const tr = r.trace;
    const g = sorted(tr.gauge.t, tr.gauge.f), s = sorted(tr.status.t, tr.status.f);
    let data;
    if (g[0].length && s[0].length) data = uPlot.join([[g[0], g[1]], [s[0], s[1]]]);
    else if (g[0].length) data = [g[0], g[1], g[0].map(() => null)];
    else data = [s[0], s[0].map(() => null), s[1]];
    const newest = Math.max(lastOf(g[0]), lastOf(s[0]));
    const width = Math.max(300, box.clientWidth || 600);
    if (!plot) {
      plot = new uPlot({
        width, height: 300,
        scales: {x: {time: false, range: (u, lo, hi) => [Math.max(hi, tr.window_s) - tr.window_s, Math.max(hi, tr.window_s)]},
                 y: {range: (u, lo, hi) => [Math.min(0, lo ?? 0), Math.max(10, (hi ?? 10) * 1.08)]}},
        axes: [{label: "s since the feed started", font: "14px system-ui", labelFont: "14px system-ui"},
               {label: "N", font: "14px system-ui", labelFont: "14px system-ui", size: 60}],
        legend: {live: false},
        cursor: {show: false},
        series: [{}, {label: "gauge (reference)", stroke: "#1f5fbf", width: 2.5, spanGaps: true, points: {show: false}},
                 {label: "controller ACTUAL_FORCE", stroke: "#e07000", width: 1.5, spanGaps: true, points: {show: false}}],
      }, data, box);
      window.addEventListener("resize", () => plot && plot.setSize({width: Math.max(300, box.clientWidth), height: 300}));
    } else {
      plot.setData(data);
    }
    box.dataset.points = String(data[0].length);
    box.dataset.newest = isFinite(newest) ? String(newest) : "";
  }

  function expectedLeft(r) {
    const p = r.progress;
    if (!p || !p.estimate || !p.estimate.known) return null;
    let left = p.estimate.after_current_s || 0;
    if (p.current && p.estimate.current_s !== null) {
      const elapsed = (now() - ms(p.current.started_utc)) / 1000;
      left += Math.max(0, p.estimate.current_s - (isFinite(elapsed) ? elapsed : 0));
    }
    return left;
  }

  function renderProgress(r) {
    const p = r.progress;
    const ended = !!r.end;
    const cur = $("#current-test");
    cur.replaceChildren();
    if (p && p.current) {
      const elapsed = (now() - ms(p.current.started_utc)) / 1000;
      cur.dataset.test = p.current.test;
      cur.append(el("div", {class: "test", text: p.current.test}),
                 el("div", {class: "reqs", text: `requirements ${(p.current.requirements || []).join(", ") || "—"}` +
                            ` · running for ${duration(elapsed)}`, id: "current-elapsed"}));
    } else {
      cur.dataset.test = "";
      cur.append(el("span", {class: "dim", text: ended ? "run ended" : p && p.done ? "between tests" : "no test started yet"}));
    }
    const ctx = $("#context");
    ctx.replaceChildren();
    const c = r.context;
    if (c && !ended && (!p || !p.current || c.test === p.current.test)) {
      const kv = (k, v) => (v === null || v === undefined || v === "" ? null :
        el("span", {class: "kv", "data-field": k}, `${k} `, el("b", {text: String(v)})));
      ctx.append(kv("requirement", c.requirement), kv("trigger", c.trigger), kv("phase", c.phase),
                 kv("trial", c.trial !== null && c.trial !== undefined ? `${c.trial}${c.trials ? " of " + c.trials : ""}` : null),
                 kv("force", typeof c.force_n === "number" ? `${num(c.force_n, 0)} N` : null));
    }
    const prog = $("#progress");
    const fill = $("#progress-fill");
    if (!p) { $("#progress-text").textContent = ""; return; }
    const count = p.count;
    prog.dataset.done = String(p.done);
    prog.dataset.count = count === null ? "" : String(count);
    const frac = ended ? 1 : count ? Math.min(1, p.done / count) : 0;
    fill.style.width = `${(frac * 100).toFixed(1)}%`;
    fill.classList.toggle("done", ended);
    const failed = Object.values(p.outcomes || {}).filter((o) => o !== "passed" && o !== "skipped").length;
    $("#progress-text").textContent = (count === null ? `${p.done} tests done (the run did not record its plan)`
      : `${p.done} of ${count} tests done`) + (failed ? ` · ${failed} did not pass` : "");
    updateTimeLeft(r);
  }

  function updateTimeLeft(r) {
    const p = r.progress;
    const left = $("#time-left"), basis = $("#time-left-basis");
    if (!p) return;
    if (r.end) { left.textContent = `took ${duration((ms(r.end.utc) - ms(p.started_utc)) / 1000)}`; basis.textContent = ""; return; }
    const s = expectedLeft(r);
    const p0 = p.estimate || {};
    const over = s !== null && p.current && p0.current_s !== null && (now() - ms(p.current.started_utc)) / 1000 > p0.current_s;
    left.textContent = s === null ? "time left: not known yet"
      : over ? `this test runs longer than expected; about ${duration(s)} after it` : `about ${duration(s)} left`;
    left.dataset.source = p.estimate ? p.estimate.source : "";
    basis.textContent = p.estimate ? p.estimate.basis : "";
  }

  const seenRows = new Map();
  function renderVerdicts(r) {
    const body = $("#verdicts tbody");
    body.replaceChildren();
    const v = r.verdicts;
    if (v) {
      for (const row of v.rows) {
        const key = `${r.id}/${row.requirement}`;
        const text = `${row.verdict}|${row.worst}`;
        const fresh = seenRows.has(key) && seenRows.get(key) !== text;
        seenRows.set(key, text);
        const flags = [];
        if (row.tur_flags) flags.push(el("span", {class: "flag", text: "TUR<4", title: "test uncertainty ratio below 4"}));
        if (row.not_applicable) flags.push(el("span", {class: "flag", text: `${row.not_applicable} N/A`,
                                                       title: row.not_applicable_reason || ""}));
        body.append(el("tr", {"data-requirement": row.requirement, "data-verdict": row.verdict, class: fresh ? "fresh" : null},
          el("td", {class: "req"}, row.requirement, el("small", {text: row.title})),
          el("td", {text: row.worst, title: row.worst_name || ""}), el("td", {text: row.limit}), el("td", {text: row.u}),
          el("td", {}, el("span", {class: "verdict", "data-verdict": row.verdict, text: row.verdict}), ...flags)));
      }
    }
    const overall = $("#overall");
    overall.replaceChildren();
    if (!v) { overall.dataset.verdict = ""; return; }
    // lines of the record that did not decode: skipped, said, and the run cannot end PASS
    const damage = v.damage ? el("div", {class: "damage", id: "record-damage", text: `${v.damage}: skipped, the run cannot PASS`}) : "";
    if (r.end) {
      overall.dataset.verdict = v.overall;
      overall.append("overall ", el("span", {class: "verdict", "data-verdict": v.overall, text: v.overall}),
                     v.complete ? "" : el("span", {class: "dim", text: " (run incomplete)"}), damage);
    } else {
      overall.dataset.verdict = "RUNNING";
      const c = v.counts || {};
      const parts = ["FAIL", "INCONCLUSIVE", "PASS", "NOT RUN"].filter((k) => c[k]).map((k) => `${c[k]} ${k}`);
      overall.append(el("span", {class: "verdict", "data-verdict": "RUNNING", text: "RUNNING"}),
                     el("span", {class: "dim", text: ` so far: ${parts.join(" · ")}`}), damage);
    }
  }

  function renderEnd(r) {
    const banner = $("#ended-banner");
    const links = $("#report-links");
    links.replaceChildren();
    if (!r.end) { banner.hidden = true; return; }
    // the overall verdict and the exit status `rig run` gives for it (reports/exit_status.py),
    // never pytest's own status: its 0 means the tests completed, whatever their verdicts
    const overall = r.end.overall || (r.verdicts ? r.verdicts.overall : "");
    const status = r.end.exit_status;
    banner.hidden = false;
    banner.dataset.verdict = overall;
    banner.textContent = `run ended at ${clock(r.end.utc)} — ${r.end.complete ? "complete" : "incomplete"}` +
      `${overall ? ", overall " + overall : ""}` +
      `${status !== null && status !== undefined ? " (rig run exit status " + status + ")" : ""}; questions closed`;
    for (const link of r.end.links || []) {
      links.append(el("a", {href: link.href, target: "_blank", rel: "noopener", "data-file": link.file, text: link.name}));
    }
    if (!(r.end.links || []).length) links.append(el("span", {class: "dim", text: "reports: not rendered (yet)"}));
  }

  function renderHeartbeat(r) {
    const box = $("#heartbeat");
    const hb = r.heartbeat;
    box.replaceChildren();
    if (!hb) { box.dataset.health = ""; box.textContent = "no heartbeat figures (yet)"; return; }
    let health = "ok", state = "OK";
    const age = (now() - ms(hb.utc)) / 1000;
    if (r.end || hb.ended) { health = "ended"; state = "ENDED"; }
    else if (!hb.running) { health = "paused"; state = "PAUSED (a watchdog test)"; }
    else if (hb.gap_ratio !== null && hb.gap_ratio >= 1) { health = "bad"; state = "GAP ≥ WATCHDOG PERIOD"; }
    else if (hb.source === "live" && age > 5) { health = "warn"; state = `NO UPDATE FOR ${duration(age)}`; }
    else if (hb.errors || (hb.gap_ratio !== null && hb.gap_ratio >= 0.5)) { health = "warn"; state = hb.errors ? "ERRORS" : "LONG GAP"; }
    box.dataset.health = health;
    const pct = hb.gap_ratio !== null ? ` (${Math.round(hb.gap_ratio * 100)} %)` : "";
    box.append(el("span", {class: "state", text: state}), " ",
               `beats ${hb.beats ?? "?"} · errors ${hb.errors ?? "?"} · largest gap ${num(hb.max_gap_s, 3)} s of the ` +
               `${num(hb.period_s, 3)} s watchdog period${pct}` +
               (hb.last_error ? ` · last error: ${hb.last_error}` : ""));
  }

  // ------------------------------------------------------------ operator questions
  function stepText(step) {
    if (step.answered) {
      const client = step.where === "page" && step.client ? ` (${step.client})` : "";
      return `recorded: ${step.answer} by ${step.operator || "?"} in the ${step.where || "terminal"}${client}` +
             ` at ${clock(step.answered_utc)}`;
    }
    return `not answered: ${step.outcome}${step.waited_s ? ` after ${duration(step.waited_s)}` : ""} — the check fails`;
  }

  function renderOperator(r) {
    const op = r.operator || {open: [], closed: [], refused: [], asks: {}, sent: {}};
    const box = $("#question");
    const result = $("#question-result");
    const ended = !!r.end;
    const q = op.open[0];
    let ask = null, info = null, step = null;
    if (q) { ask = String(q.ask); info = q; }
    else if (op.closed.length) {
      step = op.closed[op.closed.length - 1];
      ask = String(step.ask);
      info = op.asks[ask] || step;
    }
    renderAnswerLog(r, op);
    if (ask === null) { box.hidden = true; box.dataset.ask = ""; box.dataset.step = ""; box.dataset.state = "none"; return; }
    box.hidden = false;
    box.dataset.ask = ask;
    box.dataset.step = info.step || "";
    box.dataset.run = String(r.id);
    box.dataset.state = q && !ended ? "open" : "closed";
    $("#question-step").textContent = `question ${ask} · ${info.step || ""}`;
    $("#question-requirements").textContent = (info.requirements || []).join(", ");
    $("#question-instruction").textContent = info.instruction || "";
    $("#question-test").textContent = info.test || "";
    const choices = (info.choices || []).map(String);
    const sent = op.sent ? op.sent[ask] : null;
    for (const b of document.querySelectorAll("#question-buttons button")) {
      const a = b.dataset.answer;
      b.hidden = a !== "abort" && !choices.includes(a);
      b.disabled = !(q && !ended) || !!sent;
    }
    const mineHere = mine(r.id)[ask];
    let state = "", text = "";
    if (step) { state = step.answered ? "recorded" : "unanswered"; text = stepText(step); }
    else if (ended) { state = "unanswered"; text = "the run ended; questions closed"; }
    if (mineHere) {
      const refusal = (op.refused || []).find((x) => String(x.ask) === ask && mineHere.client && x.client === mineHere.client);
      if (refusal) { state = "refused"; text = (text ? text + " — " : "") + `your answer was refused: ${refusal.why}`; }
      else if (mineHere.state === "refused") { state = "refused"; text = mineHere.text; }
      else if (!step) { state = "sent"; text = mineHere.text; }
    } else if (!step && sent) {
      state = "sent"; text = `${sent.answer} sent by ${sent.operator} from a page of this panel at ${clock(sent.utc)}; ` +
                             "waiting for the run to record it";
    }
    result.dataset.state = state;
    result.textContent = text;
    updateDeadline(r);
  }

  function renderAnswerLog(r, op) {
    const list = $("#answers");
    list.replaceChildren();
    const items = [];
    for (const s of op.closed || []) items.push({utc: s.answered_utc || s.asked_utc, li: el("li",
      {class: s.answered ? "" : "unanswered", "data-ask": s.ask}, `${s.step || "step"} (${(s.requirements || []).join(", ")}): ${stepText(s)}`)});
    for (const x of op.refused || []) items.push({utc: x.utc, li: el("li", {class: "refused", "data-ask": x.ask},
      `refused: ${x.answer || "?"} from ${x.operator || "?"} in the ${x.where || "?"} — ${x.why}`)});
    items.sort((a, b) => (ms(a.utc) || 0) - (ms(b.utc) || 0));
    for (const i of items) list.append(i.li);
    if (!items.length) list.append(el("li", {class: "dim", text: "none yet"}));
  }

  function updateDeadline(r) {
    const box = $("#question");
    const d = $("#question-deadline");
    const q = r && r.operator && !r.end ? r.operator.open.find((x) => String(x.ask) === box.dataset.ask) : null;
    if (!q) { d.textContent = ""; d.classList.remove("urgent"); return; }
    const left = (ms(q.deadline_utc) - now()) / 1000;
    d.textContent = isNaN(left) ? "" : left > 0 ? `${Math.ceil(left)} s left` : "deadline passed — waiting for the run";
    d.classList.toggle("urgent", left < 10);
  }

  async function answer(value) {
    const r = current();
    const box = $("#question");
    if (!r || box.dataset.state !== "open") return;
    const ask = box.dataset.ask;
    const nameBox = $("#operator-name");
    const operator = nameBox.value.trim();
    const result = $("#question-result");
    if (!operator) {
      nameBox.classList.add("missing");
      nameBox.focus();
      result.dataset.state = "refused";
      result.textContent = "Give your name (1 to 80 characters) so the record says who answered.";
      return;
    }
    nameBox.classList.remove("missing");
    try { localStorage.setItem(NAME_KEY, operator); } catch (e) { /* private mode: remembered for this page only */ }
    for (const b of document.querySelectorAll("#question-buttons button")) b.disabled = true;
    let reply, body;
    try {
      reply = await fetch("answer", {method: "POST", headers: {"content-type": "application/json"},
                                      body: JSON.stringify({run: r.id, ask, answer: value, operator})});
      body = await reply.json();
    } catch (e) {
      body = {ok: false, error: `The panel did not answer (${e.message}); nothing is known to have been sent.`};
    }
    mine(r.id)[ask] = body.ok ? {state: "sent", text: body.message, client: body.line.client}
                              : {state: "refused", text: body.error};
    renderOperator(r);
  }

  // ------------------------------------------------------------ start
  function start() {
    const nameBox = $("#operator-name");
    try { nameBox.value = localStorage.getItem(NAME_KEY) || ""; } catch (e) { /* no storage */ }
    nameBox.addEventListener("change", () => {
      try { localStorage.setItem(NAME_KEY, nameBox.value.trim()); } catch (e) { /* no storage */ }
    });
    for (const b of document.querySelectorAll("#question-buttons button")) {
      b.addEventListener("click", () => answer(b.dataset.answer));
    }
    setInterval(() => {
      const r = current();
      if (!r) return;
      updateDeadline(r);
      updateTimeLeft(r);
      const p = r.progress;
      const e = document.getElementById("current-elapsed");
      if (e && p && p.current) {
        e.textContent = `requirements ${(p.current.requirements || []).join(", ") || "—"} · running for ` +
                        duration((now() - ms(p.current.started_utc)) / 1000);
      }
      if (r.heartbeat && !r.end) renderHeartbeat(r);
    }, 500);
    connect();
  }
  start();
})();
