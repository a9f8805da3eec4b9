// Draws the Market data page's candlestick chart with volume. Loaded by the hydrated page (same origin, so the
// Content-Security-Policy allows it); it loads the vendored TradingView lightweight-charts bundle on first use
// and draws every [data-market-chart] element from the JSON at its data-src
// (GET /api/v1/market/candles: {candles: [[open_time_ms, open, high, low, close, volume], ...]}).
(function () {
  'use strict';
  var LIB = '/vendor/lightweight-charts-5.2.1.standalone.production.js';
  var libLoading = null;

  function loadLib() {
    if (window.LightweightCharts) return Promise.resolve();
    if (!libLoading) {
      libLoading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = LIB;
        s.onload = resolve;
        s.onerror = function () { libLoading = null; reject(new Error('the chart library failed to load')); };
        document.head.appendChild(s);
      });
    }
    return libLoading;
  }

  function say(el, text) {
    var status = el.dataset.status && document.getElementById(el.dataset.status);
    if (status) status.textContent = text;
  }

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function precisionFor(candles) {
    var min = Infinity;
    for (var i = 0; i < candles.length; i++) if (candles[i][3] > 0 && candles[i][3] < min) min = candles[i][3];
    if (!isFinite(min)) return 2;
    return Math.max(2, Math.min(10, Math.ceil(-Math.log10(min)) + 4));
  }

  async function mount(el) {
    var src = el.dataset.src;
    if (!src || el.dataset.mounted === src) return;
    el.dataset.mounted = src;
    el.dataset.state = 'loading';
    say(el, 'Loading candles…');
    await loadLib();
    var resp = await fetch(src, { headers: { accept: 'application/json' } });
    if (!resp.ok) throw new Error('loading candles failed: HTTP ' + resp.status);
    var data = await resp.json();
    if (el.dataset.mounted !== src) return; // a newer range was asked for meanwhile
    if (el._chart) { el._chart.remove(); el._chart = null; }
    var LC = window.LightweightCharts;
    var up = cssVar('--ok', '#3fb950'), down = cssVar('--down', '#f85149');
    var chart = LC.createChart(el, {
      autoSize: true,
      layout: { background: { color: 'transparent' }, textColor: cssVar('--muted', '#8b949e') },
      grid: { vertLines: { color: cssVar('--border', '#30363d') }, horzLines: { color: cssVar('--border', '#30363d') } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    var precision = precisionFor(data.candles);
    var candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: up, downColor: down, wickUpColor: up, wickDownColor: down, borderVisible: false,
      priceFormat: { type: 'price', precision: precision, minMove: Math.pow(10, -precision) },
    });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.25 } });
    var volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: '' });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    candles.setData(data.candles.map(function (c) {
      return { time: c[0] / 1000, open: c[1], high: c[2], low: c[3], close: c[4] };
    }));
    volume.setData(data.candles.map(function (c) {
      return { time: c[0] / 1000, value: c[5], color: c[4] >= c[1] ? up + '88' : down + '88' };
    }));
    chart.timeScale().fitContent();
    el._chart = chart;
    el.dataset.state = 'ready';
    el.dataset.candles = String(data.candles.length);
    say(el, data.candles.length + ' candles' + (data.truncated ? ' (the newest of a longer range)' : '') +
      '. Drag to pan, scroll to zoom.');
  }

  function mountAll() {
    document.querySelectorAll('[data-market-chart]').forEach(function (el) {
      mount(el).catch(function (e) {
        el.dataset.state = 'error';
        el.dataset.mounted = '';
        say(el, 'The chart could not be drawn: ' + e.message);
      });
    });
  }

  // CSV upload with a progress bar (the form also works without JavaScript: a normal POST).
  function onSubmit(ev) {
    var form = ev.target;
    if (!form || form.id !== 'market-upload' || !window.FormData || !window.XMLHttpRequest) return;
    ev.preventDefault();
    var box = document.getElementById('upload-progress');
    var bar = box && box.querySelector('progress');
    var text = document.getElementById('upload-progress-text');
    if (box) box.hidden = false;
    var button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    var xhr = new XMLHttpRequest();
    xhr.open('POST', form.action);
    // The CSRF token in a header: the server checks it before reading the (large) body.
    var token = form.querySelector('input[name=csrf]');
    var meta = document.querySelector('meta[name=csrf-token]');
    var value = (token && token.value) || (meta && meta.getAttribute('content')) || '';
    if (value) xhr.setRequestHeader('x-csrf-token', value);
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      if (bar) bar.value = pct;
      if (text) text.textContent = 'Uploading… ' + pct + ' %';
    };
    xhr.upload.onload = function () {
      if (bar) bar.removeAttribute('value');
      if (text) text.textContent = 'Checking and storing the candles…';
    };
    xhr.onload = function () {
      // The server answers with a redirect to the result (followed by the browser) or an error page.
      if (xhr.status >= 200 && xhr.status < 300 && xhr.responseURL) {
        window.location.assign(xhr.responseURL);
      } else {
        var why = {
          403: 'Only admins can upload, or the form expired: reload the page.',
          413: 'The file is too large.',
          429: 'Too many uploads: wait a minute.',
          503: 'Another upload is being stored: try again in a minute.'
        }[xhr.status] || '';
        if (text) text.textContent = 'Upload failed (' + xhr.status + '). ' + why;
        if (button) button.disabled = false;
      }
    };
    xhr.onerror = function () {
      if (text) text.textContent = 'Upload failed: the connection was interrupted.';
      if (button) button.disabled = false;
    };
    xhr.send(new FormData(form));
  }

  if (!window.vortexCharts) document.addEventListener('submit', onSubmit, true);
  window.vortexCharts = { mountAll: mountAll };
  mountAll();
})();
