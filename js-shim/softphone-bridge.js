/*!
 * softphone-bridge shim — lets a CRM page drive the agent's softphone daemon.
 *
 * One dependency-free file. As a classic <script> it defines the global `SoftphoneBridge`;
 * the daemon also serves it as an ES module at /shim.mjs (same code plus named exports).
 *
 *   const phone = await SoftphoneBridge.connect({ port: 48443 });
 *   phone.on('incomingCall', (call) => showPopup(call.callerANI));
 *   await phone.startCall({ dialTo: '+18883973342' });
 *
 * Three styles, one connection underneath:
 *   - promise API: connect() → phone.startCall(), phone.on(event, fn), …
 *   - Porthole style (uContact): new SoftphoneBridge.WindowProxy().post({action:'call', …})
 *   - wrapper contract: SoftphoneBridge.useWrapper(wrapper) calls wrapper.load(callback) and then
 *     wrapper.incomingCall(…), wrapper.callAccepted(…), … as events arrive.
 *
 * The wire protocol is documented in docs/protocol.md.
 */
(function (global) {
  'use strict';

  var DEFAULT_PORT = 48443;
  /**
   * The daemon's port when none is given: the one this script was loaded from
   * (https://localhost:PORT/shim.js), else the default. Pages written for uContact's Porthole
   * create their proxy with a URL only, so the port must come from somewhere else.
   */
  var PORT = (function () {
    try {
      var script = global.document && global.document.currentScript;
      // Markup named `currentScript` (DOM clobbering) must not choose the port: a real script only.
      if (!(global.HTMLScriptElement && script instanceof global.HTMLScriptElement)) return DEFAULT_PORT;
      var url = script.src ? new URL(script.src) : null;
      if (url && url.protocol === 'https:' && url.hostname === 'localhost' && url.port) return Number(url.port);
    } catch (e) { /* not loaded from the daemon: the default */ }
    return DEFAULT_PORT;
  })();
  var REQUEST_TIMEOUT_MS = 15000;
  var CLOSE_LAGGED = 4000;
  // The agent revoked this page's origin: reconnecting would only be refused.
  var CLOSE_REVOKED = 4003;
  /** Contract events handed to a wrapper (004_…), in the contract's own names. */
  var WRAPPER_EVENTS = [
    'incomingCall', 'callAccepted', 'callRejected', 'callEnded',
    'callNotesSubmitted', 'outboundCallInitiated', 'statusChanged'
  ];
  /** Sent live but never numbered, kept or replayed: nothing to acknowledge. */
  var UNKEPT_EVENTS = ['log', 'storageChanged'];
  /** Connections WindowProxy instances share, by port, host and transport. */
  var SHARED_PROXY_CONNECTIONS = {};
  /** Actions that place a call: uContact answers them with the call's guid, or 0. */
  var CALL_ACTIONS = ['call', 'callWithPhone', 'start_call', 'shotgun_call'];
  var CALL_EVENTS = ['outboundCallInitiated', 'callRinging', 'incomingCall', 'callAccepted',
    'callRejected', 'callEnded', 'callHoldChanged', 'callMuteChanged', 'callTransferred', 'recordingChanged',
    'audioDeviceUnavailable'];

  /** An error with a stable `code` (the daemon's codes, plus the shim's own below). */
  class BridgeError extends Error {
    constructor(code, message, details) {
      super(message);
      this.name = 'BridgeError';
      this.code = code;
      if (details !== undefined) this.details = details;
    }
  }

  /** The shim's own codes for a connection that could not be made, each with its fix. */
  var BLOCKED = {
    certificate_not_trusted: 'The softphone daemon is running but this browser does not trust its certificate. ' +
      'Run `softphone-bridge certs install` (or ask IT to deploy the CA), then reload.',
    origin_not_approved: 'This page is waiting for the agent to allow it: choose "Allow" in the softphone tray menu ' +
      '(or run `softphone-bridge origins approve ORIGIN`), or ask IT to add it to [api] allowed_origins.',
    origin_denied: 'The agent denied this page access to the softphone. Run `softphone-bridge origins forget ORIGIN` to ask again.',
    origin_insecure: 'This page is served over plain http:// from the network, so the softphone cannot trust it. ' +
      'Serve the CRM over https:// (or ask IT to list it).',
    local_network_blocked: 'The browser blocked this page from reaching localhost (Local Network Access). Allow it in the ' +
      'site settings, or ask IT to set the LocalNetworkAccessAllowedForUrls policy (see docs/deploy.md).',
    daemon_not_running: 'The softphone daemon is not running on this computer (or listens on another port). ' +
      'Start softphone-bridge and reload.',
    bridge_unavailable: 'The softphone bridge frame did not load. Check that the daemon runs and its certificate is trusted.',
    csp_blocked: "This page's Content-Security-Policy forbids connecting to localhost. Use " +
      "SoftphoneBridge.connect({mode: 'iframe'}) (allow frame-src https://localhost:PORT), or add wss://localhost:PORT to connect-src."
  };

  function blocked(code, extra) {
    return new BridgeError(code, BLOCKED[code] + (extra ? ' (' + extra + ')' : ''));
  }

  function hostFor(options) {
    var host = options.host || 'localhost';
    return host.indexOf(':') >= 0 && host.charAt(0) !== '[' ? '[' + host + ']' : host;
  }

  /**
   * Works out why a connection failed. Uses only what a page is allowed to see:
   *  1. https://…/origin answers → daemon reachable and trusted → this origin's approval state;
   *  2. http://…/ping answers → daemon running, certificate not trusted;
   *  3. the Local Network Access permission says denied → blocked by the browser;
   *  4. otherwise → not running.
   */
  async function diagnose(options) {
    options = options || {};
    var port = options.ports !== undefined ? await findPort(options) : (options.port || PORT);
    var host = hostFor(options);
    var fetchFn = global.fetch;
    if (typeof fetchFn !== 'function') return blocked('daemon_not_running');
    try {
      var response = await fetchFn('https://' + host + ':' + port + '/origin', { cache: 'no-store' });
      var body = await response.json();
      if (body.status === 'pending') return blocked('origin_not_approved', body.origin);
      if (body.status === 'denied') return blocked('origin_denied', body.origin);
      if (body.status === 'insecure') return blocked('origin_insecure', body.origin);
      if (body.status === 'allowed') return new BridgeError('disconnected', 'The connection to the softphone closed.');
      return blocked('origin_denied', 'origin not acceptable: ' + body.origin);
    } catch (e) { /* not reachable over https: keep looking */ }
    try {
      await fetchFn('http://' + host + ':' + port + '/ping', { cache: 'no-store', mode: 'no-cors' });
      return blocked('certificate_not_trusted');
    } catch (e) { /* not reachable at all */ }
    var permissions = global.navigator && global.navigator.permissions;
    if (permissions && permissions.query) {
      var names = ['local-network-access', 'loopback-network'];
      for (var i = 0; i < names.length; i++) {
        try {
          var status = await permissions.query({ name: names[i] });
          if (status.state === 'denied') return blocked('local_network_blocked');
        } catch (e) { /* this browser does not know that permission */ }
      }
    }
    return blocked('daemon_not_running');
  }

  /* ------------------------------------------------------------------ terminal servers */

  /** `ports: '48443-48543'` (or `[48443, 48543]`) as [first, last], or null when not given. */
  function portRange(options) {
    var ports = options.ports;
    if (ports === undefined || ports === null) return null;
    var pair = Array.isArray(ports) ? ports : String(ports).split('-');
    var first = Number(pair[0]);
    var last = pair.length > 1 ? Number(pair[1]) : first;
    var valid = function (p) { return Number.isInteger(p) && p > 0 && p < 65536; };
    if (!valid(first) || !valid(last) || first > last || last - first >= MAX_PORTS) {
      throw new BridgeError('invalid_options', 'ports must be a range like "48443-48543", at most ' + MAX_PORTS + ' ports');
    }
    return [first, last];
  }

  var PORT_MEMO = 'softphone-bridge:port';
  /** As the daemon's `[api] port` range allows. */
  var MAX_PORTS = 1000;
  /** Ports tried at once, and how long one may take: a listener that accepts and never answers
   *  (anyone's, on a shared machine) must not hold the page up. */
  var PROBE_BATCH = 16;
  var PROBE_TIMEOUT_MS = 1500;

  /**
   * Finds this OS user's daemon in a port range (terminal servers: every agent's daemon takes the
   * next free port of one range). Other users' daemons close the connection before TLS, so only
   * this user's answers `/origin` — the lowest such port wins; the last one found is tried first.
   * When none answers over https, the first that answers plain `/ping` (its certificate is not
   * trusted yet), else the range's first port, so `diagnose` can say why.
   */
  async function findPort(options) {
    var range = portRange(options);
    if (!range) return options.port || PORT;
    var host = hostFor(options);
    var fetchFn = global.fetch;
    if (typeof fetchFn !== 'function') return range[0];
    var storage = null;
    try { storage = global.localStorage || null; } catch (e) { /* storage blocked */ }
    var answers = function (port, secure) {
      var url = secure ? 'https://' + host + ':' + port + '/origin' : 'http://' + host + ':' + port + '/ping';
      var init = secure ? { cache: 'no-store' } : { cache: 'no-store', mode: 'no-cors' };
      var abortable = global.AbortSignal && typeof global.AbortSignal.timeout === 'function';
      if (abortable) init.signal = global.AbortSignal.timeout(PROBE_TIMEOUT_MS);
      return fetchFn(url, init).then(function (response) {
        return secure ? response.json().then(function (body) { return typeof body.status === 'string'; }) : true;
      }).catch(function () { return false; });
    };
    var remembered = storage ? Number(storage.getItem(PORT_MEMO)) : 0;
    if (remembered >= range[0] && remembered <= range[1] && await answers(remembered, true)) return remembered;
    var scan = async function (secure) {
      for (var start = range[0]; start <= range[1]; start += PROBE_BATCH) {
        var batch = [];
        for (var port = start; port <= Math.min(start + PROBE_BATCH - 1, range[1]); port++) batch.push(port);
        var results = await Promise.all(batch.map(function (p) { return answers(p, secure); }));
        var found = results.indexOf(true);
        if (found >= 0) return batch[found];
      }
      return null;
    };
    var port = await scan(true);
    if (port !== null) {
      try { if (storage) storage.setItem(PORT_MEMO, String(port)); } catch (e) { /* storage full or blocked */ }
      return port;
    }
    return (await scan(false)) || range[0];
  }

  /* ------------------------------------------------------------------ transports */

  /** Direct transport: a WebSocket to wss://localhost:PORT/ws. */
  function directSocket(options, query) {
    var url = 'wss://' + hostFor(options) + ':' + (options.port || PORT) + '/ws' + query;
    return new global.WebSocket(url);
  }

  /**
   * Iframe transport, for pages whose CSP forbids connecting to localhost: the daemon's
   * /bridge.html runs in a hidden frame and relays frames over a MessageChannel. The frame learns
   * this page's origin from the browser (event.origin), and the daemon checks that origin.
   */
  class IframeHost {
    constructor(options) {
      this.origin = 'https://' + hostFor(options) + ':' + (options.port || PORT);
      this.ready = null;
      this.frame = null;
      this.options = options;
    }

    load() {
      if (this.ready) return this.ready;
      var self = this;
      this.ready = new Promise(function (resolve, reject) {
        var doc = global.document;
        var frame = doc.createElement('iframe');
        frame.src = self.origin + '/bridge.html';
        frame.setAttribute('allow', 'loopback-network; local-network-access');
        frame.setAttribute('title', 'softphone bridge');
        frame.style.display = 'none';
        var timer = setTimeout(function () {
          global.removeEventListener('message', onMessage);
          self.ready = null;
          frame.remove();
          reject(blocked('bridge_unavailable'));
        }, self.options.bridgeTimeoutMs || 8000);
        function onMessage(event) {
          if (event.source !== frame.contentWindow || event.origin !== self.origin) return;
          if (!event.data || event.data.type !== 'softphone-bridge:ready') return;
          clearTimeout(timer);
          global.removeEventListener('message', onMessage);
          resolve(frame);
        }
        global.addEventListener('message', onMessage);
        (doc.body || doc.documentElement).appendChild(frame);
        self.frame = frame;
      });
      return this.ready;
    }

    /** A WebSocket-like object relayed through the frame. */
    socket(query) {
      var self = this;
      var channel = new global.MessageChannel();
      var sock = {
        readyState: 0,
        onopen: null, onmessage: null, onclose: null, onerror: null,
        send: function (text) { channel.port1.postMessage({ type: 'send', data: text }); },
        close: function (code, reason) {
          channel.port1.postMessage({ type: 'close', code: code, reason: reason });
        }
      };
      channel.port1.onmessage = function (event) {
        var msg = event.data || {};
        if (msg.type === 'open') { sock.readyState = 1; if (sock.onopen) sock.onopen({}); }
        else if (msg.type === 'frame') { if (sock.onmessage) sock.onmessage({ data: msg.data }); }
        else if (msg.type === 'close') {
          sock.readyState = 3;
          channel.port1.close();
          if (sock.onclose) sock.onclose({ code: msg.code || 1006, reason: msg.reason || '' });
        }
      };
      this.load().then(function (frame) {
        frame.contentWindow.postMessage({ type: 'softphone-bridge:connect', query: query }, self.origin, [channel.port2]);
      }, function () {
        sock.readyState = 3;
        if (sock.onclose) sock.onclose({ code: 1006, reason: 'bridge unavailable' });
      });
      return sock;
    }

    remove() {
      if (this.frame) this.frame.remove();
      this.frame = null;
      this.ready = null;
    }
  }

  /* ------------------------------------------------------------------ the phone */

  /** Listeners by event name: the Phone's and each Call's. A listener that throws does not stop
   *  the others (its error is rethrown on its own). */
  class Emitter {
    constructor() {
      this._listeners = new Map();
    }

    /** Subscribes; returns an unsubscribe function. */
    on(event, fn) {
      if (!this._listeners.has(event)) this._listeners.set(event, new Set());
      this._listeners.get(event).add(fn);
      var self = this;
      return function () { self.off(event, fn); };
    }

    off(event, fn) {
      var set = this._listeners.get(event);
      if (set) set.delete(fn);
    }

    _deliver(event, args) {
      (this._listeners.get(event) || []).forEach(function (fn) {
        try { fn.apply(null, args); } catch (e) { setTimeout(function () { throw e; }); }
      });
    }
  }

  /**
   * A live connection to the daemon. Keeps itself connected (backoff with jitter), resumes from
   * the last event seq it saw, and rejects requests still pending when the connection drops.
   */
  class Phone extends Emitter {
    constructor(options) {
      super();
      this.options = Object.assign({ port: PORT, minRetryMs: 250, maxRetryMs: 10000, autoAck: true, ackDelayMs: 250 }, options || {});
      this.state = null;
      this.instance = null;
      this.startedAt = null;
      this.lastSeq = null;
      this._ackTo = 0;
      this._ackTimer = null;
      this._helloSeq = 0;
      this.connected = false;
      this._calls = new Map();
      /** The last calls that ended, for a `dial` whose reply comes after its call's end. */
      this._ended = new Map();
      this._pending = new Map();
      this._nextId = 1;
      this._socket = null;
      this._closed = false;
      this._retryMs = this.options.minRetryMs;
      this._retryTimer = null;
      this._iframe = this.options.mode === 'iframe' ? new IframeHost(this.options) : null;
    }

    /** `on(event, fn)` takes protocol event names, plus 'hello', 'state', 'connected',
     *  'disconnected', 'incoming' (a Call), and '*' for every wire event. */
    _emit(event, payload, message) {
      this._deliver(event, [payload, message]);
      // `incoming` carries a Call object, not a wire event: '*' (and so Porthole) never sees it.
      if (event !== 'incoming') this._deliver('*', [event, payload, message]);
    }

    /** Sends one action; resolves with its result or rejects with a BridgeError. */
    request(action, params) {
      if (!this.connected || !this._socket) {
        return Promise.reject(new BridgeError('not_connected', 'not connected to the softphone daemon'));
      }
      var id = this._nextId++;
      var self = this;
      return new Promise(function (resolve, reject) {
        var timer = setTimeout(function () {
          self._pending.delete(id);
          reject(new BridgeError('timeout', 'no reply to `' + action + '` within ' + REQUEST_TIMEOUT_MS + ' ms'));
        }, REQUEST_TIMEOUT_MS);
        self._pending.set(id, { resolve: resolve, reject: reject, timer: timer });
        var frame = { id: id, action: action };
        if (params !== undefined) frame.params = params;
        self._socket.send(JSON.stringify(frame));
      });
    }

    getState() { return this.request('get_state').then(function (r) { return r.state; }); }
    updatePresence(params) { return this.request('update_presence', params); }
    setDispositions(codes) { return this.request('disposition', codes); }
    setPartnerConfig(params) { return this.request('partner_config', params); }
    startCall(params) { return this.request('start_call', params); }
    call(params) { return this.request('call', params); }
    callWithPhone(params) { return this.request('callWithPhone', params); }
    answer(params) { return this.request('answer', params); }
    reject(params) { return this.request('reject', params); }
    hangup(params) { return this.request('hangup', params); }
    hold(params) { return this.request('hold', params); }
    unhold(params) { return this.request('unhold', params); }
    mute(params) { return this.request('mute', params); }
    unmute(params) { return this.request('unmute', params); }
    dtmf(params) { return this.request('dtmf', params); }
    /** Blind transfer: `{to, conversationId?}`; `callTransferred` follows. */
    transfer(params) { return this.request('transfer', params); }
    /** Attended transfer: `{conversationId, withConversationId}`; `callTransferred` follows. */
    connectCalls(params) { return this.request('connect_calls', params); }
    /** Shotgun dial: `{dialTo: [up to 5 numbers], partnerId?}`; the first to answer wins. */
    shotgunCall(params) { return this.request('shotgun_call', params); }
    /** Local conference: `{conversationIds: [...]}`; `conferenceChanged` follows. */
    conference(params) { return this.request('conference', params); }
    /** Takes `{conversationId}` out of the conference, on hold. */
    split(params) { return this.request('split', params); }
    /** Disposition and notes for a call in progress or any call of the history (after-call work). */
    submitNotes(params) { return this.request('submit_notes', params); }
    /** The page has processed every event up to `seq` (done for you unless `autoAck: false`). */
    ack(seq) { return this.request('ack', { seq: seq }); }
    /** Past calls, newest first: `{limit?, before?}`. */
    getHistory(params) { return this.request('get_history', params).then(function (r) { return r.calls; }); }
    /** Records the call (`{conversationId?}`); `recordingChanged` follows. */
    startRecording(params) { return this.request('start_recording', params); }
    pauseRecording(params) { return this.request('pause_recording', params); }
    resumeRecording(params) { return this.request('resume_recording', params); }
    stopRecording(params) { return this.request('stop_recording', params); }
    /** Recordings, newest first: `{limit?, before?, conversationId?}`. */
    listRecordings(params) { return this.request('list_recordings', params).then(function (r) { return r.recordings; }); }
    /** Replaces a recording's tags: `{id, tags}`. */
    tagRecording(params) { return this.request('tag_recording', params); }
    /** Never dial these: `{number}` or `{numbers: [...]}`. */
    blacklistAdd(params) { return this.request('blacklist_add', params); }
    blacklistRemove(params) { return this.request('blacklist_remove', params); }
    blacklistList() { return this.request('blacklist_list'); }
    /** The microphone, speaker and ringer for the next calls: `{input?, output?, ringer?}` (names as
     *  `softphone-bridge devices` lists them, `""` for the system default); `audioDevicesChanged` follows. */
    setAudioDevices(params) { return this.request('set_audio_devices', params); }
    listAudioDevices() { return this.request('list_audio_devices', {}); }
    testAudio(params) { return this.request('test_audio', params || {}); }
    /** The seed platform's provisioning parameters; the daemon keeps the password, the page forgets it. */
    provision(params) { return this.request('provision', params); }
    logout() { return this.request('logout'); }

    /** Stops reconnecting and closes the connection. */
    close() {
      this._flushAck();
      this._closed = true;
      clearTimeout(this._retryTimer);
      if (this._socket) this._socket.close(1000, 'closed by page');
      if (this._iframe) this._iframe.remove();
    }

    /** Opens the connection; resolves on the first `hello`. */
    _open() {
      var self = this;
      var query = this.lastSeq !== null && this.instance
        ? '?since=' + this.lastSeq + '&instance=' + encodeURIComponent(this.instance) : '';
      return new Promise(function (resolve, reject) {
        var socket;
        try {
          socket = self._iframe ? self._iframe.socket(query) : directSocket(self.options, query);
        } catch (e) {
          reject({ code: 1006, reason: String(e) });
          return;
        }
        var greeted = false;
        var finished = false;
        self._socket = socket;
        // A socket that never says hello (or a browser that reports an error without a close,
        // as Chrome does for a CSP-blocked WebSocket) must not hang the page.
        var helloTimer = setTimeout(function () {
          finish({ code: 1006, reason: 'no hello from the daemon' });
          try { socket.close(); } catch (e) { /* already closed */ }
        }, self.options.helloTimeoutMs || 10000);
        socket.onmessage = function (event) {
          var message;
          try { message = JSON.parse(event.data); } catch (e) { return; }
          if (message.event === 'hello') {
            greeted = true;
            clearTimeout(helloTimer);
            self._onHello(message.payload);
            resolve(self);
          } else {
            self._onMessage(message);
          }
        };
        function finish(event) {
          if (finished) return;
          finished = true;
          clearTimeout(helloTimer);
          if (self._socket !== socket) return;
          self._socket = null;
          var wasConnected = self.connected;
          self.connected = false;
          self._failPending();
          if (!greeted) reject(event);
          var revoked = event.code === CLOSE_REVOKED;
          if (wasConnected) {
            self._emit('disconnected', { code: event.code, reason: event.reason, willRetry: !self._closed && !revoked });
          }
          if (greeted && !revoked) self._scheduleReconnect(event.code === CLOSE_LAGGED ? 0 : undefined);
        }
        socket.onclose = function (event) { finish(event); };
        socket.onerror = function () {
          // Before hello an error is a failed attempt; after it, onclose follows with details.
          if (!greeted) finish({ code: 1006, reason: 'connection failed' });
        };
      });
    }

    _onHello(hello) {
      var sameDaemon = this.instance === hello.instance && this.startedAt === hello.startedAt;
      // Another history: what was acknowledged there means nothing here.
      if (this.instance !== hello.instance) this._ackTo = 0;
      this._helloSeq = hello.lastSeq;
      this.instance = hello.instance;
      this.startedAt = hello.startedAt;
      this.lastSeq = hello.lastSeq;
      this.state = hello.state;
      this._syncCalls(hello.state);
      this.connected = true;
      this._retryMs = this.options.minRetryMs;
      this._emit('hello', hello);
      this._emit('connected', { resumed: hello.resumed, restarted: !sameDaemon });
      this._emit('state', this.state);
    }

    _onMessage(message) {
      if (message.event) {
        var numbered = typeof message.seq === 'number' && UNKEPT_EVENTS.indexOf(message.event) < 0;
        // A replayed event (older than hello's snapshot) goes to the listeners, but the
        // snapshot is newer than what it says.
        var replayed = numbered && message.seq <= this._helloSeq;
        if (numbered) this.lastSeq = Math.max(this.lastSeq || 0, message.seq);
        if (!replayed) this._apply(message.event, message.payload);
        // Per-call objects follow live events; of a replay, only the end of a call the page
        // still holds (it ended while the page was away), so its `ended` fires.
        var call = !replayed ? this._trackCall(message.event, message.payload)
          : (message.event === 'callEnded' || message.event === 'callRejected') && message.payload
            ? this._calls.get(message.payload.conversationId) || null : null;
        this._emit(message.event, message.payload, message);
        if (call) call._onEvent(message.event, message.payload);
        // The listeners have run: the page has processed it (log lines are never kept, so never acknowledged).
        if (this.options.autoAck && typeof message.seq === 'number' && UNKEPT_EVENTS.indexOf(message.event) < 0) {
          this._scheduleAck(message.seq);
        }
        return;
      }
      var pending = this._pending.get(message.id);
      if (!pending) return;
      this._pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.ok) pending.resolve(message.result);
      else pending.reject(new BridgeError(message.error.code, message.error.message));
    }

    /** The Call object an event is about (created for a new call); emits `incoming` for a
     *  ringing inbound one, as Twilio's Device does. */
    _trackCall(event, payload) {
      var id = payload && payload.conversationId;
      if (!id || (CALL_EVENTS.indexOf(event) < 0 && event !== 'dtmfReceived')) return null;
      var call = this._calls.get(id);
      if (!call && (event === 'incomingCall' || event === 'outboundCallInitiated')) {
        var inbound = event === 'incomingCall';
        call = new Call(this, id, inbound ? 'inbound' : 'outbound', inbound ? payload.callerANI : payload.dialledTo);
        this._calls.set(id, call);
        if (inbound) this._emit('incoming', call);
      }
      return call || null;
    }

    /** The calls in progress as objects (`call.on('accepted' | 'ended' | 'muted' | 'held' | …)`). */
    calls() { return Array.from(this._calls.values()); }
    getCall(conversationId) { return this._calls.get(conversationId) || null; }

    /** Places a call and resolves with its Call object (Twilio's `device.connect`). `params` is
     *  the number, or `start_call`'s parameters. */
    dial(params) {
      var self = this;
      var request = typeof params === 'string' ? { dialTo: params } : params;
      return this.startCall(request).then(function (result) {
        var id = result.conversationId;
        // The daemon sends what an action caused before its reply: the call may be over already.
        var call = self._calls.get(id) || self._ended.get(id);
        if (!call) {
          call = new Call(self, id, 'outbound', request.dialTo);
          self._calls.set(id, call);
        }
        return call;
      });
    }

    /** After hello: Call objects for exactly the calls the snapshot has. */
    _syncCalls(state) {
      var self = this;
      var listed = new Set();
      ((state && state.calls) || []).forEach(function (info) {
        listed.add(info.conversationId);
        var call = self._calls.get(info.conversationId);
        var fresh = !call;
        if (fresh) {
          call = new Call(self, info.conversationId, info.callType, info.remote);
          self._calls.set(info.conversationId, call);
        }
        call._fromSnapshot(info);
        // A call that started ringing while the page was away (or before it loaded).
        if (fresh && info.callType === 'inbound' && info.state === 'ringing') self._emit('incoming', call);
      });
      // Calls that ended while the page was away: the replay that follows hello brings their
      // `callEnded`; any it does not (older than the replay window) end here, cause unknown.
      var gone = Array.from(this._calls.values()).filter(function (c) { return !listed.has(c.id); });
      if (gone.length) {
        setTimeout(function () {
          gone.forEach(function (call) {
            if (call.status !== 'closed') call._close('ended', { conversationId: call.id, cause: 'unknown' });
          });
        }, 2000);
      }
    }

    /** Keeps `phone.state` current so a page can redraw from it at any time; emits `state`
     *  after every change. Call events refresh the whole snapshot (calls change shape). */
    _apply(event, payload) {
      var state = this.state;
      if (!state) return;
      var changed = true;
      if (event === 'statusChanged') state.presence = { softphoneId: payload.softphoneId, name: payload.name, acceptCalls: payload.acceptCalls, ready: payload.ready };
      else if (event === 'dispositionsChanged') state.dispositions = payload.codes;
      else if (event === 'partnerConfigChanged') state.partnerConfig = payload;
      else if (event === 'registrationChanged') state.line = { state: payload.state, extension: payload.extension || null };
      else if (event === 'storageChanged') state.storage = payload;
      else if (event === 'audioDevicesChanged') state.audioDevices = payload;
      else changed = false;
      if (changed) this._emit('state', state);
      if (CALL_EVENTS.indexOf(event) >= 0) {
        var self = this;
        this.getState().then(function (fresh) { self.state = fresh; self._emit('state', fresh); }, function () {});
      }
    }

    /** Acknowledges events up to `seq` a moment later, once for a burst. */
    _scheduleAck(seq) {
      if (seq > this._ackTo) this._ackTo = seq;
      if (this._ackTimer) return;
      var self = this;
      if (!this._flushOnHide && global.addEventListener) {
        // A page closed within the delay still acknowledges what its listeners processed.
        this._flushOnHide = function () { self._flushAck(); };
        global.addEventListener('pagehide', this._flushOnHide);
      }
      this._ackTimer = setTimeout(function () { self._flushAck(); }, this.options.ackDelayMs);
    }

    _flushAck() {
      if (!this._ackTimer) return;
      clearTimeout(this._ackTimer);
      this._ackTimer = null;
      if (this.connected) this.ack(this._ackTo).catch(function () { /* replayed next time */ });
    }

    _failPending() {
      var pending = this._pending;
      this._pending = new Map();
      pending.forEach(function (p) {
        clearTimeout(p.timer);
        p.reject(new BridgeError('disconnected', 'the connection to the softphone daemon closed'));
      });
    }

    _scheduleReconnect(delay) {
      if (this._closed) return;
      var self = this;
      var wait = delay !== undefined ? delay : this._retryMs * (0.75 + Math.random() / 2);
      this._retryMs = Math.min(this._retryMs * 2, this.options.maxRetryMs);
      clearTimeout(this._retryTimer);
      this._retryTimer = setTimeout(function () {
        // On a terminal server the restarted daemon may have had to take another port.
        var located = self.options.ports && !self._iframe ? findPort(self.options) : Promise.resolve(self.options.port);
        located.then(function (port) {
          self.options.port = port;
          return self._open();
        }).catch(function () { self._scheduleReconnect(); });
      }, wait);
    }
  }

  /**
   * One call, in the style of the Twilio Voice SDK's `Call`: its own events and controls.
   * Events: `ringing`, `accepted`, `rejected`, `ended` (the `callEnded` payload), `muted`
   * (true/false), `held` (true/false), `digits` (a DTMF digit from the far end), `transferred`,
   * `audioUnavailable` (why the call has no working microphone or speaker);
   * and Twilio's `accept` and `disconnect` (with the Call), beside `accepted` and `ended`.
   * `status`: `pending` (ringing), `open` (answered), `closed`.
   */
  class Call extends Emitter {
    constructor(phone, id, direction, remote) {
      super();
      this._phone = phone;
      this.id = id;
      this.conversationId = id;
      this.direction = direction;
      this.remote = remote || '';
      this.status = 'pending';
      this.muted = false;
      this.held = false;
      this.audioUnavailable = null;
    }

    _emit(event, value) {
      this._deliver(event, [value]);
    }

    _ref() { return { conversationId: this.id }; }
    answer() { return this._phone.answer(this._ref()); }
    reject() { return this._phone.reject(this._ref()); }
    hangup() { return this._phone.hangup(this._ref()); }
    /** Twilio's names for `answer` and `hangup`. */
    accept() { return this.answer(); }
    disconnect() { return this.hangup(); }
    isMuted() { return this.muted; }
    /** `mute()` / `mute(false)`, as Twilio's. */
    mute(shouldMute) { return shouldMute === false ? this._phone.unmute(this._ref()) : this._phone.mute(this._ref()); }
    hold(shouldHold) { return shouldHold === false ? this._phone.unhold(this._ref()) : this._phone.hold(this._ref()); }
    sendDigits(digits) { return this._phone.dtmf({ conversationId: this.id, digits: String(digits) }); }
    transfer(to) { return this._phone.transfer({ conversationId: this.id, to: to }); }

    _fromSnapshot(info) {
      this.status = info.state === 'ringing' ? 'pending' : 'open';
      this.muted = !!info.muted;
      this.held = info.state === 'held';
      this.audioUnavailable = info.audioUnavailable || null;
      if (info.remote) this.remote = info.remote;
    }

    _onEvent(event, payload) {
      if (event === 'callRinging') this._emit('ringing', payload);
      else if (event === 'callAccepted') { this.status = 'open'; this._emit('accepted', payload); this._emit('accept', this); }
      else if (event === 'callRejected') this._close('rejected', payload);
      else if (event === 'callEnded') { this._close('ended', payload); this._emit('disconnect', this); }
      else if (event === 'callMuteChanged') { this.muted = payload.muted; this._emit('muted', payload.muted); }
      else if (event === 'callHoldChanged') { this.held = payload.held; this._emit('held', payload.held); }
      else if (event === 'dtmfReceived') this._emit('digits', payload.digit);
      else if (event === 'audioDeviceUnavailable') { this.audioUnavailable = payload.reason; this._emit('audioUnavailable', payload.reason); }
      else if (event === 'callTransferred') this._emit('transferred', payload);
    }

    _close(event, payload) {
      this.status = 'closed';
      var phone = this._phone;
      phone._calls.delete(this.id);
      phone._ended.set(this.id, this);
      if (phone._ended.size > 20) phone._ended.delete(phone._ended.keys().next().value);
      this._emit(event, payload);
    }
  }

  /**
   * Connects to the daemon. Resolves with a Phone once `hello` arrives; rejects with a
   * BridgeError that says why the connection is blocked and how to fix it.
   * Options: port (48443), ports ('48443-48543' on terminal servers), host ('localhost'),
   * mode ('direct' | 'iframe').
   */
  async function connect(options) {
    options = Object.assign({}, options);
    if (options.ports !== undefined) options.port = await findPort(options);
    for (var told = false; ; told = true) {
      try {
        return await connectOnce(options);
      } catch (error) {
        if (!options.waitForApproval || error.code !== 'origin_not_approved') throw error;
        // The page learns why once, then the shim waits for the agent's answer by itself.
        if (!told && typeof options.onBlocked === 'function') {
          try { options.onBlocked(error); } catch (e) { setTimeout(function () { throw e; }); }
        }
        await approvalDecided(options);
      }
    }
  }

  /** Resolves once this origin is no longer pending (then the connection is tried again);
   *  rejects with `origin_denied` when the agent denies it. */
  async function approvalDecided(options) {
    var url = 'https://' + hostFor(options) + ':' + (options.port || PORT) + '/origin';
    var every = options.approvalPollMs || 2000;
    var until = options.approvalTimeoutMs ? Date.now() + options.approvalTimeoutMs : Infinity;
    if (typeof global.fetch !== 'function') throw blocked('origin_not_approved');
    for (;;) {
      await new Promise(function (resolve) { setTimeout(resolve, every); });
      if (options.signal && options.signal.aborted) throw new BridgeError('aborted', 'stopped waiting for the agent\'s approval');
      if (Date.now() > until) throw blocked('origin_not_approved', 'the agent did not decide in time');
      var status = null;
      try {
        var response = await global.fetch(url, { cache: 'no-store' });
        status = (await response.json()).status;
      } catch (e) { /* the daemon restarts or is away: keep waiting */ }
      if (status === 'denied') throw blocked('origin_denied');
      if (status && status !== 'pending') return;
    }
  }

  async function connectOnce(options) {
    var phone = new Phone(options);
    var cspBlocked = false;
    var doc = global.document;
    var port = String(phone.options.port);
    var onViolation = function (event) {
      var uri = String(event.blockedURI || '');
      if (uri.indexOf(':' + port) >= 0 && /^wss?:/.test(uri)) cspBlocked = true;
    };
    if (doc && doc.addEventListener) doc.addEventListener('securitypolicyviolation', onViolation);
    try {
      return await phone._open();
    } catch (event) {
      phone.close();
      if (cspBlocked) throw blocked('csp_blocked');
      throw await diagnose(phone.options);
    } finally {
      if (doc && doc.removeEventListener) doc.removeEventListener('securitypolicyviolation', onViolation);
    }
  }

  /* ------------------------------------------------------------------ Porthole style */

  /**
   * uContact's Porthole proxy, same calls: `new WindowProxy()` then `.post({action, …})` and
   * `.addEventListener(fn)`. Listeners receive `{data: {…}}`: replies carry `action`, `ok` and the
   * result (`guid` for call actions, `0` when the call could not be placed, as uContact answers);
   * events carry `event`, the payload and `guid`. A URL first argument and a target window name
   * (as Porthole takes) are accepted and ignored; options may come first or second.
   */
  class WindowProxy {
    constructor(urlOrOptions, maybeOptions) {
      var isOptions = function (o) { return typeof o === 'object' && o !== null; };
      var options = isOptions(urlOrOptions) ? urlOrOptions : (isOptions(maybeOptions) ? maybeOptions : {});
      this._listeners = [];
      this._queue = [];
      this._phone = null;
      var self = this;
      // Porthole pages expect one answer per post; events only when asked for.
      var events = options.events !== undefined ? options.events : !this.constructor.repliesOnly;
      // One connection for every proxy of a page: uContact's samples make a proxy per click.
      var key = JSON.stringify([options.port || PORT, hostFor(options), options.mode || 'direct']);
      var shared = SHARED_PROXY_CONNECTIONS[key];
      if (!shared) {
        shared = SHARED_PROXY_CONNECTIONS[key] = connect(options);
        shared.catch(function () { delete SHARED_PROXY_CONNECTIONS[key]; });
      }
      this.ready = shared.then(function (phone) {
        self._phone = phone;
        if (events) phone.on('*', function (event, payload) {
          if (event === 'hello' || event === 'state' || event === 'connected' || event === 'disconnected') return;
          var data = Object.assign({ event: event }, payload);
          if (payload && payload.conversationId) data.guid = payload.conversationId;
          self._dispatch(data);
        });
        var queued = self._queue;
        self._queue = [];
        queued.forEach(function (m) { self.post(m); });
        return phone;
      }, function (error) {
        self._dispatch({ ok: false, error: { code: error.code, message: error.message } });
        throw error;
      });
      this.ready.catch(function () {});
    }

    post(message) {
      if (!this._phone) { this._queue.push(message); return; }
      var params = Object.assign({}, message);
      var action = params.action;
      delete params.action;
      var self = this;
      this._phone.request(action, Object.keys(params).length ? params : undefined).then(function (result) {
        var data = Object.assign({ action: action, ok: true }, result);
        if (result && result.conversationId && !data.guid) data.guid = result.conversationId;
        self._dispatch(data);
      }, function (error) {
        var data = { action: action, ok: false, error: { code: error.code, message: error.message } };
        if (CALL_ACTIONS.indexOf(action) >= 0) data.guid = 0;
        self._dispatch(data);
      });
    }

    addEventListener(fn) { this._listeners.push(fn); }
    removeEventListener(fn) { this._listeners = this._listeners.filter(function (f) { return f !== fn; }); }
    _dispatch(data) {
      this._listeners.slice().forEach(function (fn) {
        try { fn({ data: data }); } catch (e) { setTimeout(function () { throw e; }); }
      });
    }
  }

  /* ------------------------------------------------------------------ wrapper contract */

  /**
   * The Softphone contract (004_…): calls `wrapper.load(callback)`; `callback(eventType, payload)`
   * becomes the action of the same name (`disposition`, `partner_config`, `update_presence`,
   * `start_call`) and returns its promise; contract events call the wrapper's method of that
   * name with the payload. Resolves with the Phone.
   */
  async function useWrapper(wrapper, options) {
    var phone = await connect(options);
    WRAPPER_EVENTS.forEach(function (name) {
      phone.on(name, function (payload) {
        if (typeof wrapper[name] === 'function') wrapper[name](payload);
      });
    });
    var callback = function (eventType, payload) {
      var result = phone.request(eventType, payload);
      result.catch(function (error) {
        if (typeof wrapper.onError === 'function') wrapper.onError(error, eventType);
        else if (global.console) global.console.warn('softphone-bridge:', eventType, error.code, error.message);
      });
      return result;
    };
    if (typeof wrapper.load === 'function') wrapper.load(callback);
    return phone;
  }

  var SoftphoneBridge = {
    version: 1,
    DEFAULT_PORT: DEFAULT_PORT,
    connect: connect,
    diagnose: diagnose,
    useWrapper: useWrapper,
    WindowProxy: WindowProxy,
    Phone: Phone,
    Call: Call,
    BridgeError: BridgeError
  };

  if (typeof module === 'object' && module && module.exports) module.exports = SoftphoneBridge;
  global.SoftphoneBridge = SoftphoneBridge;
  // uContact pages load this script where they loaded porthole.js and run unchanged. The real
  // porthole.js, if the page loads it too, is left alone (SoftphoneBridge.WindowProxy still works).
  /** As uContact's: one reply per post (`{guid}` for calls, 0 on error); `{events: true}` adds events. */
  class PortholeWindowProxy extends WindowProxy {}
  PortholeWindowProxy.repliesOnly = true;
  SoftphoneBridge.Porthole = { WindowProxy: PortholeWindowProxy };
  if (typeof global.Porthole === 'undefined') global.Porthole = SoftphoneBridge.Porthole;
})(typeof globalThis !== 'undefined' ? globalThis : this);
