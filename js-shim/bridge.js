// The iframe side of the shim's iframe mode. Trust rules:
// - only the parent window may connect, and its origin comes from the browser (event.origin);
// - the daemon decides whether that origin is allowed (`?embedder=` is checked like an Origin
//   header, and only honoured on connections from the daemon's own origin, i.e. this page);
// - frames travel over a MessageChannel port handed over by the parent, so no other window
//   can read or inject them.
(function () {
  'use strict';
  var current = null;

  window.addEventListener('message', function (event) {
    if (event.source !== window.parent || !event.data || event.data.type !== 'softphone-bridge:connect') return;
    var port = event.ports && event.ports[0];
    if (!port) return;
    if (current) current.close(1000, 'replaced by a new connection');
    var query = typeof event.data.query === 'string' && /^(\?[\w=&%.-]*)?$/.test(event.data.query) ? event.data.query : '';
    var url = 'wss://' + location.host + '/ws' + (query ? query + '&' : '?') + 'embedder=' + encodeURIComponent(event.origin);
    var ws = new WebSocket(url);
    current = ws;
    ws.onopen = function () { port.postMessage({ type: 'open' }); };
    ws.onmessage = function (m) { port.postMessage({ type: 'frame', data: m.data }); };
    ws.onclose = function (c) {
      if (current === ws) current = null;
      port.postMessage({ type: 'close', code: c.code, reason: c.reason });
      port.close();
    };
    port.onmessage = function (m) {
      var msg = m.data || {};
      if (msg.type === 'send' && typeof msg.data === 'string' && ws.readyState === 1) ws.send(msg.data);
      else if (msg.type === 'close') ws.close(1000, 'closed by page');
    };
  });

  // Tell the parent we are loaded. No data is carried, so any target origin is harmless.
  window.parent.postMessage({ type: 'softphone-bridge:ready' }, '*');
})();
