// The strategy source editor. Loaded as a same-origin script (so the Content-Security-Policy allows it), either by
// the hydrated page or by a plain <script src> tag; it loads the vendored CodeMirror bundle
// (/vendor/strategy-editor-bundle.js, built from editor/) on first use and turns every
// <textarea data-strategy-editor> into an editor. The textarea stays the form field: it is hidden and receives
// every change, so a normal form POST submits the edited text (and the page works without JavaScript).
// With data-validate-url the source is checked as it is typed: POST {"source": text} (JSON, CSRF header) answered by
// {ok, diagnostics: [{line, column, len, message}], params: [...]}; problems are underlined in the editor and
// summed up in the element named by data-status. Each answer is also sent as a `vortex:validated` event
// (detail = the answer) on the textarea.
(function () {
  'use strict';
  var LIB = '/vendor/strategy-editor-bundle.js';
  var SELECTOR = 'textarea[data-strategy-editor]';
  var DEBOUNCE_MS = 400;
  var libLoading = null;
  var mounted = []; // [{textarea, editor, stop}]

  function loadLib() {
    if (window.VortexEditorLib) return Promise.resolve();
    if (!libLoading) {
      libLoading = new Promise(function (resolve, reject) {
        var s = document.createElement('script');
        s.src = LIB;
        s.onload = function () {
          if (window.VortexEditorLib) resolve();
          else { libLoading = null; reject(new Error('the editor library did not start')); }
        };
        s.onerror = function () { libLoading = null; reject(new Error('the editor library failed to load')); };
        document.head.appendChild(s);
      });
    }
    return libLoading;
  }

  function say(textarea, text) {
    var id = textarea.dataset.status;
    var status = id && document.getElementById(id);
    // Only real changes: the element may be a live region, and repeating the same words is noise.
    if (status && status.textContent !== text) status.textContent = text;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute('content') || '' : '';
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many);
  }

  function summary(answer) {
    var diags = Array.isArray(answer.diagnostics) ? answer.diagnostics : [];
    if (answer.ok && !diags.length) {
      var n = Array.isArray(answer.params) ? answer.params.length : 0;
      return '✓ valid · ' + plural(n, 'parameter', 'parameters');
    }
    if (!diags.length) return 'not valid';
    var first = diags[0];
    var where = first.line > 0 ? 'line ' + first.line + ': ' : '';
    return plural(diags.length, 'problem', 'problems') + ': ' + where + first.message;
  }

  // Checks the source at the textarea's data-validate-url as it changes (debounced; only the newest answer counts).
  function validator(textarea, editor) {
    var url = textarea.dataset.validateUrl;
    var timer = null;
    var seq = 0;
    var controller = null;

    function run() {
      timer = null;
      var mine = ++seq;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      textarea.dataset.state = 'validating';
      fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrfToken() },
        body: JSON.stringify({ source: editor.getValue() }),
        signal: controller ? controller.signal : undefined,
      })
        .then(function (resp) {
          if (!resp.ok) throw new Error('HTTP ' + resp.status);
          return resp.json().catch(function () { throw new Error('unreadable answer'); });
        })
        .then(function (answer) {
          if (mine !== seq || !textarea.isConnected) return;
          if (!answer || typeof answer !== 'object') throw new Error('unreadable answer');
          editor.setDiagnostics(Array.isArray(answer.diagnostics) ? answer.diagnostics : []);
          textarea.dataset.state = answer.ok ? 'valid' : 'invalid';
          say(textarea, summary(answer));
          textarea.dispatchEvent(new CustomEvent('vortex:validated', { detail: answer }));
        })
        .catch(function (e) {
          if (mine !== seq || (e && e.name === 'AbortError')) return;
          textarea.dataset.state = 'error';
          var why = e && /^HTTP \d+$/.test(e.message) ? e.message : e && e.message === 'unreadable answer' ? e.message : 'network error';
          say(textarea, 'could not validate (' + why + ')');
        });
    }

    return {
      schedule: function () {
        if (timer) clearTimeout(timer);
        timer = setTimeout(run, DEBOUNCE_MS);
      },
      now: run,
      stop: function () {
        if (timer) clearTimeout(timer);
        timer = null;
        seq++;
        if (controller) controller.abort();
      },
    };
  }

  function mount(textarea) {
    var check = null;
    var editor = window.VortexEditorLib.create(textarea, {
      onChange: function () { if (check) check.schedule(); },
    });
    var entry = { textarea: textarea, editor: editor, stop: function () {} };
    if (textarea.dataset.validateUrl) {
      check = validator(textarea, editor);
      entry.stop = check.stop;
      if (editor.getValue().trim()) check.now();
    }
    textarea.dataset.editorMounted = 'true';
    textarea.vortexEditor = editor;
    mounted.push(entry);
  }

  // Drops editors whose textarea left the page (or whose editor was removed by a re-render).
  function sweep() {
    mounted = mounted.filter(function (m) {
      if (m.textarea.isConnected && m.editor.view.dom.isConnected) return true;
      m.stop();
      m.editor.destroy();
      delete m.textarea.dataset.editorMounted;
      m.textarea.vortexEditor = null;
      return false;
    });
  }

  function isMounted(textarea) {
    for (var i = 0; i < mounted.length; i++) if (mounted[i].textarea === textarea) return true;
    return false;
  }

  function pending() {
    return Array.prototype.filter.call(document.querySelectorAll(SELECTOR), function (t) { return !isMounted(t); });
  }

  // Mounts an editor on every textarea[data-strategy-editor] that has none yet. Safe to call any number of times.
  function mountAll() {
    sweep();
    if (!pending().length) return Promise.resolve();
    return loadLib().then(
      function () {
        pending().forEach(function (textarea) {
          try {
            mount(textarea);
          } catch (e) {
            say(textarea, 'The editor could not start; the plain text field still works.');
            if (window.console) console.error(e);
          }
        });
      },
      function (e) {
        // The plain textarea stays usable.
        pending().forEach(function (textarea) { say(textarea, 'The editor could not be loaded; the plain text field still works.'); });
        if (window.console) console.warn(e.message);
      }
    );
  }

  if (!window.vortexEditor) {
    window.vortexEditor = { mountAll: mountAll };
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', function () {
        if (document.querySelector(SELECTOR)) mountAll();
      });
    } else {
      mountAll();
    }
  } else {
    window.vortexEditor.mountAll();
  }
})();
