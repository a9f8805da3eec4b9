// Starts the interactive API reference (vendored Swagger UI, no CDN) on /api-docs.html from the OpenAPI
// description at /api/openapi.json. Plain same-origin script, so the Content-Security-Policy allows it (Swagger
// UI needs neither inline scripts nor eval). "Authorize" takes a Vortex API token (vxt_…); it is kept in memory
// only (not in localStorage) and sent as "Authorization: Bearer …" to this origin and nowhere else.
(function () {
  'use strict';
  var SPEC = '/api/openapi.json';

  function fail(text) {
    var box = document.getElementById('swagger-ui');
    if (!box) return;
    var p = document.createElement('p');
    p.className = 'api-docs-error';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    box.appendChild(p);
  }

  function headerName(headers, name) {
    var lower = name.toLowerCase();
    for (var k in headers) if (Object.prototype.hasOwnProperty.call(headers, k) && k.toLowerCase() === lower) return k;
    return null;
  }

  // Runs before every request Swagger UI sends (the description itself and "Try it out").
  function requestInterceptor(req) {
    var url;
    try { url = new URL(req.url, window.location.href); } catch (e) { return req; }
    req.headers = req.headers || {};
    var auth = headerName(req.headers, 'Authorization');
    if (url.origin !== window.location.origin) {
      // Never hand a Vortex token or cookie to another host (e.g. a "servers" entry pointing elsewhere).
      if (auth) delete req.headers[auth];
      req.credentials = 'omit';
      return req;
    }
    // The REST API authenticates by bearer token only; leaving the session cookie out makes "Try it out"
    // behave exactly like an API client would.
    req.credentials = url.pathname.indexOf('/api/v1/') === 0 ? 'omit' : 'same-origin';
    if (auth) {
      // Accept the token pasted with or without a "Bearer " prefix and with stray spaces around it.
      var value = String(req.headers[auth]).trim().replace(/^(Bearer\s+)+/i, '').trim();
      delete req.headers[auth];
      if (value) req.headers.Authorization = 'Bearer ' + value;
    }
    return req;
  }

  function start() {
    if (typeof window.SwaggerUIBundle !== 'function') {
      fail('The API reference could not be loaded. The raw description is at ' + SPEC + '.');
      return;
    }
    window.ui = window.SwaggerUIBundle({
      url: SPEC,
      dom_id: '#swagger-ui',
      deepLinking: true,
      validatorUrl: null, // no badge fetched from validator.swagger.io
      persistAuthorization: false,
      displayRequestDuration: true,
      tryItOutEnabled: false,
      requestInterceptor: requestInterceptor,
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
