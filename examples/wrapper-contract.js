/*
 * A Salesforce-style CRM wrapper implementing the Softphone contract (004_…) on top of
 * softphone-bridge. Load the shim first, then this file:
 *
 *   <script src="https://localhost:48443/shim.js"></script>
 *   <script src="wrapper-contract.js"></script>
 *
 * The contract in one paragraph: the softphone calls `load(callback)` once; the wrapper calls
 * `callback(eventType, payload)` to ask the softphone for something (`disposition`,
 * `partner_config`, `update_presence`, `start_call`); the softphone calls the wrapper's
 * `incomingCall`, `callAccepted`, `callRejected`, `callEnded`, `callNotesSubmitted`,
 * `outboundCallInitiated` and `statusChanged` as things happen. Replace the `crm.*` stubs with
 * your CRM's API (Salesforce Open CTI: screenPop, saveLog, …).
 */
(function (global) {
  'use strict';

  // What the CRM does with each softphone event. Here: record it and log it.
  var crm = {
    events: [],
    record: function (name, payload) {
      crm.events.push({ name: name, payload: payload });
      if (global.console) global.console.info('[crm]', name, payload);
    },
    screenPop: function (callerANI) { crm.record('screenPop', { callerANI: callerANI }); },
    saveCallLog: function (call) { crm.record('saveCallLog', call); }
  };

  var wrapper = {
    /** The contract's entry point: keep the callback; send dispositions and partner config. */
    load: function (callback) {
      this.notify = callback;
      crm.record('load', {});
      callback('disposition', ['Sale', 'No answer', 'Call back', 'Wrong number']);
      callback('partner_config', {
        partnerId: '215fd887-39be-4935-981f-2670d6afeaa7',
        businessSegmentId: 'd6afeaa7-39be-4935-981f-2670215fd887',
        channelOriginId: '57053e21-0440-4689-a27a-513d7dceebde'
      });
    },

    // ---- softphone → CRM (contract events)
    incomingCall: function (p) { crm.screenPop(p.callerANI); crm.record('incomingCall', p); },
    callAccepted: function (p) { crm.record('callAccepted', p); },
    callRejected: function (p) { crm.record('callRejected', p); },
    callEnded: function (p) { crm.saveCallLog(p); crm.record('callEnded', p); },
    callNotesSubmitted: function (p) { crm.record('callNotesSubmitted', p); },
    outboundCallInitiated: function (p) { crm.record('outboundCallInitiated', p); },
    statusChanged: function (p) { crm.record('statusChanged', p); },
    onError: function (error, eventType) { crm.record('error', { eventType: eventType, code: error.code, message: error.message }); },

    // ---- CRM → softphone (what the CRM's buttons call)
    clickToDial: function (number) {
      return this.notify('start_call', {
        partnerId: '215fd887-39be-4935-981f-2670d6afeaa7',
        dialTo: number
      });
    },
    setPresence: function (softphoneId) {
      return this.notify('update_presence', { softphoneId: softphoneId });
    }
  };

  global.crmWrapper = wrapper;
  global.crm = crm;
  wrapper.ready = global.SoftphoneBridge.useWrapper(wrapper, { port: global.SOFTPHONE_BRIDGE_PORT || 48443 });
  wrapper.ready.catch(function (error) { crm.record('error', { code: error.code, message: error.message }); });
})(typeof globalThis !== 'undefined' ? globalThis : this);
