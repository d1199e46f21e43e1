"""A scripted PJSIP phone for the call-control tests: the second, independent SIP stack.

It registers at the lab's Kamailio, plays a tone into every call, records what each call
hears to its own WAV file, and takes commands on stdin (one per line):

    dial URI            call URI
    hangup              hang up every call
    transfer URI        blind transfer of the first call to URI (REFER)
    replace             attended transfer: the first call's party replaces us in the second
                        call (REFER with Replaces to the second call's party)
    conference          mixes the first two calls: each hears the other and us (PJSIP's
                        conference bridge)

It reports on stdout, one line each: `registered`, `incoming <n>`, `confirmed <n>`,
`disconnected <n> <status>`, `transfer-status <n> <status>`, `replaced <old> <new>`, where
<n> numbers the calls in the order they started. Recordings are RECORD_DIR/call-<n>.wav.

Usage: pjsip_phone.py REGISTRAR_PORT USER TONE_HZ RECORD_DIR
"""

import os
import sys
import threading
import queue

import pjsua2 as pj

registrar_port, user, tone_hz, record_dir = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
commands = queue.Queue()
calls = []


def say(line):
    print(line, flush=True)


class StderrLog(pj.LogWriter):
    """PJSIP's own log lines go to stderr (the test's log file): on stdout a line it writes without
    a newline would run into the next of ours, which the test reads line by line."""

    def write(self, entry):
        message = entry.msg if entry.msg.endswith("\n") else entry.msg + "\n"
        sys.stderr.write(message)
        sys.stderr.flush()


class Call(pj.Call):
    def __init__(self, account, call_id=pj.PJSUA_INVALID_ID):
        pj.Call.__init__(self, account, call_id)
        self.number = len(calls)
        calls.append(self)
        self.recorder = None
        self.tone = None

    def onCallState(self, prm):
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            say(f"confirmed {self.number}")
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            say(f"disconnected {self.number} {info.lastStatusCode}")
            if self.recorder is not None:
                # Closing the recorder writes the WAV header's final length.
                del self.recorder
                self.recorder = None

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(media.index)
            if self.tone is None:
                self.tone = pj.ToneGenerator()
                self.tone.createToneGenerator(16000, 1)
                desc = pj.ToneDesc()
                desc.freq1 = int(tone_hz)
                desc.freq2 = 0
                desc.on_msec = 10000
                desc.off_msec = 0
                desc.volume = 0
                tones = pj.ToneDescVector()
                tones.append(desc)
                self.tone.play(tones, True)
            self.tone.startTransmit(audio)
            if self.recorder is None:
                self.recorder = pj.AudioMediaRecorder()
                self.recorder.createRecorder(os.path.join(record_dir, f"call-{self.number}.wav"))
            audio.startTransmit(self.recorder)

    def onCallTransferRequest(self, prm):
        # The call the transfer makes is a new Call object of ours.
        prm.newCall = Call(self.account_ref)
        prm.newCall.account_ref = self.account_ref
        prm.statusCode = 202

    def onCallTransferStatus(self, prm):
        say(f"transfer-status {self.number} {prm.statusCode}")
        # As a desk phone does: a transfer that succeeded ends our call (RFC 5589 §6).
        if prm.finalNotify and 200 <= prm.statusCode < 300:
            self.hangup(pj.CallOpParam(True))

    def onCallReplaced(self, prm):
        new = Call(self.account_ref, prm.newCallId)
        prm.newCall = new
        say(f"replaced {self.number} {new.number}")


class Account(pj.Account):
    def onRegState(self, prm):
        if prm.code == 200 and self.getInfo().regIsActive:
            say("registered")

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        call.account_ref = self
        say(f"incoming {call.number}")
        answer = pj.CallOpParam()
        answer.statusCode = 200
        call.answer(answer)


def read_commands():
    for line in sys.stdin:
        commands.put(line.strip())
    commands.put("quit")


def main():
    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    # PJSIP_LOG_LEVEL=5 prints every SIP message, for debugging a test.
    level = int(os.environ.get("PJSIP_LOG_LEVEL", "3"))
    config.logConfig.level = level
    config.logConfig.consoleLevel = level
    log_writer = StderrLog()
    config.logConfig.writer = log_writer
    config.medConfig.clockRate = 16000
    endpoint.libInit(config)
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    # PCMU only: every stack in the lab speaks it.
    for codec in endpoint.codecEnum2():
        endpoint.codecSetPriority(codec.codecId, 255 if codec.codecId.startswith("PCMU/") else 0)

    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:{user}@127.0.0.1"
    account_config.regConfig.registrarUri = f"sip:127.0.0.1:{registrar_port}"
    account_config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, f"secret{user}"))
    account = Account()
    account.create(account_config)

    threading.Thread(target=read_commands, daemon=True).start()
    while True:
        endpoint.libHandleEvents(20)
        try:
            command = commands.get_nowait()
        except queue.Empty:
            continue
        verb, _, argument = command.partition(" ")
        if verb == "quit":
            break
        if verb == "dial":
            call = Call(account)
            call.account_ref = account
            call.makeCall(argument, pj.CallOpParam(True))
        elif verb == "hangup":
            endpoint.hangupAllCalls()
        elif verb == "transfer":
            calls[0].xfer(argument, pj.CallOpParam(True))
        elif verb == "replace":
            calls[0].xferReplaces(calls[1], pj.CallOpParam(True))
        elif verb == "conference":
            first, second = calls[0].getAudioMedia(-1), calls[1].getAudioMedia(-1)
            first.startTransmit(second)
            second.startTransmit(first)
        say(f"done {verb}")
    endpoint.hangupAllCalls()
    for _ in range(50):
        endpoint.libHandleEvents(20)
    endpoint.libDestroy()


main()
