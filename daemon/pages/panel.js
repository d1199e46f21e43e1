// The agent panel (/panel): the phone as an agent keeps it open, in a CRM side bar (320 px) or a
// full window. It is a page like any CRM page: it drives the daemon through the shim, so it can do
// exactly what an approved page can, no more.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var phone = null;
  var state = null;
  /** When each call was first seen answered (for its timer), by conversation id. */
  var answeredAt = new Map();
  /** The call the wrap-up form writes to: the current one, else the last that ended. */
  var noteTarget = null;
  var lastEnded = null;
  // The devices plugged in (list_audio_devices), for the pickers.
  var plugged = {};
  var shownIncoming = null;

  function notice(message, isError) {
    var el = $('notice');
    el.textContent = message;
    el.className = isError ? 'error' : '';
  }

  function fail(what) {
    return function (error) { notice(what + ': ' + (error && error.message ? error.message : error), true); };
  }

  function ref(id) { return { conversationId: id }; }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === 'text') node.textContent = props[key];
      else if (key === 'onclick') node.onclick = props[key];
      else node.setAttribute(key, props[key]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  /** good / fair / poor from what the call's RTP and RTCP say, or null before any figures. */
  function quality(q) {
    if (!q || (q.packetsReceived + q.packetsLost) === 0) return null;
    var loss = Math.max(0, q.packetsLost) / Math.max(1, q.packetsReceived + Math.max(0, q.packetsLost)) * 100;
    var rtt = q.roundTripMs || 0;
    var level = loss > 5 || q.jitterMs > 60 || rtt > 400 ? 'poor' : loss > 1 || q.jitterMs > 30 || rtt > 250 ? 'fair' : 'good';
    var detail = loss.toFixed(1) + '% loss, ' + Math.round(q.jitterMs) + ' ms jitter' + (rtt ? ', ' + Math.round(rtt) + ' ms round trip' : '');
    return { level: level, detail: q.codec + ': ' + detail };
  }

  function clock(seconds) {
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ':' + (s < 10 ? '0' : '') + s;
  }

  function active() {
    return (state && state.calls || []).filter(function (c) { return !(c.state === 'ringing' && c.callType === 'inbound'); });
  }

  function renderLine() {
    var line = state.line;
    $('line-dot').className = 'dot ' + line.state;
    $('line').textContent = line.state === 'none' ? 'No line configured'
      : 'Line ' + line.state + (line.extension ? ' · ' + line.extension : '');
  }

  function renderStatus() {
    var select = $('status');
    select.textContent = '';
    state.statuses.forEach(function (s) {
      select.appendChild(el('option', { value: s.softphoneId, text: s.name }));
    });
    select.value = state.presence.softphoneId;
    select.disabled = false;
    $('ready').textContent = state.presence.ready ? 'Ready' : (state.presence.acceptCalls ? '' : 'Calls declined');
  }

  function renderIncoming() {
    var ringing = (state.calls || []).find(function (c) { return c.state === 'ringing' && c.callType === 'inbound'; });
    var banner = $('incoming');
    banner.hidden = !ringing;
    if (!ringing) { shownIncoming = null; return; }
    $('incoming-from').textContent = ringing.remote || 'unknown';
    $('answer').onclick = function () { phone.answer(ref(ringing.conversationId)).catch(fail('Answer')); };
    $('reject').onclick = function () { phone.reject(ref(ringing.conversationId)).catch(fail('Reject')); };
    if (shownIncoming !== ringing.conversationId) {
      shownIncoming = ringing.conversationId;
      $('answer').focus();
    }
  }

  function callCard(call) {
    if (call.state !== 'ringing' && !answeredAt.has(call.conversationId)) answeredAt.set(call.conversationId, Date.now());
    var id = call.conversationId;
    var held = call.state === 'held';
    var q = quality(call.quality);
    var meta = el('div', { class: 'meta' }, [
      el('span', { text: (call.state === 'ringing' ? 'Ringing' : held ? 'On hold' : 'Connected') + (call.muted ? ' · muted' : '') + ' ' }),
      el('span', { class: 'timer', 'data-id': id }),
    ]);
    if (q) meta.appendChild(el('span', { class: 'quality ' + q.level, title: q.detail, text: ' ' + q.level + ' ' }));
    if (call.audioDevices) meta.appendChild(el('span', { class: 'devices', text: ' · ' + deviceNames(call.audioDevices) }));
    var noAudio = call.audioUnavailable ? el('p', { class: 'no-audio', role: 'alert',
      text: 'No working microphone or speaker: ' + call.audioUnavailable }) : null;
    var transferInput = el('input', { type: 'tel', class: 'grow', placeholder: 'Transfer to…', 'aria-label': 'Transfer ' + (call.remote || 'the call') + ' to' });
    var controls = el('div', { class: 'row' }, [
      el('button', { type: 'button', 'aria-pressed': String(call.muted), text: call.muted ? 'Unmute' : 'Mute',
        onclick: function () { (call.muted ? phone.unmute(ref(id)) : phone.mute(ref(id))).catch(fail('Mute')); } }),
      el('button', { type: 'button', 'aria-pressed': String(held), text: held ? 'Resume' : 'Hold',
        onclick: function () { (held ? phone.unhold(ref(id)) : phone.hold(ref(id))).catch(fail('Hold')); } }),
      el('button', { type: 'button', class: 'danger', text: 'Hang up',
        onclick: function () { phone.hangup(ref(id)).catch(fail('Hang up')); } }),
    ]);
    var transfer = el('div', { class: 'row' }, [transferInput, el('button', { type: 'button', text: 'Transfer',
      onclick: function () {
        if (!transferInput.value.trim()) { transferInput.focus(); return; }
        phone.transfer({ conversationId: id, to: transferInput.value.trim() }).then(function () {
          notice('Transferring ' + (call.remote || 'the call') + ' to ' + transferInput.value.trim() + '…');
        }, fail('Transfer'));
      } })]);
    if (call.state === 'ringing') return el('div', { class: 'call' }, [el('div', { class: 'who', text: call.remote }), meta, el('div', { class: 'row' }, [controls.lastChild])]);
    return el('div', { class: 'call' }, [el('div', { class: 'who', text: call.remote }), meta].concat(noAudio ? [noAudio] : [], [controls, transfer]));
  }

  function renderCalls() {
    var list = $('calls');
    list.textContent = '';
    var calls = active();
    if (calls.length === 0) list.appendChild(el('p', { class: 'empty', text: 'No call.' }));
    calls.forEach(function (call) { list.appendChild(callCard(call)); });
    var mergeable = calls.filter(function (c) { return c.state !== 'ringing' && !c.conferenceId; });
    $('conference-row').hidden = mergeable.length < 2;
    $('merge').onclick = function () {
      phone.conference({ conversationIds: mergeable.map(function (c) { return c.conversationId; }) }).catch(fail('Conference'));
    };
    tick();
  }

  function renderWrapup() {
    var current = active()[0];
    noteTarget = current ? current.conversationId : lastEnded ? lastEnded.conversationId : null;
    var form = $('wrapup');
    form.hidden = !noteTarget;
    $('wrapup-call').textContent = !noteTarget ? 'No call to note yet.'
      : (current ? 'Current call with ' : 'Last call with ') + (current ? current.remote : lastEnded.number);
    var select = $('disposition');
    var chosen = select.value;
    select.textContent = '';
    select.appendChild(el('option', { value: '', text: '—' }));
    (state.dispositions || []).forEach(function (code) { select.appendChild(el('option', { value: code, text: code })); });
    select.value = chosen;
  }

  function deviceNames(inUse) {
    return inUse.input === inUse.output ? inUse.input : inUse.input + ' / ' + inUse.output;
  }

  // The picker: the system default, the devices plugged in, and a chosen one that is not.
  function fillPicker(field, names, fallback, chosen) {
    if (document.activeElement === field && field.options.length) return;
    field.textContent = '';
    field.appendChild(el('option', { value: '', text: 'System default' + (fallback ? ' (' + fallback + ')' : '') }));
    names.forEach(function (name) { field.appendChild(el('option', { value: name, text: name })); });
    if (chosen && names.indexOf(chosen) < 0) field.appendChild(el('option', { value: chosen, text: chosen + ' (not plugged in)' }));
    field.value = chosen || '';
  }

  function renderAudio() {
    var chosen = state.audioDevices || {};
    var name = function (d) { return d || 'system default'; };
    $('audio-now').textContent = 'Microphone: ' + name(chosen.input) + ' · speaker: ' + name(chosen.output) +
      ' · ringer: ' + name(chosen.ringer);
    fillPicker($('audio-input'), plugged.inputs || [], plugged.defaultInput, chosen.input);
    fillPicker($('audio-output'), plugged.outputs || [], plugged.defaultOutput, chosen.output);
    fillPicker($('audio-ringer'), plugged.outputs || [], plugged.defaultOutput, chosen.ringer);
  }

  function refreshDevices() {
    phone.listAudioDevices().then(function (list) { plugged = list; if (state) renderAudio(); }, function () {});
  }

  var loudest = -100;
  function onAudioTest(test) {
    var status = $('audio-test-status');
    if (!test.done) {
      loudest = Math.max(loudest, test.inputLevel);
      $('mic-level').value = Math.max(-60, test.inputLevel);
      status.textContent = 'Microphone ' + Math.round(test.inputLevel) + ' dB. Speak: the bar follows your voice; you should hear a tone.';
      return;
    }
    $('audio-test').disabled = false;
    $('mic-level').value = -60;
    status.textContent = test.reason ? 'The devices did not open: ' + test.reason
      : loudest <= -60 ? 'Test finished: the microphone picked up nothing. Check it is plugged in and not muted.'
        : 'Test finished: the microphone peaked at ' + Math.round(loudest) + ' dB.';
  }

  function render(next) {
    state = next;
    renderLine();
    renderAudio();
    renderStatus();
    renderIncoming();
    renderCalls();
    renderWrapup();
  }

  function tick() {
    document.querySelectorAll('.timer').forEach(function (span) {
      var since = answeredAt.get(span.getAttribute('data-id'));
      span.textContent = since ? clock(Math.floor((Date.now() - since) / 1000)) : '';
    });
  }

  function refreshRecent() {
    if (!phone) return;
    phone.getHistory({ limit: 10 }).then(function (calls) {
      var list = $('recent');
      list.textContent = '';
      if (calls.length === 0) list.appendChild(el('li', { class: 'empty', text: 'None yet.' }));
      calls.forEach(function (call) {
        var info = (call.callType === 'inbound' ? 'in' : 'out') + ' · ' +
          (call.duration === null || call.duration === undefined ? 'now' : call.answeredAt ? clock(call.duration) : (call.cause || 'missed').replace(/_/g, ' ')) +
          (call.disposition ? ' · ' + call.disposition : '');
        var number = el('button', { type: 'button', class: 'num', text: call.number, 'aria-label': 'Dial ' + call.number,
          onclick: function () { $('number').value = call.number; $('number').focus(); } });
        list.appendChild(el('li', {}, [number, el('span', { class: 'info', text: info })]));
      });
      if (!active().length && calls.length && calls[0].duration !== null && calls[0].duration !== undefined) {
        lastEnded = calls[0];
        if (state) renderWrapup();
      }
    }, function () { /* no store: no history */ });
  }

  function wire() {
    $('status').onchange = function (event) {
      phone.updatePresence({ softphoneId: event.target.value }).catch(fail('Status'));
    };
    $('dial-form').onsubmit = function (event) {
      event.preventDefault();
      var number = $('number').value.trim();
      if (!number) { $('number').focus(); return; }
      phone.dial(number).then(function () { $('number').value = ''; notice('Calling ' + number + '…'); }, fail('Call'));
    };
    document.querySelectorAll('.pad button').forEach(function (key) {
      key.onclick = function () {
        var call = active().find(function (c) { return c.state === 'active'; });
        if (call) phone.dtmf({ conversationId: call.conversationId, digits: key.textContent }).catch(fail('Tone'));
        else { $('number').value += key.textContent; }
      };
    });
    $('audio-test').onclick = function () {
      loudest = -100;
      $('audio-test').disabled = true;
      $('audio-test-status').textContent = 'Testing…';
      phone.testAudio({ seconds: 3 }).catch(function (error) {
        $('audio-test').disabled = false;
        fail('Test audio')(error);
      });
    };
    $('audio-form').onsubmit = function (event) {
      event.preventDefault();
      phone.setAudioDevices({
        input: $('audio-input').value.trim(), output: $('audio-output').value.trim(), ringer: $('audio-ringer').value.trim(),
      }).then(function () { notice('Audio devices saved for the next calls.'); }, fail('Audio devices'));
    };
    $('wrapup').onsubmit = function (event) {
      event.preventDefault();
      if (!noteTarget) return;
      var params = { conversationId: noteTarget, disposition: $('disposition').value, notes: $('notes').value };
      phone.submitNotes(params).then(function () {
        $('saved').textContent = 'Saved';
        $('notes').value = '';
        refreshRecent();
      }, fail('Save'));
    };
    setInterval(tick, 1000);
  }

  function start() {
    wire();
    var port = Number(location.port) || 48443;
    SoftphoneBridge.connect({ port: port }).then(function (connected) {
      phone = connected;
      phone.on('state', render);
      phone.on('callEnded', function () { refreshRecent(); });
      phone.on('callNotesSubmitted', function () { refreshRecent(); });
      phone.on('audioTest', onAudioTest);
      phone.on('audioDevicesChanged', function (change) {
        if (change.available) { plugged = change.available; renderAudio(); }
        if (change.inUse) notice('The call now uses ' + deviceNames(change.inUse) + '.');
      });
      phone.on('disconnected', function () { notice('Reconnecting to the softphone…', true); });
      phone.on('connected', function () { notice('Connected to the softphone.'); refreshRecent(); refreshDevices(); });
      notice('Connected to the softphone.');
      render(phone.state);
      refreshRecent();
      refreshDevices();
    }, function (error) { notice(error.message, true); });
  }

  start();
})();
