// Type declarations for the softphone-bridge shim and protocol v1.
// They mirror daemon/src/protocol/; daemon/tests/protocol_sync.rs and js-shim/test/types.test.mjs
// keep the two (and examples/messages/) in step.

declare namespace SoftphoneBridge {
  // ------------------------------------------------------------------ wire: shared

  type RequestId = number | string;

  type ErrorCode =
    | 'invalid_json'
    | 'invalid_request'
    | 'unknown_action'
    | 'invalid_params'
    | 'rate_limited'
    | 'no_line'
    | 'unknown_status'
    | 'unknown_call'
    | 'invalid_number'
    | 'not_supported'
    | 'invalid_provisioning'
    | 'call_in_progress'
    | 'forbidden'
    | 'storage_unavailable'
    | 'blacklisted'
    | 'internal';

  /** Codes the shim itself raises (connection trouble, timeouts). */
  type ShimErrorCode =
    | 'not_connected'
    | 'invalid_options'
    | 'aborted'
    | 'disconnected'
    | 'timeout'
    | 'certificate_not_trusted'
    | 'origin_not_approved'
    | 'origin_denied'
    | 'origin_insecure'
    | 'local_network_blocked'
    | 'daemon_not_running'
    | 'bridge_unavailable'
    | 'csp_blocked';

  interface ErrorBody {
    code: ErrorCode;
    message: string;
  }

  // ------------------------------------------------------------------ actions (requests)

  interface UpdatePresenceParams {
    softphoneId: string;
  }
  type DispositionParams = string[];
  interface PartnerConfigParams {
    partnerId: string;
    businessSegmentId?: string;
    channelOriginId?: string;
  }
  interface StartCallParams {
    dialTo: string;
    dialFrom?: string;
    partnerId?: string;
    businessSegmentId?: string;
    channelOriginId?: string;
    participantType?: string;
  }
  interface PortholeCallParams {
    destination: string;
    /** Sent to the server in IT's campaign header (default X-Campaign). */
    campaign?: string;
    /** Only a caller ID IT allows ([dialling] caller_ids); `invalid_params` otherwise. */
    callerid?: string;
    /** uContact's outbound campaign: the campaign when `campaign` is absent. */
    outqueue?: string;
    /** uContact's two-step call parameters: taken, not used (the daemon is the agent's phone). */
    agent?: string;
    phone?: string;
    tech?: string;
    context?: string;
  }
  interface CallRefParams {
    conversationId?: string;
    /** Porthole spelling of conversationId. */
    guid?: string;
  }
  interface DtmfParams {
    digits: string;
    conversationId?: string;
  }
  interface TransferParams {
    /** A number or SIP URI, by the same policy as `start_call`. */
    to: string;
    conversationId?: string;
  }
  interface ConnectCallsParams {
    /** The call whose party is handed over (usually the held one). */
    conversationId: string;
    /** The consultation call, whose party takes it. */
    withConversationId: string;
  }
  interface ConferenceParams {
    /** Connected calls to mix with the agent (with those already in it, 2 to 4). */
    conversationIds: string[];
  }
  interface SplitParams {
    conversationId: string;
  }
  interface ShotgunCallParams {
    /** 1 to 5 numbers or SIP URIs; the first to answer is the call. */
    dialTo: string[];
    partnerId?: string;
  }
  interface SubmitNotesParams {
    conversationId: string;
    /** A code from the page's list, or a dialler disposition: RESPOOL, RESPOOLALTERNATIVE, BLACKLIST, SCHEDULE. */
    disposition: string;
    notes?: string;
    /** With SCHEDULE: when to call back (RFC 3339, in the future, within a year). */
    scheduleAt?: string;
  }
  interface AckParams {
    seq: number;
  }
  interface ListRecordingsParams {
    /** 1 to 100, default 50. */
    limit?: number;
    /** RFC 3339: recordings that started before this. */
    before?: string;
    /** Only this call's recordings. */
    conversationId?: string;
  }
  /** One number or many (uContact's single and multiple blacklist calls). */
  interface BlacklistParams {
    number?: string;
    numbers?: string[];
  }
  interface TagRecordingParams {
    id: string;
    /** Replaces the recording's tags: at most 20, each 1 to 64 characters. */
    tags: string[];
  }
  interface GetHistoryParams {
    /** 1 to 100, default 50. */
    limit?: number;
    /** RFC 3339: calls that started before this (the last `startedAt` of the previous page). */
    before?: string;
  }

  /** A daemon log line, sent while the seed's `debug_html` is on. */
  interface LogLine {
    level: 'error' | 'warn' | 'info' | 'debug' | 'trace';
    message: string;
  }

  /** The seed platform's provisioning parameters, with its datatypes (integers without quotes). */
  interface ProvisionParams {
    auth_key: string;
    /** `wss://host[:port][/path]` (or `ws://`), or `host[:port]` meaning wss. */
    server: string;
    turn_port: number;
    customer_id: number;
    user_id: number;
    username: string;
    password: string;
    /** `2026-12-31T18:00:00Z` (RFC 3339) or `2026-12-31 18:00:00` (UTC); must be in the future. */
    expire_date: string;
    debug_console?: boolean | 'true' | 'false';
    debug_html?: boolean | 'true' | 'false';
  }
  interface ProvisionResult {
    extension: string;
    expiresAt: string;
  }

  /** Every action and its params. */
  interface ActionParams {
    get_state: Record<string, never> | undefined;
    update_presence: UpdatePresenceParams;
    disposition: DispositionParams;
    partner_config: PartnerConfigParams;
    start_call: StartCallParams;
    call: PortholeCallParams;
    callWithPhone: PortholeCallParams;
    answer: CallRefParams | undefined;
    reject: CallRefParams | undefined;
    hangup: CallRefParams | undefined;
    hold: CallRefParams | undefined;
    unhold: CallRefParams | undefined;
    mute: CallRefParams | undefined;
    unmute: CallRefParams | undefined;
    dtmf: DtmfParams;
    transfer: TransferParams;
    connect_calls: ConnectCallsParams;
    shotgun_call: ShotgunCallParams;
    conference: ConferenceParams;
    split: SplitParams;
    submit_notes: SubmitNotesParams;
    ack: AckParams;
    get_history: GetHistoryParams | undefined;
    start_recording: CallRefParams | undefined;
    pause_recording: CallRefParams | undefined;
    resume_recording: CallRefParams | undefined;
    stop_recording: CallRefParams | undefined;
    list_recordings: ListRecordingsParams | undefined;
    tag_recording: TagRecordingParams;
    blacklist_add: BlacklistParams;
    blacklist_remove: BlacklistParams;
    blacklist_list: Record<string, never> | undefined;
    set_audio_devices: AudioDevices;
    list_audio_devices: Record<string, never> | undefined;
    test_audio: TestAudioParams | undefined;
    provision: ProvisionParams;
    logout: Record<string, never> | undefined;
  }
  type ActionName = keyof ActionParams;

  type Request = {
    [A in ActionName]: undefined extends ActionParams[A]
      ? { id: RequestId; action: A; params?: Exclude<ActionParams[A], undefined> }
      : { id: RequestId; action: A; params: ActionParams[A] };
  }[ActionName];

  // ------------------------------------------------------------------ state snapshot

  type LineState = 'none' | 'registering' | 'registered' | 'unregistered' | 'failed';

  interface PresenceStatus {
    softphoneId: string;
    name: string;
    /** Incoming calls ring in this status; `false` is do-not-disturb (they are declined). */
    acceptCalls: boolean;
    /** The dialler's ready state: calls bridged to the agent are answered only when ready. */
    ready: boolean;
  }
  interface LineInfo {
    state: LineState;
    extension: string | null;
    /** Why the line is `failed` or `unregistered` (as the last `registrationChanged` said); absent otherwise. */
    reason?: string;
  }
  interface CallInfo {
    conversationId: string;
    partnerId: string | null;
    callType: 'inbound' | 'outbound';
    state: 'dialing' | 'ringing' | 'active' | 'held';
    remote: string;
    muted: boolean;
    /** The far end put the call on hold. */
    remoteHold: boolean;
    /** RTP/RTCP statistics, once media flows; refreshed every RTCP report. */
    quality?: CallQuality;
    /** The local conference the call is mixed in. */
    conferenceId?: string;
    /** While the call is recorded. */
    recording?: 'recording' | 'paused';
    /** Why the call has no working audio device (see `audioDeviceUnavailable`). */
    audioUnavailable?: string;
    /** The devices the call's audio runs on now (the system default's while a chosen one is
     *  unplugged); absent for the file backend. */
    audioDevices?: DevicesInUse;
  }
  interface DevicesInUse {
    input: string;
    output: string;
  }
  /** `test_audio`: 1 to 10 seconds (3 when left out). */
  interface TestAudioParams {
    seconds?: number;
  }
  /** `test_audio` running, the microphone's RMS level ten times a second, then `done` (with
   *  `reason` when the devices did not open). Not replayed. */
  interface AudioTest {
    /** dBFS over the last 100 ms; −100 is silence. */
    inputLevel?: number;
    done: boolean;
    reason?: string;
  }
  /** The devices plugged in (`list_audio_devices`). */
  interface AudioDeviceList {
    inputs: string[];
    outputs: string[];
    defaultInput: string | null;
    defaultOutput: string | null;
  }
  /** The chosen devices, and what changed: `inUse`, a call's devices switching by themselves
   *  (a chosen headset unplugged or plugged back); `available`, a device plugged or unplugged. */
  interface AudioDevicesChanged {
    input: string | null;
    output: string | null;
    ringer: string | null;
    inUse?: DevicesInUse & { conversationId: string };
    available?: AudioDeviceList;
  }
  interface CallQuality {
    codec: string;
    srtp: boolean;
    packetsSent: number;
    packetsReceived: number;
    packetsLost: number;
    jitterMs: number;
    concealedFrames: number;
    jitterBufferMs: number;
    remotePacketsLost: number | null;
    remoteJitterMs: number | null;
    roundTripMs: number | null;
    /** RTP/RTCP packets dropped because they came from an address the call did not negotiate. */
    foreignPacketsDropped: number;
  }
  interface Snapshot {
    line: LineInfo;
    presence: PresenceStatus;
    statuses: PresenceStatus[];
    dispositions: string[];
    partnerConfig: PartnerConfigParams | null;
    calls: CallInfo[];
    /** The devices the agent chose for calls (`null`: the system default). */
    audioDevices: AudioDevices;
    /** Whether events, notes and the call history are kept on disk. */
    storage: StorageInfo;
  }
  /** Audio devices by name (`softphone-bridge devices` lists them); `null` is the system default. In
   *  `set_audio_devices` a field left out keeps its device and `""` means the system default. */
  interface AudioDevices {
    input?: string | null;
    output?: string | null;
    ringer?: string | null;
  }
  interface StorageInfo {
    /** `failing`: writes fail (disk full, read-only), events are kept in memory only. */
    state: 'ok' | 'failing' | 'unavailable';
    /** What went wrong, naming the file. */
    reason?: string;
    /** Events dropped by retention before every origin acknowledged them. */
    droppedEvents: number;
  }
  /** One past call (`get_history`). */
  interface CallRecord {
    conversationId: string;
    partnerId: string | null;
    callType: 'inbound' | 'outbound';
    number: string;
    /** RFC 3339. */
    startedAt: string;
    answeredAt: string | null;
    /** Whole seconds; null while the call is up. */
    duration: number | null;
    cause: EndCause | null;
    disposition: string | null;
    notes: string | null;
    /** The id of the call's (last) recording. */
    recording: string | null;
  }
  type RecordingState = 'recording' | 'paused' | 'stopped' | 'failed';
  /** One recording (`list_recordings`): stereo Ogg Opus in DATA_DIR/recordings/, agent left, far end right. */
  interface RecordingInfo {
    id: string;
    conversationId: string;
    file: string | null;
    startedAt: string;
    state: RecordingState;
    /** Seconds of audio, once stopped (paused time is not in it). */
    duration: number | null;
    reason: string | null;
    tags: string[];
  }
  interface RecordingChanged {
    conversationId: string;
    recordingId: string;
    state: RecordingState;
    /** The file's name in DATA_DIR/recordings/, when it started. */
    file?: string;
    /** Seconds of audio, once stopped. */
    duration?: number;
    /** Why it failed or is incomplete. */
    reason?: string;
  }
  interface RecordingTagged {
    conversationId: string;
    recordingId: string;
    tags: string[];
  }

  // ------------------------------------------------------------------ events

  interface Hello {
    version: 1;
    /** The data folder's event history: the same across restarts. */
    instance: string;
    /** When the daemon process started (RFC 3339): a new value means it restarted. */
    startedAt: string;
    resumed: boolean;
    lastSeq: number;
    state: Snapshot;
  }
  interface StatusChanged {
    softphoneId: string;
    name: string;
    acceptCalls: boolean;
    ready: boolean;
  }
  interface DispositionsChanged {
    codes: string[];
  }
  interface RegistrationChanged {
    state: LineState;
    extension?: string;
    reason?: string;
  }
  interface OutboundCallInitiated {
    partnerId: string | null;
    conversationId: string;
    /** For `shotgun_call`, every number, comma-separated. */
    dialledTo: string;
    /** Only for `shotgun_call`: its numbers. */
    dialledToAll?: string[];
  }
  interface CallRinging {
    conversationId: string;
  }
  interface IncomingCall {
    partnerId: string | null;
    conversationId: string;
    callerANI: string;
    language: string;
  }
  interface CallAccepted {
    partnerId: string | null;
    conversationId: string;
    callerANI: string;
    language: string;
    ivrExitPath: string | null;
    channelName: string | null;
    reservationStartDate: string | null;
    specialEvent: string | null;
    escalationType: string | null;
    recordingStatus: 'ON' | 'OFF';
    /** Only for `shotgun_call`: the number that answered. */
    dialledTo?: string;
  }
  /** Why a call ended (an addition to the contract). */
  type EndCause =
    | 'local'
    | 'remote'
    | 'busy'
    | 'declined'
    | 'no_answer'
    | 'rejected'
    | 'timeout'
    | 'failed'
    | 'transferred'
    | 'network'
    /** The daemon stopped while the call was up or ringing; reported when it started again. */
    | 'interrupted'
    /** Declined by itself: the agent's status takes no calls (do-not-disturb). */
    | 'dnd'
    /** Declined by itself: a bridged (auto-answer) call while the agent is not ready. */
    | 'not_ready';
  interface CallRejected {
    partnerId: string | null;
    conversationId: string;
    reason: 'active' | 'passive';
    cause: EndCause;
    /** The SIP final response that ended it, when one did. */
    sipStatus?: number;
    sipReason?: string;
  }
  interface CallEnded {
    partnerId: string | null;
    conversationId: string;
    duration: number;
    disposition: string | null;
    notes: string | null;
    callType: 'inbound' | 'outbound';
    /** Why it ended: `timeout` when the far end vanished mid-call (session timer, no media). */
    cause: EndCause;
    /** The SIP final response that ended it, when one did (`486`, `Busy Here`). */
    sipStatus?: number;
    sipReason?: string;
  }
  interface CallHoldChanged {
    conversationId: string;
    held: boolean;
    by: 'agent' | 'remote';
  }
  interface CallMuteChanged {
    conversationId: string;
    muted: boolean;
  }
  /** The call's media started without a working microphone or speaker; it carries silence. */
  interface AudioDeviceUnavailable {
    conversationId: string;
    reason: string;
  }
  interface CallTransferred {
    conversationId: string;
    to: string;
    /** `remote`: the far end transferred the agent; the call goes on with `to`. */
    kind: 'blind' | 'attended' | 'remote';
    result: 'accepted' | 'failed';
    reason?: string;
    /** For `attended`: the consultation call. */
    withConversationId?: string;
  }
  /** Who is mixed with the agent; empty when the conference ended. */
  interface ConferenceChanged {
    conferenceId: string;
    conversationIds: string[];
  }
  interface DtmfReceived {
    conversationId: string;
    digit: string;
  }
  interface CallNotesSubmitted {
    partnerId: string | null;
    conversationId: string;
    disposition: string;
    notes: string;
    /** With SCHEDULE: when the callback is due (RFC 3339, UTC). */
    scheduleAt?: string;
  }
  /** A callback scheduled with SCHEDULE is due (or came due while the daemon was down). */
  interface CallbackDue {
    number: string;
    conversationId: string;
    at: string;
  }

  /** Every event and its payload. */
  interface EventPayloads {
    hello: Hello;
    statusChanged: StatusChanged;
    dispositionsChanged: DispositionsChanged;
    partnerConfigChanged: PartnerConfigParams;
    registrationChanged: RegistrationChanged;
    outboundCallInitiated: OutboundCallInitiated;
    callRinging: CallRinging;
    incomingCall: IncomingCall;
    callAccepted: CallAccepted;
    callRejected: CallRejected;
    callEnded: CallEnded;
    callNotesSubmitted: CallNotesSubmitted;
    callHoldChanged: CallHoldChanged;
    callMuteChanged: CallMuteChanged;
    audioDeviceUnavailable: AudioDeviceUnavailable;
    audioDevicesChanged: AudioDevicesChanged;
    audioTest: AudioTest;
    callTransferred: CallTransferred;
    conferenceChanged: ConferenceChanged;
    dtmfReceived: DtmfReceived;
    storageChanged: StorageInfo;
    recordingChanged: RecordingChanged;
    recordingTagged: RecordingTagged;
    callbackDue: CallbackDue;
    log: LogLine;
  }
  type EventName = keyof EventPayloads;

  type EventMessage = {
    [E in EventName]: { event: E; seq: number; payload: EventPayloads[E] };
  }[EventName];

  type Reply =
    | { id: RequestId; ok: true; result: Record<string, unknown> }
    | { id: RequestId | null; ok: false; error: ErrorBody };

  type ServerMessage = EventMessage | Reply;

  // ------------------------------------------------------------------ the shim's API

  interface ConnectOptions {
    /** The port shim.js was loaded from, else 48443. */
    port?: number;
    /** Terminal servers: the range IT gave `[api] port` (e.g. '48443-48543' or [48443, 48543]). The shim
     *  finds this OS user's daemon in it (other users' daemons refuse the connection) and uses that port. */
    ports?: string | [number, number];
    /** When the agent has not approved this page yet: report it once through `onBlocked`, then wait and
     *  connect by itself once the agent allows (rejects with `origin_denied` if the agent denies). */
    waitForApproval?: boolean;
    onBlocked?: (error: BridgeError) => void;
    /** How often to ask whether the agent decided, while waiting (default 2000 ms). */
    approvalPollMs?: number;
    /** Stop waiting after this long (rejects with `origin_not_approved`); default: wait until decided. */
    approvalTimeoutMs?: number;
    /** Stop waiting when aborted (rejects with `aborted`). */
    signal?: AbortSignal;
    /** 'localhost' (default), '127.0.0.1' or '::1'. */
    host?: string;
    /** 'direct' (default) or 'iframe' (through https://localhost:PORT/bridge.html). */
    mode?: 'direct' | 'iframe';
    minRetryMs?: number;
    maxRetryMs?: number;
    bridgeTimeoutMs?: number;
    /** Acknowledge each event once the listeners have run (default true); false: call `ack()` yourself,
     *  e.g. after saving a `callEnded` to your server. Unacknowledged events are replayed on the next connection. */
    autoAck?: boolean;
    /** How long to gather events into one `ack` (default 250 ms). */
    ackDelayMs?: number;
    /** WindowProxy only: deliver events to listeners too (default true; false for `Porthole.WindowProxy`). */
    events?: boolean;
  }

  class BridgeError extends Error {
    code: ErrorCode | ShimErrorCode;
    details?: unknown;
  }

  interface ShimEvents extends EventPayloads {
    state: Snapshot;
    /** A ringing inbound call, as a Call object (Twilio's `device.on('incoming')`). */
    incoming: Call;
    connected: { resumed: boolean; restarted: boolean };
    disconnected: { code: number; reason: string; willRetry: boolean };
  }

  class Phone {
    readonly state: Snapshot | null;
    readonly connected: boolean;
    readonly instance: string | null;
    readonly startedAt: string | null;
    readonly lastSeq: number | null;
    on<E extends keyof ShimEvents>(event: E, fn: (payload: ShimEvents[E], message?: EventMessage) => void): () => void;
    on(event: '*', fn: (event: string, payload: unknown, message?: EventMessage) => void): () => void;
    off(event: string, fn: (...args: any[]) => void): void;
    request<A extends ActionName>(action: A, params?: ActionParams[A]): Promise<Record<string, unknown>>;
    getState(): Promise<Snapshot>;
    updatePresence(params: UpdatePresenceParams): Promise<StatusChanged>;
    setDispositions(codes: DispositionParams): Promise<Record<string, never>>;
    setPartnerConfig(params: PartnerConfigParams): Promise<Record<string, never>>;
    startCall(params: StartCallParams): Promise<{ conversationId: string }>;
    /** `guid` is the conversation id (Porthole naming). */
    call(params: PortholeCallParams): Promise<{ guid: string; conversationId: string }>;
    callWithPhone(params: PortholeCallParams): Promise<{ guid: string; conversationId: string }>;
    answer(params?: CallRefParams): Promise<{ conversationId: string }>;
    reject(params?: CallRefParams): Promise<{ conversationId: string }>;
    hangup(params?: CallRefParams): Promise<{ conversationId: string }>;
    /** Resolves once the re-INVITE is sent; `callHoldChanged` follows when the far end agrees. */
    hold(params?: CallRefParams): Promise<{ conversationId: string; held: boolean }>;
    unhold(params?: CallRefParams): Promise<{ conversationId: string; held: boolean }>;
    mute(params?: CallRefParams): Promise<{ conversationId: string; muted: boolean }>;
    unmute(params?: CallRefParams): Promise<{ conversationId: string; muted: boolean }>;
    dtmf(params: DtmfParams): Promise<{ conversationId: string }>;
    /** Resolves once the REFER is sent; `callTransferred` says how it went. */
    transfer(params: TransferParams): Promise<{ conversationId: string; to: string }>;
    /** Attended transfer; resolves once the REFER is sent, `callTransferred` says how it went. */
    connectCalls(params: ConnectCallsParams): Promise<{ conversationId: string; withConversationId: string; to: string }>;
    /** Rings up to 5 numbers at once; `callAccepted.dialledTo` names the one that answered. */
    shotgunCall(params: ShotgunCallParams): Promise<{ conversationId: string }>;
    /** `conferenceChanged` follows once the calls are mixed. */
    conference(params: ConferenceParams): Promise<{ conferenceId: string; conversationIds: string[] }>;
    /** Takes a call out of the conference, on hold. */
    split(params: SplitParams): Promise<{ conversationId: string }>;
    /** For a call in progress or any call of the history (after-call work). */
    submitNotes(params: SubmitNotesParams): Promise<Record<string, never>>;
    /** The page has processed every event up to `seq`; done for you unless `autoAck: false`. */
    ack(seq: number): Promise<{ acked: number }>;
    getHistory(params?: GetHistoryParams): Promise<CallRecord[]>;
    /** Records the call; `recordingChanged` follows. */
    startRecording(params?: CallRefParams): Promise<{ conversationId: string; recordingId: string }>;
    pauseRecording(params?: CallRefParams): Promise<{ conversationId: string; recordingId: string }>;
    resumeRecording(params?: CallRefParams): Promise<{ conversationId: string; recordingId: string }>;
    stopRecording(params?: CallRefParams): Promise<{ conversationId: string; recordingId: string }>;
    listRecordings(params?: ListRecordingsParams): Promise<RecordingInfo[]>;
    tagRecording(params: TagRecordingParams): Promise<{ id: string; tags: string[] }>;
    blacklistAdd(params: BlacklistParams): Promise<{ added: string[]; alreadyListed: string[] }>;
    blacklistRemove(params: BlacklistParams): Promise<{ removed: string[]; notListed: string[] }>;
    /** The agent's numbers; IT's machine-wide list is only counted. */
    blacklistList(): Promise<{ numbers: string[]; machineCount: number }>;
    /** The microphone, speaker and ringer for the next calls (kept across restarts). */
    setAudioDevices(params: AudioDevices): Promise<AudioDevices>;
    /** The devices plugged in, for a picker. */
    listAudioDevices(): Promise<AudioDeviceList>;
    /** A test tone on the output while the microphone's level comes as `audioTest` events;
     *  between calls, 1 to 10 seconds (3). */
    testAudio(params?: TestAudioParams): Promise<{ seconds: number }>;
    provision(params: ProvisionParams): Promise<ProvisionResult>;
    logout(): Promise<Record<string, never>>;
    /** Places a call and resolves with its Call object (Twilio's `device.connect`). */
    dial(params: string | StartCallParams): Promise<Call>;
    /** The calls in progress, as objects. */
    calls(): Call[];
    getCall(conversationId: string): Call | null;
    close(): void;
  }

  /** One call, in the style of the Twilio Voice SDK's `Call`. */
  interface CallEvents {
    ringing: CallRinging;
    accepted: CallAccepted;
    rejected: CallRejected;
    ended: CallEnded;
    muted: boolean;
    held: boolean;
    /** A DTMF digit the far end pressed. */
    digits: string;
    transferred: CallTransferred;
    /** The call has no working audio device (the reason). */
    audioUnavailable: string;
    /** Twilio's names: the Call itself, when `accepted` / `ended` fire. */
    accept: Call;
    disconnect: Call;
  }
  class Call {
    readonly id: string;
    readonly conversationId: string;
    readonly direction: 'inbound' | 'outbound';
    /** The far end's number. */
    readonly remote: string;
    /** `pending` while ringing, `open` once answered, `closed` after it ended. */
    readonly status: 'pending' | 'open' | 'closed';
    readonly muted: boolean;
    readonly held: boolean;
    /** Why it has no working audio device, if so. */
    readonly audioUnavailable: string | null;
    on<E extends keyof CallEvents>(event: E, fn: (value: CallEvents[E]) => void): () => void;
    off(event: keyof CallEvents, fn: (...args: any[]) => void): void;
    answer(): Promise<{ conversationId: string }>;
    reject(): Promise<{ conversationId: string }>;
    hangup(): Promise<{ conversationId: string }>;
    /** `mute()` mutes, `mute(false)` unmutes. */
    mute(shouldMute?: boolean): Promise<{ conversationId: string; muted: boolean }>;
    /** `hold()` holds, `hold(false)` resumes. */
    hold(shouldHold?: boolean): Promise<{ conversationId: string; held: boolean }>;
    sendDigits(digits: string): Promise<{ conversationId: string }>;
    transfer(to: string): Promise<{ conversationId: string; to: string }>;
    /** Twilio's names for `answer`, `hangup` and `muted`. */
    accept(): Promise<{ conversationId: string }>;
    disconnect(): Promise<{ conversationId: string }>;
    isMuted(): boolean;
  }

  function connect(options?: ConnectOptions): Promise<Phone>;
  function diagnose(options?: ConnectOptions): Promise<BridgeError>;

  /** Porthole-style proxy (uContact 003_…). */
  interface ProxyMessageEvent {
    /** `guid`: the call's id, or 0 when a call action failed (uContact's convention). */
    data: { guid?: string | 0; action?: string; event?: string; ok?: boolean; error?: ErrorBody; [key: string]: unknown };
  }
  class WindowProxy {
    constructor(options?: ConnectOptions);
    /** As Porthole's: the URL (and a target window name) are taken and not used. */
    constructor(url: string, options?: ConnectOptions | string);
    readonly ready: Promise<Phone>;
    post(message: { action: ActionName; [param: string]: unknown }): void;
    addEventListener(fn: (event: ProxyMessageEvent) => void): void;
    removeEventListener(fn: (event: ProxyMessageEvent) => void): void;
  }

  /** The Softphone contract (004_…) a CRM wrapper library implements. */
  type ContractCallbackEvent = 'disposition' | 'partner_config' | 'update_presence' | 'start_call';
  interface Wrapper {
    load(callback: <E extends ContractCallbackEvent>(eventType: E, payload: ActionParams[E]) => Promise<unknown>): void;
    incomingCall?(payload: IncomingCall): void;
    callAccepted?(payload: CallAccepted): void;
    callRejected?(payload: CallRejected): void;
    callEnded?(payload: CallEnded): void;
    callNotesSubmitted?(payload: CallNotesSubmitted): void;
    outboundCallInitiated?(payload: OutboundCallInitiated): void;
    statusChanged?(payload: StatusChanged): void;
    onError?(error: BridgeError, eventType: string): void;
  }
  function useWrapper(wrapper: Wrapper, options?: ConnectOptions): Promise<Phone>;

  const version: 1;
  const DEFAULT_PORT: number;
  /** Also the global `Porthole` when the page has none: uContact pages run unchanged. */
  const Porthole: { WindowProxy: typeof WindowProxy };
}

export = SoftphoneBridge;
export as namespace SoftphoneBridge;
