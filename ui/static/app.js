// Vigil's built-in UI: runs PromQL against this node's Prometheus HTTP API and
// shows the result as a table (instant query) or a graph (range query).
// No dependencies; everything comes from the node itself.
'use strict';

(() => {
  const RANGES = ['5m', '15m', '1h', '6h', '12h', '1d', '1w'];
  const POINTS = 250;  // points per series the step aims at, as Prometheus' UI
  const MAX_SUGGESTIONS = 12;
  const MAX_ROWS = 10000;  // more table rows than this only make the page crawl
  const COLORS = ['#2563eb', '#ea580c', '#16a34a', '#dc2626', '#9333ea', '#0891b2',
                  '#ca8a04', '#db2777', '#4b5563', '#65a30d'];
  const UNITS = {s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000};

  const $ = (id) => document.getElementById(id);
  const el = {
    form: $('query-form'), expr: $('expr'), suggest: $('suggest'), range: $('range'),
    rangeControls: $('range-controls'), stepInfo: $('step-info'), stats: $('stats'),
    error: $('error'), tableView: $('table-view'), table: $('results'),
    tbody: document.querySelector('#results tbody'),
    tableEmpty: $('table-empty'), tableNote: $('table-note'), graphView: $('graph-view'), canvas: $('graph'),
    tooltip: $('tooltip'), legend: $('legend'), build: $('build'),
  };
  const state = {
    tab: 'table', range: 3600, metricNames: [],
    seq: 0,             // id of the newest query; older answers are dropped
    graph: null,        // {start, end, step, series: [{metric, name, color, points, off}]}
    layout: null,       // plot geometry of the last drawn graph, for hovering
    suggestions: [], active: -1, word: null,
  };

  // ---- Durations and formatting ----

  function parseDuration(s) {
    const m = /^((\d+)[smhdwy])+$/.test(s || '') ? s.match(/\d+[smhdwy]/g) : null;
    if (!m) return 0;
    return m.reduce((sum, part) => sum + parseInt(part, 10) * UNITS[part.slice(-1)], 0);
  }
  function formatDuration(sec) {
    for (const u of ['y', 'w', 'd', 'h', 'm']) {
      if (sec >= UNITS[u] && sec % UNITS[u] === 0) return sec / UNITS[u] + u;
    }
    return sec + 's';
  }
  // One step gives about POINTS points over the range, and at least one second.
  function stepFor(range) { return Math.max(Math.ceil(range / POINTS), 1); }

  function labelPairs(metric) {
    return Object.keys(metric).filter((k) => k !== '__name__').sort()
        .map((k) => [k, JSON.stringify(metric[k])]);
  }
  function formatLabels(metric) {
    const pairs = labelPairs(metric).map(([k, v]) => `${k}=${v}`);
    const name = metric.__name__ || '';
    return pairs.length || !name ? `${name}{${pairs.join(', ')}}` : name;
  }
  // The same as formatLabels, as DOM nodes with the parts styled.
  function labelsNode(metric) {
    const frag = document.createDocumentFragment();
    const span = (cls, text) => {
      const s = document.createElement('span');
      if (cls) s.className = cls;
      s.textContent = text;
      frag.appendChild(s);
    };
    if (metric.__name__) span('metric-name', metric.__name__);
    const pairs = labelPairs(metric);
    if (!pairs.length && metric.__name__) return frag;
    span('', '{');
    pairs.forEach(([k, v], i) => {
      span('label-name', k);
      span('', '=');
      span('label-value', v);
      if (i < pairs.length - 1) span('', ', ');
    });
    span('', '}');
    return frag;
  }
  function parseValue(v) {
    if (v === '+Inf') return Infinity;
    if (v === '-Inf') return -Infinity;
    return Number(v);  // "NaN" -> NaN
  }
  const pad = (n) => String(n).padStart(2, '0');
  function formatTime(t, withDate, withSeconds) {
    const d = new Date(t * 1000);
    let s = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (withSeconds) s += `:${pad(d.getSeconds())}`;
    if (withDate) s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
    return s;
  }
  function decimals(step) { return Math.min(10, Math.max(0, -Math.floor(Math.log10(step) + 1e-9))); }
  function formatTick(v, step) {
    const abs = Math.abs(v);
    for (const [f, u] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
      if (abs >= f) return (v / f).toFixed(decimals(step / f)) + u;
    }
    return v.toFixed(decimals(step));
  }

  // ---- The API ----

  class ApiError extends Error {
    constructor(kind, message) { super(message); this.kind = kind; }
  }
  // Calls the API; resolves to the success envelope, rejects with an ApiError
  // carrying Prometheus' errorType (or the HTTP status when the body is not JSON).
  async function api(path, params, method = 'GET') {
    const body = new URLSearchParams(params);
    let res;
    try {
      res = method === 'GET' ? await fetch(`${path}?${body}`)
                             : await fetch(path, {method, body});
    } catch (e) {
      throw new ApiError('network', `cannot reach the server: ${e.message}`);
    }
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ApiError(`HTTP ${res.status}`, text.trim() || res.statusText);
    }
    if (json.status !== 'success') {
      throw new ApiError(json.errorType || `HTTP ${res.status}`, json.error || 'unknown error');
    }
    return json;
  }

  // ---- URL <-> state ----

  function readUrl() {
    const p = new URLSearchParams(location.search);
    el.expr.value = p.get('g0.expr') ?? p.get('expr') ?? '';
    const tab = p.get('g0.tab') ?? p.get('tab');
    state.tab = tab === '0' || tab === 'graph' ? 'graph' : 'table';
    state.range = parseDuration(p.get('g0.range_input') ?? p.get('range')) || 3600;
  }
  function writeUrl() {
    const p = new URLSearchParams();
    p.set('g0.expr', el.expr.value.trim());
    p.set('g0.tab', state.tab === 'graph' ? '0' : '1');  // Prometheus: 0 graph, 1 table
    if (state.tab === 'graph') p.set('g0.range_input', formatDuration(state.range));
    const search = `?${p}`;
    if (search !== location.search) history.pushState(null, '', search);
  }

  function syncControls() {
    const name = formatDuration(state.range);
    if (!RANGES.includes(name) && ![...el.range.options].some((o) => o.value === name)) {
      el.range.add(new Option(name, name));
    }
    el.range.value = name;
    el.stepInfo.textContent = `step ${formatDuration(stepFor(state.range))}`;
    for (const b of document.querySelectorAll('.tabs button')) {
      b.setAttribute('aria-selected', String(b.dataset.tab === state.tab));
    }
    el.tableView.hidden = state.tab !== 'table';
    el.graphView.hidden = state.tab !== 'graph';
    el.rangeControls.hidden = state.tab !== 'graph';
    autoGrow();
  }

  // ---- Running a query ----

  function showError(e) {
    el.error.replaceChildren();
    const kind = document.createElement('span');
    kind.className = 'kind';
    kind.textContent = `${e.kind || 'error'}: `;
    el.error.append(kind, e.message);
    el.error.hidden = false;
  }

  async function execute(push = true) {
    if (push) writeUrl();
    const expr = el.expr.value.trim();
    const seq = ++state.seq;
    el.error.hidden = true;
    el.stats.textContent = '';
    if (!expr) {
      renderTable(null);
      renderGraph(null);
      return;
    }
    const started = performance.now();
    try {
      let json;
      if (state.tab === 'table') {
        json = await api('api/v1/query', {query: expr}, 'POST');
        if (seq !== state.seq) return;
        renderTable(json.data);
      } else {
        const end = Date.now() / 1000;
        const start = end - state.range;
        const step = stepFor(state.range);
        json = await api('api/v1/query_range',
                         {query: expr, start: start.toFixed(3), end: end.toFixed(3), step}, 'POST');
        if (seq !== state.seq) return;
        renderGraph({start, end, step, result: json.data.result});
      }
      const n = Array.isArray(json.data.result) && json.data.resultType !== 'scalar' &&
                json.data.resultType !== 'string' ? json.data.result.length : 1;
      el.stats.textContent =
          `Load time: ${Math.round(performance.now() - started)} ms · Result series: ${n}`;
      if (json.warnings && json.warnings.length) {
        showError(new ApiError('warning', json.warnings.join('\n')));
      }
    } catch (e) {
      if (seq !== state.seq) return;
      renderTable(null);
      renderGraph(null);
      showError(e);
    }
  }

  // ---- Table ----

  function renderTable(data) {
    const rows = [];
    if (data) {
      switch (data.resultType) {
        case 'vector':
          for (const s of data.result) rows.push([labelsNode(s.metric), s.value[1]]);
          break;
        case 'matrix':
          for (const s of data.result) {
            rows.push([labelsNode(s.metric), s.values.map(([t, v]) => `${v} @${t}`).join('\n')]);
          }
          break;
        default:  // scalar, string: [time, value]
          rows.push([document.createTextNode(data.resultType), data.result[1]]);
      }
    }
    const total = rows.length;
    rows.length = Math.min(total, MAX_ROWS);
    el.tbody.replaceChildren(...rows.map(([labels, value]) => {
      const tr = document.createElement('tr');
      tr.className = 'series-row';
      const l = tr.insertCell();
      l.className = 'labels';
      l.appendChild(labels);
      const v = tr.insertCell();
      v.className = 'value';
      v.textContent = value;
      return tr;
    }));
    el.tableEmpty.hidden = !data || total > 0;
    el.tableNote.hidden = total <= MAX_ROWS;
    el.tableNote.textContent = `Showing the first ${MAX_ROWS} of ${total} series`;
    el.table.hidden = !data;
  }

  // ---- Graph ----

  function renderGraph(g) {
    state.graph = g && {
      start: g.start, end: g.end, step: g.step,
      series: g.result.map((s, i) => ({
        metric: s.metric, name: formatLabels(s.metric), color: COLORS[i % COLORS.length],
        points: s.values.map(([t, v]) => [t, parseValue(v)]), off: false,
      })),
    };
    el.legend.replaceChildren(...(state.graph ? state.graph.series : []).map((s) => {
      const li = document.createElement('li');
      li.className = 'legend-item';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = s.color;
      const text = document.createElement('span');
      text.appendChild(labelsNode(s.metric));
      li.append(sw, text);
      li.title = 'Click to hide or show';
      li.addEventListener('click', () => {
        s.off = !s.off;
        li.classList.toggle('off', s.off);
        drawGraph();
      });
      return li;
    }));
    el.tooltip.hidden = true;
    drawGraph();
  }

  // Round tick spacing (1, 2 or 5 times a power of ten) for about n ticks.
  function niceTicks(lo, hi, n) {
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const first = Math.floor(lo / step) * step;
    const last = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = first; v <= last + step / 2; v += step) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return {lo: first, hi: last, step, ticks};
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
                      21600, 43200, 86400, 172800, 604800];

  function yRange(series) {
    let lo = Infinity, hi = -Infinity;
    for (const s of series) {
      for (const [, v] of s.points) {
        if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
    }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) {
      const d = Math.abs(lo) * 0.1 || 1;
      return [lo - d, hi + d];
    }
    // Headroom so that lines at the extremes do not run along the frame; a
    // range that starts at zero keeps its zero.
    const margin = (hi - lo) * 0.05;
    return [lo >= 0 && lo - margin < 0 ? 0 : lo - margin, hi + margin];
  }

  function drawGraph(hover) {
    const c = el.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const g = state.graph;
    if (!g || !w) return;
    ctx.font = '11px ui-monospace, "DejaVu Sans Mono", monospace';
    const visible = g.series.filter((s) => !s.off);
    const y = niceTicks(...yRange(visible), Math.max(2, Math.floor(h / 60)));
    const yLabels = y.ticks.map((v) => formatTick(v, y.step));
    const left = Math.ceil(Math.max(...yLabels.map((s) => ctx.measureText(s).width))) + 14;
    const p = {x: left, y: 12, w: w - left - 16, h: h - 12 - 26};
    const px = (t) => p.x + (t - g.start) / (g.end - g.start) * p.w;
    const py = (v) => p.y + p.h - (v - y.lo) / (y.hi - y.lo) * p.h;
    state.layout = {p, px, py, x: (X) => g.start + (X - p.x) / p.w * (g.end - g.start)};

    // Grid and axes.
    ctx.strokeStyle = '#e5e9ee';
    ctx.fillStyle = '#6b7785';
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    y.ticks.forEach((v, i) => {
      const Y = Math.round(py(v)) + 0.5;
      ctx.beginPath(); ctx.moveTo(p.x, Y); ctx.lineTo(p.x + p.w, Y); ctx.stroke();
      ctx.fillText(yLabels[i], p.x - 6, Y);
    });
    const range = g.end - g.start;
    const tstep = TIME_STEPS.find((s) => range / s <= p.w / 90) || TIME_STEPS[TIME_STEPS.length - 1];
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (let t = Math.ceil(g.start / tstep) * tstep; t <= g.end; t += tstep) {
      const X = Math.round(px(t)) + 0.5;
      ctx.beginPath(); ctx.moveTo(X, p.y); ctx.lineTo(X, p.y + p.h); ctx.stroke();
      const label = formatTime(t, range > 86400 && tstep >= 3600, tstep < 60);
      const half = ctx.measureText(label).width / 2;
      // Labels that would run under the y axis' labels or off the canvas are left out.
      if (X - half >= p.x && X + half <= w) ctx.fillText(label, X, p.y + p.h + 6);
    }
    ctx.strokeStyle = '#b8c1cc';
    ctx.strokeRect(p.x + 0.5, p.y + 0.5, p.w, p.h);

    if (!visible.some((s) => s.points.length)) {
      ctx.fillStyle = '#6b7785';
      ctx.textBaseline = 'middle';
      ctx.font = '14px system-ui, sans-serif';
      ctx.fillText('No data points found', p.x + p.w / 2, p.y + p.h / 2);
      return;
    }

    // One line per series, broken where a step has no sample or a value is not finite.
    ctx.save();
    ctx.beginPath();
    ctx.rect(p.x, p.y, p.w, p.h);
    ctx.clip();
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    for (const s of visible) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let prev = null;
      for (const [t, v] of s.points) {
        if (!Number.isFinite(v)) { prev = null; continue; }
        if (prev !== null && t - prev <= g.step * 1.5) ctx.lineTo(px(t), py(v));
        else ctx.moveTo(px(t), py(v));
        prev = t;
      }
      ctx.stroke();
      if (s.points.length === 1) dot(ctx, px(s.points[0][0]), py(s.points[0][1]), s.color, 2.5);
    }
    ctx.restore();

    if (hover) {
      ctx.strokeStyle = '#9aa5b1';
      ctx.setLineDash([3, 3]);
      ctx.beginPath(); ctx.moveTo(hover.X, p.y); ctx.lineTo(hover.X, p.y + p.h); ctx.stroke();
      ctx.setLineDash([]);
      dot(ctx, hover.X, hover.Y, hover.series.color, 4);
    }
  }

  function dot(ctx, x, y, color, r) {
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
  }

  // The visible sample nearest (on screen) to the mouse at (mx, my).
  function nearestPoint(mx, my) {
    const {p, px, py} = state.layout;
    const t = state.layout.x(mx);
    let best = null;
    for (const s of state.graph.series) {
      if (s.off || !s.points.length) continue;
      // Binary search for the first sample at or after t; its predecessor is the other candidate.
      let lo = 0, hi = s.points.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (s.points[mid][0] < t) lo = mid + 1; else hi = mid;
      }
      for (const i of [lo - 1, lo]) {
        const pt = s.points[i];
        if (!pt || !Number.isFinite(pt[1])) continue;
        const X = px(pt[0]), Y = Math.min(Math.max(py(pt[1]), p.y), p.y + p.h);
        const d = (X - mx) ** 2 + (Y - my) ** 2;
        if (!best || d < best.d) best = {d, X, Y, t: pt[0], v: pt[1], series: s};
      }
    }
    return best;
  }

  function onGraphMove(ev) {
    if (!state.graph || !state.layout) return;
    const rect = el.canvas.getBoundingClientRect();
    const mx = ev.clientX - rect.left, my = ev.clientY - rect.top;
    const {p} = state.layout;
    const best = mx >= p.x && mx <= p.x + p.w ? nearestPoint(mx, my) : null;
    drawGraph(best);
    if (!best) { el.tooltip.hidden = true; return; }
    el.tooltip.textContent =
        `${formatTime(best.t, true, true)}\n${best.series.name}\nvalue: ${best.v}`;
    el.tooltip.hidden = false;
    const tw = el.tooltip.offsetWidth, th = el.tooltip.offsetHeight;
    const left = best.X + 12 + tw > rect.width ? best.X - 12 - tw : best.X + 12;
    el.tooltip.style.left = `${Math.max(0, left)}px`;
    el.tooltip.style.top = `${Math.max(0, Math.min(best.Y - th / 2, rect.height - th))}px`;
  }

  // ---- Metric-name autocomplete ----

  // The identifier around the caret, unless the caret is inside {...} or a string,
  // where metric names do not go.
  function wordAtCaret() {
    const text = el.expr.value, pos = el.expr.selectionStart;
    const before = text.slice(0, pos);
    if ((before.replace(/\\./g, '').match(/["'`]/g) || []).length % 2) return null;
    if (before.lastIndexOf('{') > before.lastIndexOf('}')) return null;
    const isId = (ch) => /[A-Za-z0-9_:]/.test(ch);
    let start = pos, end = pos;
    while (start > 0 && isId(text[start - 1])) start--;
    while (end < text.length && isId(text[end])) end++;
    const word = text.slice(start, pos);
    if (!word || /^[0-9]/.test(word)) return null;
    return {start, end, word};
  }

  function updateSuggestions() {
    const w = wordAtCaret();
    state.word = w;
    const q = w ? w.word.toLowerCase() : '';
    const prefix = [], inner = [];
    if (q) {
      for (const n of state.metricNames) {
        const i = n.toLowerCase().indexOf(q);
        if (i === 0) prefix.push(n); else if (i > 0) inner.push(n);
      }
    }
    state.suggestions = prefix.concat(inner).slice(0, MAX_SUGGESTIONS);
    if (state.suggestions.length === 1 && state.suggestions[0] === w.word) state.suggestions = [];
    state.active = state.suggestions.length ? 0 : -1;
    renderSuggestions();
  }

  function renderSuggestions() {
    el.suggest.hidden = !state.suggestions.length;
    el.suggest.replaceChildren(...state.suggestions.map((name, i) => {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      if (i === state.active) li.className = 'active';
      const at = name.toLowerCase().indexOf(state.word.word.toLowerCase());
      const b = document.createElement('b');
      b.textContent = name.substr(at, state.word.word.length);
      li.append(name.slice(0, at), b, name.slice(at + state.word.word.length));
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); accept(i); });
      return li;
    }));
    const active = el.suggest.children[state.active];
    if (active) active.scrollIntoView({block: 'nearest'});
  }

  function accept(i) {
    const name = state.suggestions[i], w = state.word;
    const text = el.expr.value;
    el.expr.value = text.slice(0, w.start) + name + text.slice(w.end);
    const caret = w.start + name.length;
    el.expr.setSelectionRange(caret, caret);
    closeSuggestions();
    autoGrow();
  }
  function closeSuggestions() {
    state.suggestions = [];
    state.active = -1;
    el.suggest.hidden = true;
  }

  function onKeyDown(ev) {
    const open = state.suggestions.length > 0;
    if (open && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
      const n = state.suggestions.length;
      state.active = (state.active + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
      renderSuggestions();
      ev.preventDefault();
    } else if (open && (ev.key === 'Tab' || (ev.key === 'Enter' && !ev.shiftKey))) {
      accept(state.active);
      ev.preventDefault();
    } else if (open && ev.key === 'Escape') {
      closeSuggestions();
      ev.preventDefault();
    } else if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      execute();
    }
  }

  function autoGrow() {
    el.expr.style.height = 'auto';
    el.expr.style.height = `${el.expr.scrollHeight + 2}px`;
  }

  // ---- Wiring ----

  function init() {
    for (const r of RANGES) el.range.add(new Option(r, r));
    readUrl();
    syncControls();

    el.form.addEventListener('submit', (ev) => { ev.preventDefault(); execute(); });
    el.expr.addEventListener('input', () => { autoGrow(); updateSuggestions(); });
    el.expr.addEventListener('keydown', onKeyDown);
    el.expr.addEventListener('blur', closeSuggestions);
    for (const b of document.querySelectorAll('.tabs button')) {
      b.addEventListener('click', () => {
        if (state.tab === b.dataset.tab) return;
        state.tab = b.dataset.tab;
        syncControls();
        execute();
      });
    }
    el.range.addEventListener('change', () => {
      state.range = parseDuration(el.range.value);
      syncControls();
      execute();
    });
    window.addEventListener('popstate', () => { readUrl(); syncControls(); execute(false); });
    window.addEventListener('resize', () => { if (state.tab === 'graph') drawGraph(); });
    el.canvas.addEventListener('mousemove', onGraphMove);
    el.canvas.addEventListener('mouseleave', () => { el.tooltip.hidden = true; drawGraph(); });

    api('api/v1/label/__name__/values', {})
        .then((json) => { state.metricNames = json.data; })
        .catch(() => {});  // autocomplete is a convenience; queries still work
    api('api/v1/status/buildinfo', {})
        .then((json) => { el.build.textContent = `vigild ${json.data.version}`; })
        .catch(() => {});
    if (el.expr.value.trim()) execute(false);
    else el.expr.focus();
  }

  init();
})();
