// Backtest result widgets: price/equity/drawdown charts with trade markers and a "why here?" bar trace, an
// equity comparison of several runs, and a live run-status poller. Plain script, no build step; same origin, so
// the Content-Security-Policy allows it. It loads the vendored TradingView lightweight-charts bundle on first use
// unless window.LightweightCharts is already defined (the offline HTML report inlines both scripts and the data).
//
// DOM contract (everything optional unless marked required):
//   [data-backtest-chart]   data-src="<url>" (JSON, same origin) or data-inline="<id of a
//                           <script type=application/json>>" (required: one of the two);
//                           data-trace-url="<url>" (GET <url>?time=<ms> on a click on the price chart);
//                           data-trace-target="<id>" (element the trace is written into).
//                           Children [data-part=price|equity|drawdown] are used if present, else created.
//     [data-trace-time=<ms>] anywhere on the page (e.g. buttons in a trades table): loads the trace for that
//                           time into the target of the chart named by data-trace-for="<chart element id>", or
//                           of the first [data-backtest-chart][data-trace-url] on the page.
//   [data-compare-chart]    data-src or data-inline: {runs: [{id, label, time: [ms], equity: [...]}]}.
//                           Children [data-part=chart] and [data-part=legend] are used if present, else created.
//   [data-run-status]       data-src="<url>" (required): polled every second while queued/running; updates
//                           <progress data-run-progress> and [data-run-status-text] inside it and reloads the
//                           page once when the run has finished. data-state holds the run's status
//                           (queued | running | done | failed | cancelled; may be rendered by the page),
//                           data-poll the widget's: polling | retrying | stopped | finished.
// Chart widgets get data-state = loading | ready | error (and data-markers / data-runs: how many were drawn).
// window.vortexBacktest.mountAll() draws whatever is new or whose data source changed; it runs on load too.
(function () {
  'use strict';
  var LIB = '/vendor/lightweight-charts-5.2.1.standalone.production.js';
  var PALETTE = ['#4f8cff', '#f0883e', '#3fb950', '#db61a2', '#d29922', '#a371f7', '#39c5cf', '#f85149',
    '#8b949e', '#7ee787'];
  var HEIGHTS = { price: 320, equity: 200, drawdown: 120, chart: 320 };
  var POLL_MS = 1000, MAX_BACKOFF_MS = 10000;
  var libLoading = null;
  var themed = []; // elements with a _vbRestyle function, redrawn in the new colours on a theme change

  // ---------------------------------------------------------------------------------------------- helpers

  function loadLib() {
    if (window.LightweightCharts) return Promise.resolve();
    if (!libLoading) {
      libLoading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = LIB;
        s.onload = function () {
          if (window.LightweightCharts) resolve();
          else { libLoading = null; reject(new Error('the chart library did not initialise')); }
        };
        s.onerror = function () { libLoading = null; reject(new Error('the chart library failed to load')); };
        document.head.appendChild(s);
      });
    }
    return libLoading;
  }

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  // Whether the page background is dark (for the fallback colours of a page without the Vortex stylesheet,
  // e.g. an offline report): the first non-transparent background of body or html; none means white.
  function pageIsDark() {
    var nodes = [document.body, document.documentElement];
    for (var i = 0; i < nodes.length; i++) {
      if (!nodes[i]) continue;
      var m = /rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+%?))?/.exec(getComputedStyle(nodes[i]).backgroundColor);
      if (!m) continue;
      var a = m[4] === undefined ? 1 : parseFloat(m[4]) / (/%$/.test(m[4]) ? 100 : 1);
      if (a === 0) continue;
      return (0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3]) / 255 < 0.5;
    }
    return false;
  }

  function colours() {
    var dark = pageIsDark();
    return {
      text: cssVar('--muted', dark ? '#8b949e' : '#59636e'), grid: cssVar('--border', dark ? '#30363d' : '#d0d7de'),
      up: cssVar('--ok', dark ? '#3fb950' : '#1a7f37'), down: cssVar('--down', dark ? '#f85149' : '#cf222e'),
      accent: cssVar('--accent', dark ? '#4f8cff' : '#0b5fd9'),
    };
  }

  // '#rgb' / '#rrggbb' / 'rgb(r, g, b)' with an alpha channel; anything else is returned unchanged.
  function withAlpha(color, alpha) {
    var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(color);
    if (m) {
      var h = m[1];
      if (h.length === 3) h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
      return 'rgba(' + parseInt(h.slice(0, 2), 16) + ', ' + parseInt(h.slice(2, 4), 16) + ', ' +
        parseInt(h.slice(4, 6), 16) + ', ' + alpha + ')';
    }
    m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/i.exec(color);
    if (m) return 'rgba(' + m[1] + ', ' + m[2] + ', ' + m[3] + ', ' + alpha + ')';
    return color;
  }

  function baseOptions(c) {
    return {
      autoSize: true,
      layout: { background: { color: 'transparent' }, textColor: c.text },
      grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
      rightPriceScale: { borderColor: c.grid },
      // Up to 5,000 candles or equity points must fit the width when the whole run is shown.
      timeScale: { borderColor: c.grid, timeVisible: true, secondsVisible: false, minBarSpacing: 0.05 },
    };
  }

  function themeOptions(c) {
    return {
      layout: { textColor: c.text },
      grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
      rightPriceScale: { borderColor: c.grid },
      timeScale: { borderColor: c.grid },
    };
  }

  function onThemeChange() {
    themed = themed.filter(function (el) {
      if (!el.isConnected) return false;
      if (el._vbRestyle) {
        try { el._vbRestyle(colours()); } catch (e) { /* a redraw in new colours is a nicety */ }
      }
      return true;
    });
  }

  function watchTheme(el) {
    if (themed.indexOf(el) < 0) themed.push(el);
  }

  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function showError(el, text) {
    var old = el.querySelectorAll('.chart-error');
    for (var i = 0; i < old.length; i++) old[i].parentNode.removeChild(old[i]);
    var p = node('p', 'chart-error', text);
    p.setAttribute('role', 'alert');
    p.style.color = 'var(--down, #f85149)';
    el.insertBefore(p, el.firstChild);
  }

  // GET a JSON document from our own origin. Non-2xx answers become errors carrying the API's message
  // ({"error": code, "message": text}) when there is one.
  async function fetchJson(url, noStore) {
    var resp = await fetch(url, {
      credentials: 'same-origin', headers: { accept: 'application/json' }, cache: noStore ? 'no-store' : 'default',
    });
    var body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) {
      var err = new Error(body && typeof body.message === 'string' && body.message ? body.message :
        'the server answered HTTP ' + resp.status);
      err.status = resp.status;
      throw err;
    }
    if (body === null || typeof body !== 'object') throw new Error('the server did not answer with JSON');
    return body;
  }

  function sourceKey(el) {
    var inline = el.getAttribute('data-inline');
    if (inline) return '#' + inline;
    return el.getAttribute('data-src') || '';
  }

  function readData(el) {
    var inline = el.getAttribute('data-inline');
    if (inline) {
      var holder = document.getElementById(inline);
      if (!holder) return Promise.reject(new Error('the embedded data (#' + inline + ') is missing'));
      try {
        return Promise.resolve(JSON.parse(holder.textContent));
      } catch (e) {
        return Promise.reject(new Error('the embedded data is not valid JSON'));
      }
    }
    return fetchJson(el.getAttribute('data-src'));
  }

  // The existing child [data-part=name] or a new one at the end of el; given a height unless CSS gave it one.
  function part(el, name, tag) {
    var p = el.querySelector('[data-part="' + name + '"]');
    if (!p) {
      p = document.createElement(tag || 'div');
      p.setAttribute('data-part', name);
      p.className = 'chart-part chart-part-' + name;
      el.appendChild(p);
    }
    if (HEIGHTS[name] && p.clientHeight < 40 && !p.style.height) p.style.height = HEIGHTS[name] + 'px';
    if (HEIGHTS[name]) p.style.width = p.style.width || '100%';
    return p;
  }

  function sec(ms) { return Math.floor(ms / 1000); }

  function fmtTime(ms) {
    var d = new Date(Number(ms));
    if (isNaN(d.getTime())) return String(ms);
    var iso = d.toISOString();
    return iso.slice(0, 10) + ' ' + iso.slice(11, 16) + ' UTC';
  }

  function fmtNum(v) {
    if (typeof v !== 'number' || !isFinite(v)) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && a < 1e-4) return v.toPrecision(6);
    return String(Number(v.toFixed(a >= 1000 ? 2 : a >= 1 ? 4 : 8)));
  }

  function precisionFor(lows) {
    var min = Infinity;
    for (var i = 0; i < lows.length; i++) if (lows[i] > 0 && lows[i] < min) min = lows[i];
    if (!isFinite(min)) return 2;
    return Math.max(2, Math.min(10, Math.ceil(-Math.log10(min)) + 4));
  }

  // Points sorted by time with one point per second (the chart library needs strictly ascending times).
  function ascending(points) {
    var sorted = true;
    for (var i = 1; i < points.length; i++) if (points[i].t < points[i - 1].t) { sorted = false; break; }
    if (!sorted) points.sort(function (a, b) { return a.t - b.t; });
    var out = [];
    for (var j = 0; j < points.length; j++) {
      if (out.length && sec(out[out.length - 1].t) === sec(points[j].t)) out[out.length - 1] = points[j];
      else out.push(points[j]);
    }
    return out;
  }

  function finite(v) { return typeof v === 'number' && isFinite(v); }

  // Index of the greatest grid time <= t, or -1.
  function snap(grid, t) {
    var lo = 0, hi = grid.length - 1, best = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (grid[mid] <= t) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    return best;
  }

  // ------------------------------------------------------------------------------------ backtest chart

  function prepare(data) {
    var c = data.candles || {};
    var candles = [];
    var ct = c.time || [];
    for (var i = 0; i < ct.length; i++) {
      var bar = { t: Number(ct[i]), o: Number(c.open[i]), h: Number(c.high[i]), l: Number(c.low[i]), c: Number(c.close[i]) };
      if (finite(bar.t) && finite(bar.o) && finite(bar.h) && finite(bar.l) && finite(bar.c)) candles.push(bar);
    }
    candles = ascending(candles);
    var e = data.equity || {};
    var eq = [];
    var et = e.time || [];
    for (var k = 0; k < et.length; k++) {
      var pt = { t: Number(et[k]), v: Number((e.equity || [])[k]) };
      if (finite(pt.t) && finite(pt.v)) eq.push(pt);
    }
    eq = ascending(eq);

    // One time grid for all three charts (the candles', or the equity's when there are no candles) so their
    // bars line up and the visible ranges and crosshairs can be synchronised by index. Equity finer than the
    // candles is reduced to the last value per candle; the drawdown keeps the deepest value per candle.
    var grid = candles.length ? candles.map(function (b) { return b.t; }) : eq.map(function (p) { return p.t; });
    var eqAt = new Array(grid.length), ddLow = new Array(grid.length), ddEnd = new Array(grid.length);
    var peak = -Infinity, idx = 0;
    for (var m = 0; m < eq.length; m++) {
      var p = eq[m];
      if (p.v > peak) peak = p.v;
      var dd = peak > 0 ? (p.v / peak - 1) * 100 : 0;
      while (idx + 1 < grid.length && grid[idx + 1] <= p.t) idx++;
      eqAt[idx] = p.v;
      ddEnd[idx] = dd;
      ddLow[idx] = ddLow[idx] === undefined ? dd : Math.min(ddLow[idx], dd);
    }
    var equity = [], drawdown = [], lastEq, lastDd;
    for (var g = 0; g < grid.length; g++) {
      var time = sec(grid[g]);
      if (eqAt[g] !== undefined) { lastEq = eqAt[g]; lastDd = ddEnd[g]; }
      if (lastEq === undefined) { equity.push({ time: time }); drawdown.push({ time: time }); continue; }
      equity.push({ time: time, value: lastEq });
      drawdown.push({ time: time, value: ddLow[g] !== undefined ? ddLow[g] : lastDd });
    }
    return { candles: candles, grid: grid, equity: equity, drawdown: drawdown };
  }

  function markersFor(trades, grid, c) {
    var out = [];
    (trades || []).forEach(function (tr) {
      if (!tr) return;
      var seq = tr.seq !== undefined && tr.seq !== null ? String(tr.seq) : '?';
      var i = finite(Number(tr.entry_time)) && tr.entry_time !== null ? snap(grid, Number(tr.entry_time)) : -1;
      if (i >= 0) {
        out.push({ time: sec(grid[i]), position: 'belowBar', color: c.up, shape: 'arrowUp', text: 'B#' + seq, _t: grid[i], _k: 0 });
      }
      var j = finite(Number(tr.exit_time)) && tr.exit_time !== null ? snap(grid, Number(tr.exit_time)) : -1;
      if (j >= 0) {
        var result = finite(tr.pnl) ? tr.pnl : finite(tr.return_pct) ? tr.return_pct : 0;
        out.push({ time: sec(grid[j]), position: 'aboveBar', color: result < 0 ? c.down : c.up, shape: 'arrowDown', text: 'S#' + seq, _t: grid[j], _k: 1 });
      }
    });
    out.sort(function (a, b) { return a._t - b._t || a._k - b._k; });
    return out.map(function (m) { return { time: m.time, position: m.position, color: m.color, shape: m.shape, text: m.text }; });
  }

  // Keeps the charts' visible logical ranges, crosshairs and price-scale widths in step (same time grid).
  function synchronise(views) {
    var busy = false;
    function alignWidths() {
      var w = 0;
      views.forEach(function (v) { w = Math.max(w, v.chart.priceScale('right').width()); });
      views.forEach(function (v) {
        if (w > (v.minWidth || 0)) { v.minWidth = w; v.chart.applyOptions({ rightPriceScale: { minimumWidth: w } }); }
      });
    }
    views.forEach(function (v) {
      v.chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
        if (busy || !range) return;
        busy = true;
        try {
          views.forEach(function (o) { if (o !== v) o.chart.timeScale().setVisibleLogicalRange(range); });
          alignWidths();
        } finally { busy = false; }
      });
      v.chart.subscribeCrosshairMove(function (param) {
        if (!param.sourceEvent) return; // moved by us, not by the pointer
        views.forEach(function (o) {
          if (o === v) return;
          var value = param.time !== undefined && o.valueAt ? o.valueAt[param.time] : undefined;
          if (value === undefined || value === null) o.chart.clearCrosshairPosition();
          else o.chart.setCrosshairPosition(value, param.time, o.series);
        });
      });
    });
    alignWidths();
    if (window.requestAnimationFrame) requestAnimationFrame(alignWidths);
  }

  function valueIndex(points, key) {
    var map = {};
    points.forEach(function (p) { if (p[key] !== undefined) map[p.time] = p[key]; });
    return map;
  }

  function destroyCharts(el) {
    if (el._vb && el._vb.charts) el._vb.charts.forEach(function (ch) { try { ch.remove(); } catch (e) { /* gone */ } });
    el._vb = null;
    el._vbRestyle = null;
    var old = el.querySelectorAll(':scope > .chart-error');
    for (var i = 0; i < old.length; i++) el.removeChild(old[i]);
  }

  async function mountBacktest(el) {
    var key = sourceKey(el);
    if (!key || (el.dataset.mounted === key && el._vb)) return;
    el.dataset.mounted = key;
    el.dataset.state = 'loading';
    var data = (await Promise.all([readData(el), loadLib()]))[0];
    if (el.dataset.mounted !== key) return; // a newer data source was set meanwhile
    destroyCharts(el);
    var LC = window.LightweightCharts;
    var c = colours();
    var d = prepare(data);
    if (!d.grid.length) throw new Error('there is no data to draw');

    var pricePart = part(el, 'price'), equityPart = part(el, 'equity'), ddPart = part(el, 'drawdown');
    equityPart.style.marginTop = equityPart.style.marginTop || '4px';
    ddPart.style.marginTop = ddPart.style.marginTop || '4px';
    var views = [], charts = [];

    var price = null, candleSeries = null;
    if (d.candles.length) {
      pricePart.hidden = false;
      price = LC.createChart(pricePart, baseOptions(c));
      price.applyOptions({ timeScale: { visible: false } });
      var precision = precisionFor(d.candles.map(function (b) { return b.l; }));
      candleSeries = price.addSeries(LC.CandlestickSeries, {
        upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down, borderVisible: false,
        priceFormat: { type: 'price', precision: precision, minMove: Math.pow(10, -precision) },
      });
      var bars = d.candles.map(function (b) { return { time: sec(b.t), open: b.o, high: b.h, low: b.l, close: b.c }; });
      candleSeries.setData(bars);
      views.push({ chart: price, series: candleSeries, valueAt: valueIndex(bars, 'close') });
      charts.push(price);
    } else {
      pricePart.hidden = true;
    }

    // One TradingView attribution per widget is enough (on the top chart).
    var equity = LC.createChart(equityPart, baseOptions(c));
    equity.applyOptions({ timeScale: { visible: false }, layout: { attributionLogo: !price } });
    var equitySeries = equity.addSeries(LC.LineSeries, {
      color: c.accent, lineWidth: 2, title: 'Equity', priceLineVisible: false,
      priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
    });
    equitySeries.setData(d.equity);
    var cashLine = null;
    if (finite(data.initial_cash)) {
      cashLine = equitySeries.createPriceLine({
        price: data.initial_cash, color: c.text, lineWidth: 1, lineStyle: LC.LineStyle.Dashed,
        axisLabelVisible: false, title: 'initial cash',
      });
    }
    views.push({ chart: equity, series: equitySeries, valueAt: valueIndex(d.equity, 'value') });
    charts.push(equity);

    var dd = LC.createChart(ddPart, baseOptions(c));
    dd.applyOptions({ layout: { attributionLogo: false } });
    var ddSeries = dd.addSeries(LC.AreaSeries, {
      lineColor: c.down, topColor: withAlpha(c.down, 0.3), bottomColor: withAlpha(c.down, 0.3), lineWidth: 1,
      invertFilledArea: true, title: 'Drawdown', priceLineVisible: false,
      priceFormat: { type: 'custom', minMove: 0.01, formatter: function (v) { return v.toFixed(2) + ' %'; } },
    });
    ddSeries.priceScale().applyOptions({ scaleMargins: { top: 0.02, bottom: 0.05 } });
    ddSeries.setData(d.drawdown);
    views.push({ chart: dd, series: ddSeries, valueAt: valueIndex(d.drawdown, 'value') });
    charts.push(dd);

    // Trade markers on the candles (or on the equity line when there are no candles).
    var markerSeries = candleSeries || equitySeries;
    var markers = markersFor(data.trades, d.grid, c);
    var markerApi = LC.createSeriesMarkers(markerSeries, markers);

    charts.forEach(function (ch) { ch.timeScale().fitContent(); });
    synchronise(views);

    var primary = price || equity;
    el._vb = { charts: charts, primary: primary, grid: d.grid, markers: markerApi, series: markerSeries };
    el._vbRestyle = function (nc) {
      charts.forEach(function (ch) { ch.applyOptions(themeOptions(nc)); });
      if (candleSeries) {
        candleSeries.applyOptions({ upColor: nc.up, downColor: nc.down, wickUpColor: nc.up, wickDownColor: nc.down });
      }
      equitySeries.applyOptions({ color: nc.accent });
      if (cashLine) cashLine.applyOptions({ color: nc.text });
      ddSeries.applyOptions({ lineColor: nc.down, topColor: withAlpha(nc.down, 0.3), bottomColor: withAlpha(nc.down, 0.3) });
      markerApi.setMarkers(markersFor(data.trades, d.grid, nc));
    };
    watchTheme(el);

    if (el.getAttribute('data-trace-url')) {
      primary.subscribeClick(function (param) {
        if (param.time === undefined || param.time === null || typeof param.time !== 'number') return;
        showTrace(el, param.time * 1000, false);
      });
      pricePart.style.cursor = 'crosshair';
      // The target is the trace's own panel: whatever it holds before the first trace (e.g. the page's note
      // for browsers without JavaScript) gives way to the hint.
      var target = traceTarget(el);
      if (target && !el._traceShown) {
        clear(target);
        target.appendChild(node('p', 'muted trace-hint',
          'Click a candle to see why the strategy did or did not trade there.'));
      }
    }
    el.dataset.state = 'ready';
    el.dataset.markers = String(markers.length);
  }

  // ------------------------------------------------------------------------------------- bar trace

  function traceTarget(el) {
    var id = el.getAttribute('data-trace-target');
    return id ? document.getElementById(id) : null;
  }

  function traceUrl(base, ms) {
    return base + (base.indexOf('?') >= 0 ? '&' : '?') + 'time=' + encodeURIComponent(String(Math.round(ms)));
  }

  // Scrolls the charts so that the bar at time ms is visible.
  function reveal(el, ms) {
    var vb = el._vb;
    if (!vb) return;
    var i = snap(vb.grid, ms);
    if (i < 0) return;
    var ts = vb.primary.timeScale();
    var r = ts.getVisibleLogicalRange();
    if (r && i >= r.from && i <= r.to) return;
    var half = r ? (r.to - r.from) / 2 : 50;
    ts.setVisibleLogicalRange({ from: i - half, to: i + half });
  }

  function showTrace(el, ms, scroll) {
    var target = traceTarget(el);
    var base = el.getAttribute('data-trace-url');
    if (!target || !base) return;
    var seq = (el._traceSeq || 0) + 1;
    el._traceSeq = seq;
    el._traceShown = true;
    clear(target);
    target.setAttribute('aria-busy', 'true');
    if (!target.hasAttribute('aria-live')) target.setAttribute('aria-live', 'polite');
    target.appendChild(node('p', 'muted', 'Loading the trace for ' + fmtTime(ms) + '…'));
    if (scroll && target.scrollIntoView) target.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    fetchJson(traceUrl(base, ms), true).then(function (data) {
      if (el._traceSeq !== seq) return;
      renderTrace(target, data, ms);
    }, function (e) {
      if (el._traceSeq !== seq) return;
      clear(target);
      var p = node('p', 'chart-error', e.message);
      p.setAttribute('role', 'alert');
      p.style.color = 'var(--down, #f85149)';
      target.appendChild(p);
    }).then(function () {
      if (el._traceSeq === seq) target.removeAttribute('aria-busy');
    });
  }

  function ruleList(title, rules) {
    var frag = document.createDocumentFragment();
    frag.appendChild(node('h4', 'trace-subhead', title));
    if (!rules || !rules.length) {
      frag.appendChild(node('p', 'muted', 'none'));
      return frag;
    }
    var ul = node('ul', 'trace-rules');
    rules.forEach(function (r) {
      var text = Array.isArray(r) ? r[0] : r && (r.rule || r.text);
      var ok = Array.isArray(r) ? r[1] : r && r.value;
      var li = node('li', ok === true ? 'rule-true' : ok === false ? 'rule-false' : 'rule-unknown');
      var mark = node('span', 'rule-mark', ok === true ? '✓ true' : ok === false ? '✗ false' : '– n/a');
      mark.style.color = ok === true ? 'var(--ok, #3fb950)' : ok === false ? 'var(--down, #f85149)' : 'var(--muted, #8b949e)';
      mark.style.fontWeight = '600';
      li.appendChild(mark);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(node('code', null, String(text)));
      ul.appendChild(li);
    });
    frag.appendChild(ul);
    return frag;
  }

  function renderTrace(target, data, ms) {
    clear(target);
    var bars = Array.isArray(data.bars) ? data.bars : [];
    if (!bars.length) target.appendChild(node('p', 'muted', 'No bar of the run at ' + fmtTime(ms) + '.'));
    bars.forEach(function (bar) {
      var box = node('section', 'trace-bar');
      box.appendChild(node('h3', 'trace-head', fmtTime(bar.time) +
        (bar.index !== undefined && bar.index !== null ? ' · bar ' + bar.index : '')));
      box.appendChild(node('p', 'trace-ohlc num', 'O ' + fmtNum(bar.open) + '  H ' + fmtNum(bar.high) + '  L ' +
        fmtNum(bar.low) + '  C ' + fmtNum(bar.close)));
      box.appendChild(node('p', 'trace-position', 'in position: ' + (bar.in_position ? 'yes' : 'no')));
      box.appendChild(ruleList('Entry rules', bar.entry_rules));
      box.appendChild(ruleList('Exit rules', bar.exit_rules));
      var values = Array.isArray(bar.values) ? bar.values : [];
      if (values.length) {
        box.appendChild(node('h4', 'trace-subhead', 'Values'));
        var table = node('table', 'trace-values');
        var tbody = node('tbody');
        values.forEach(function (pair) {
          var tr = node('tr');
          var v = Array.isArray(pair) ? pair[1] : null;
          tr.appendChild(node('th', null, String(Array.isArray(pair) ? pair[0] : pair)));
          tr.lastChild.setAttribute('scope', 'row');
          tr.appendChild(node('td', 'num', v === null || v === undefined ? 'n/a (warming up)' :
            typeof v === 'number' ? fmtNum(v) : String(v)));
          tbody.appendChild(tr);
        });
        table.appendChild(tbody);
        box.appendChild(table);
      }
      box.appendChild(node('h4', 'trace-subhead', 'Actions'));
      var actions = Array.isArray(bar.actions) ? bar.actions : [];
      if (actions.length) {
        var ul = node('ul', 'trace-actions');
        actions.forEach(function (a) { ul.appendChild(node('li', null, String(a))); });
        box.appendChild(ul);
      } else {
        box.appendChild(node('p', 'muted', 'no action on this bar'));
      }
      target.appendChild(box);
    });
    if (data.note) target.appendChild(node('p', 'muted trace-note', String(data.note)));
  }

  function onTraceTimeClick(ev) {
    var btn = ev.target && ev.target.closest ? ev.target.closest('[data-trace-time]') : null;
    if (!btn) return;
    var ms = Number(btn.getAttribute('data-trace-time'));
    if (!isFinite(ms)) return;
    var forId = btn.getAttribute('data-trace-for');
    var el = forId ? document.getElementById(forId) : document.querySelector('[data-backtest-chart][data-trace-url]');
    if (!el || !el.getAttribute('data-trace-url') || !traceTarget(el)) return;
    ev.preventDefault();
    reveal(el, ms);
    showTrace(el, ms, true);
  }

  // ----------------------------------------------------------------------------------- compare chart

  async function mountCompare(el) {
    var key = sourceKey(el);
    if (!key || (el.dataset.mounted === key && el._vb)) return;
    el.dataset.mounted = key;
    el.dataset.state = 'loading';
    var data = (await Promise.all([readData(el), loadLib()]))[0];
    if (el.dataset.mounted !== key) return;
    destroyCharts(el);
    var LC = window.LightweightCharts;
    var c = colours();
    var chartPart = part(el, 'chart');
    var legend = part(el, 'legend', 'ul');
    clear(legend);
    legend.style.listStyle = 'none';
    legend.style.padding = '0';
    legend.style.margin = '.5rem 0 0';
    legend.style.display = 'flex';
    legend.style.flexWrap = 'wrap';
    legend.style.gap = '.25rem 1rem';
    var runs = Array.isArray(data.runs) ? data.runs : [];
    if (!runs.length) throw new Error('there are no runs to compare');
    var chart = LC.createChart(chartPart, baseOptions(c));
    var pct = { type: 'custom', minMove: 0.01, formatter: function (v) { return (v > 0 ? '+' : '') + v.toFixed(2) + ' %'; } };
    var zeroLine = null, drawn = 0;
    runs.forEach(function (run, i) {
      var colour = PALETTE[i % PALETTE.length];
      var pts = [];
      var t = run.time || [], e = run.equity || [];
      for (var k = 0; k < t.length; k++) {
        var p = { t: Number(t[k]), v: Number(e[k]) };
        if (finite(p.t) && finite(p.v)) pts.push(p);
      }
      pts = ascending(pts);
      var base = null;
      for (var b = 0; b < pts.length; b++) if (pts[b].v !== 0) { base = pts[b].v; break; }
      var series = null;
      if (base !== null) {
        series = chart.addSeries(LC.LineSeries, {
          color: colour, lineWidth: 2, priceLineVisible: false, priceFormat: pct,
        });
        series.setData(pts.map(function (p) { return { time: sec(p.t), value: (p.v / base - 1) * 100 }; }));
        if (!zeroLine) {
          zeroLine = series.createPriceLine({
            price: 0, color: c.text, lineWidth: 1, lineStyle: LC.LineStyle.Dashed, axisLabelVisible: false, title: '',
          });
        }
        drawn++;
      }
      var li = node('li', 'legend-item');
      var btn = node('button', 'legend-toggle');
      btn.type = 'button';
      btn.setAttribute('aria-pressed', series ? 'true' : 'false');
      btn.disabled = !series;
      btn.title = series ? 'Show or hide this run' : 'No equity data';
      btn.style.cssText = 'background:none;border:0;padding:0;font:inherit;color:inherit;cursor:pointer;' +
        'display:inline-flex;align-items:center;gap:.4rem';
      var sw = node('span', 'legend-swatch');
      sw.setAttribute('aria-hidden', 'true');
      sw.style.cssText = 'display:inline-block;width:.9em;height:.9em;border-radius:2px';
      sw.style.background = colour;
      btn.appendChild(sw);
      btn.appendChild(node('span', 'legend-label', String(run.label || run.id || 'run ' + (i + 1)) + (series ? '' : ' (no data)')));
      if (series) {
        btn.addEventListener('click', function () {
          var on = btn.getAttribute('aria-pressed') !== 'true';
          btn.setAttribute('aria-pressed', on ? 'true' : 'false');
          btn.style.opacity = on ? '' : '0.45';
          btn.style.textDecoration = on ? '' : 'line-through';
          series.applyOptions({ visible: on });
        });
      }
      li.appendChild(btn);
      if (run.id) li.setAttribute('data-run-id', String(run.id));
      legend.appendChild(li);
    });
    chart.timeScale().fitContent();
    el._vb = { charts: [chart] };
    el._vbRestyle = function (nc) {
      chart.applyOptions(themeOptions(nc));
      if (zeroLine) zeroLine.applyOptions({ color: nc.text });
    };
    watchTheme(el);
    el.dataset.state = 'ready';
    el.dataset.runs = String(drawn);
  }

  // -------------------------------------------------------------------------------------- run status

  function mountStatus(el) {
    var src = el.getAttribute('data-src');
    if (!src || el._vbStatusSrc === src) return;
    el._vbStatusSrc = src;
    var gen = (el._vbStatusGen || 0) + 1;
    el._vbStatusGen = gen;
    var delay = 0;
    // The page may render the run's status into data-state (or data-status); the widget keeps data-state
    // up to date with the run's status and reports its own state in data-poll.
    var sawActive = /^(queued|running)$/.test(el.getAttribute('data-state') || el.getAttribute('data-status') || '');
    var bar = el.querySelector('progress[data-run-progress]');
    var text = el.querySelector('[data-run-status-text]');
    if (bar && !bar.hasAttribute('max')) bar.max = 100;
    el.dataset.poll = 'polling';

    function alive() { return el.isConnected && el._vbStatusGen === gen; }
    function say(s) { if (text) text.textContent = s; }
    function later(ms) { setTimeout(tick, ms); }

    function apply(st) {
      var status = String(st.status || '');
      var p = finite(st.progress) ? Math.max(0, Math.min(1, st.progress)) : null;
      var pctText = p === null ? '' : Math.round(p * 100) + ' %';
      if (bar && p !== null) bar.value = Math.round(p * 1000) / 10;
      if (status) el.dataset.state = status;
      var msg = st.message ? String(st.message) : '';
      if (status === 'running') say('running' + (pctText ? ' · ' + pctText : '') + (msg ? ' · ' + msg : ''));
      else if (status === 'queued') say('queued' + (msg ? ' · ' + msg : ''));
      else if (status === 'failed') say('failed' + (st.error ? ': ' + st.error : msg ? ': ' + msg : ''));
      else say(status + (msg ? ' · ' + msg : ''));
    }

    // Reloads once per data source (remembered across the reload when sessionStorage works), so a page that
    // keeps rendering the widget for a finished run cannot reload forever.
    function reloadOnce() {
      var k = 'vortex-run-reloaded:' + src, stored = false;
      try {
        if (sessionStorage.getItem(k)) return false;
        sessionStorage.setItem(k, '1');
        stored = true;
      } catch (e) { stored = false; }
      if (!stored && !sawActive) return false;
      location.reload();
      return true;
    }

    async function tick() {
      if (!alive()) return;
      var st;
      try {
        st = await fetchJson(src, true);
      } catch (e) {
        if (!alive()) return;
        if (e.status && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          say('status unavailable: ' + e.message);
          el.dataset.poll = 'stopped';
          return;
        }
        delay = Math.min(MAX_BACKOFF_MS, delay ? delay * 2 : 2000);
        say('connection lost, retrying…');
        el.dataset.poll = 'retrying';
        later(delay);
        return;
      }
      if (!alive()) return;
      delay = 0;
      apply(st);
      if (st.status === 'queued' || st.status === 'running') {
        sawActive = true;
        el.dataset.poll = 'polling';
        later(POLL_MS);
        return;
      }
      el.dataset.poll = 'finished';
      if (reloadOnce()) say((text && text.textContent ? text.textContent + ' · ' : '') + 'reloading…');
    }
    tick();
  }

  // ---------------------------------------------------------------------------------------- mounting

  function guard(el, fn) {
    fn(el).catch(function (e) {
      el.dataset.state = 'error';
      el.dataset.mounted = '';
      showError(el, 'The chart could not be drawn: ' + (e && e.message ? e.message : e));
    });
  }

  function mountAll() {
    document.querySelectorAll('[data-backtest-chart]').forEach(function (el) { guard(el, mountBacktest); });
    document.querySelectorAll('[data-compare-chart]').forEach(function (el) { guard(el, mountCompare); });
    document.querySelectorAll('[data-run-status]').forEach(mountStatus);
  }

  if (!window.vortexBacktest) {
    document.addEventListener('click', onTraceTimeClick);
    if (window.MutationObserver) {
      new MutationObserver(onThemeChange).observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    }
    if (window.matchMedia) {
      var mq = window.matchMedia('(prefers-color-scheme: light)');
      if (mq.addEventListener) mq.addEventListener('change', onThemeChange);
      else if (mq.addListener) mq.addListener(onThemeChange);
    }
  }
  window.vortexBacktest = { mountAll: mountAll };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mountAll);
  else mountAll();
})();
