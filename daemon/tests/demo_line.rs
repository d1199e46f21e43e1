//! The built-in demo line: with no `[account]`, the line registers with the daemon's own
//! loopback service, and calling `echo` sends the agent's voice back — asserted on the tone.

mod common;
mod lab;

use std::time::Duration;

use common::{CRM, Daemon, eventually};
use lab::sound_server::{self, SoundServer};
use lab::{analyse, read_wav, write_tone};
use serde_json::json;

/// The demo line with a 1 kHz tone as the agent's microphone; where what the agent hears goes.
fn demo_with_a_tone() -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tone, heard) = (dir.path().join("mic.wav"), dir.path().join("heard.wav"));
    write_tone(&tone, 16000, 1000.0, 0.5, 10.0);
    let daemon = Daemon::start(&format!(
        "[demo]\nline = true\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        tone.display(),
        heard.display()
    ));
    (dir, heard, daemon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_echo_on_the_demo_line_plays_your_voice_back() {
    let (_dir, heard, daemon) = demo_with_a_tone();
    let mut page = daemon.connect(CRM).await;
    if page.hello()["payload"]["state"]["line"]["state"] != "registered" {
        let registered = page.event("registrationChanged").await;
        assert_eq!(registered["payload"]["state"], "registered", "{registered}");
        assert_eq!(registered["payload"]["extension"], "agent");
    }
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    eventually("two seconds of echo", Duration::from_secs(15), || {
        (common::wav_seconds(&heard) > 2.0).then_some(())
    });
    // What the agent submits during the call is its outcome in `callEnded` (issue 11).
    page.request(
        "submit_notes",
        json!({"conversationId": id, "disposition": "Sale", "notes": "two seats"}),
    )
    .await;
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["disposition"], "Sale", "{ended}");
    assert_eq!(ended["payload"]["notes"], "two seats", "{ended}");
    let (rate, samples) = read_wav(&heard).expect("recording");
    let report = analyse(rate, &samples, &[1000.0, 441.0]);
    assert_eq!(
        report.peaks[0].0, 1000.0,
        "the agent hears their own tone back: {report:?}"
    );
    assert!(
        report.peaks[0].1 > 0.8 && report.level_dbfs > -15.0,
        "{report:?}"
    );

    let (reply, _) = page.request("start_call", json!({"dialTo": "1234"})).await;
    assert_eq!(reply["ok"], true);
    let ended = page.event("callEnded").await;
    assert_eq!(
        ended["payload"]["duration"], 0,
        "only echo answers on the demo line"
    );
}

/// The default `cpal` backend opens real devices for a call. On a machine without a sound card
/// ALSA's null device stands in (a throw-away HOME with `.asoundrc`), so this checks the device
/// path end to end — streams open, the call runs, no fallback to silence — though not the sound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_the_device_backend_opens_the_devices() {
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join(".asoundrc"),
        "pcm.!default { type plug slave.pcm \"null\" }\n",
    )
    .expect("asoundrc");
    let home_path = home.path().to_string_lossy().into_owned();
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("dir"),
        "[demo]\nline = true\n",
        &[("HOME", &home_path)],
        true,
    );
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    eventually("the devices to open", Duration::from_secs(10), || {
        daemon.log().contains("audio devices open").then_some(())
    });
    let (reply, _) = page.request("mute", json!({"conversationId": id})).await;
    assert_eq!(reply["result"]["muted"], true, "{reply}");
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    assert!(!daemon.log().contains("has no audio"), "{}", daemon.log());
}

/// A call through a sound server's devices, as on an agent's Linux desktop: the default
/// microphone and speaker of a private PulseAudio (`lab::sound_server`, reached through ALSA's
/// `pulse` plugin as any ALSA program reaches it). A tone said into the microphone comes back
/// from the echo on the speaker, at its pitch and near its level: the device path end to end
/// with real sound, where the test above can check only that streams open. Voice processing is
/// off, so what is checked is the devices' path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_a_sound_server_carries_the_voice_both_ways() {
    let server = SoundServer::start().expect("PulseAudio (`./dev setup` installs it)");
    let env = server.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let room = dir.path().join("room.raw");
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("dir"),
        "[demo]\nline = true\n[audio]\nbackend = \"cpal\"\necho_cancellation = \"off\"\nnoise_suppression = \"off\"\ngain_control = \"off\"\n",
        &env,
        true,
    );
    let mut page = daemon.connect(CRM).await;
    page.registered().await;

    let mut recorder = server.record(&room);
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    eventually("the devices to open", Duration::from_secs(10), || {
        daemon.log().contains("audio devices open").then_some(())
    });
    // Three seconds of 1 kHz at −6 dBFS; what is measured is the middle of what came back.
    let rate = f64::from(sound_server::RATE);
    let tone: Vec<i16> = (0..3 * sound_server::RATE)
        .map(|i| {
            ((2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / rate).sin() * 16384.0) as i16
        })
        .collect();
    let mut mouth = server.say(&tone);
    tokio::task::spawn_blocking(move || mouth.wait())
        .await
        .expect("join")
        .expect("pacat");
    // What the speaker plays lags what was said: recorded until the tone's end has come back.
    eventually("the tone's end heard", Duration::from_secs(10), || {
        let (said, heard) = sound_server::channels(&room);
        let start = said.iter().position(|s| s.unsigned_abs() > 8000)?;
        (heard.len() > start + tone.len() + sound_server::RATE as usize / 5).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    let _ = recorder.kill();
    let _ = recorder.wait();

    let (said, heard) = sound_server::channels(&room);
    let start = said.iter().position(|s| s.unsigned_abs() > 8000);
    let start = start.expect("the tone was said into the room");
    let heard = &heard[start..(start + tone.len()).min(heard.len())];
    let report = analyse(sound_server::RATE, heard, &[1000.0, 441.0]);
    assert_eq!(report.peaks[0].0, 1000.0, "the tone comes back: {report:?}");
    assert!(
        report.peaks[0].1 > 0.8 && report.level_dbfs > -15.0,
        "{report:?}\n{}",
        daemon.log()
    );
}

/// Muting is the agent's, not one page's: a second page (another tab, the tray) sees
/// `callMuteChanged` when the first mutes or unmutes, once per change, and its snapshot agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_hears_of_a_mute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("mic.wav");
    write_tone(&tone, 16000, 1000.0, 0.5, 10.0);
    let daemon = Daemon::start(&format!(
        "[demo]\nline = true\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\n",
        tone.display(),
        dir.path().join("heard.wav").display()
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let mut other = daemon.connect(CRM).await;
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    other.event("callAccepted").await;
    for muted in [true, true, false] {
        let method = if muted { "mute" } else { "unmute" };
        let (reply, _) = page.request(method, json!({"conversationId": id})).await;
        assert_eq!(reply["result"]["muted"], muted, "{reply}");
    }
    let first = other.event("callMuteChanged").await;
    assert_eq!(
        first["payload"],
        json!({"conversationId": id, "muted": true})
    );
    // The repeated mute said nothing: the next one is the unmute.
    let second = other.event("callMuteChanged").await;
    assert_eq!(
        second["payload"],
        json!({"conversationId": id, "muted": false})
    );
    let (state, _) = other.request("get_state", serde_json::Value::Null).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["muted"], false,
        "{state}"
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
}

/// `ring-me` makes the demo line call the agent back: `incomingCall` with no PBX, answered by the
/// page, and the answered call echoes the agent's tone like `echo`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_me_on_the_demo_line_rings_the_agent_back() {
    let (_dir, heard, daemon) = demo_with_a_tone();
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let (reply, _) = page
        .request("start_call", json!({"dialTo": "ring-me"}))
        .await;
    assert_eq!(reply["ok"], true, "{reply}");
    let declined = page.event("callEnded").await;
    assert_eq!(declined["payload"]["duration"], 0, "{declined}");
    assert_eq!(declined["payload"]["sipStatus"], 480, "{declined}");
    assert_eq!(
        declined["payload"]["sipReason"], "Calling you back in 3 seconds",
        "the page can say why: {declined}"
    );

    let (id, incoming) = page.incoming_call().await;
    assert_eq!(incoming["callerANI"], "ring-me", "{incoming}");
    let (answered, _) = page.request("answer", json!({"conversationId": id})).await;
    assert_eq!(answered["ok"], true, "{answered}");
    page.event("callAccepted").await;
    eventually("two seconds of echo", Duration::from_secs(15), || {
        (common::wav_seconds(&heard) > 2.0).then_some(())
    });
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
    let (rate, samples) = read_wav(&heard).expect("recording");
    let report = analyse(rate, &samples, &[1000.0, 441.0]);
    assert_eq!(
        report.peaks[0].0, 1000.0,
        "the call back echoes: {report:?}"
    );
}

/// A call with no working audio device says so (`audioDeviceUnavailable`, and the snapshot keeps
/// the reason) instead of looking healthy; the call itself goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_working_audio_device_says_so() {
    // The chosen headset is not plugged in and ALSA is told of no device at all (an empty
    // configuration), so there is no default to fall back to either.
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        "[demo]\nline = true\n[audio]\nbackend = \"cpal\"\ninput = \"No Such Headset 3000\"\noutput = \"No Such Headset 3000\"\n",
        &[("ALSA_CONFIG_PATH", "/dev/null")],
        true,
    );
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    let unavailable = page.event("audioDeviceUnavailable").await;
    assert_eq!(unavailable["payload"]["conversationId"], id.as_str());
    let reason = unavailable["payload"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("\"No Such Headset 3000\" not plugged in"),
        "{unavailable}"
    );
    let (state, _) = page.request("get_state", json!(null)).await;
    let call = &state["result"]["state"]["calls"][0];
    assert_eq!(call["state"], "active", "the call goes on: {call}");
    assert_eq!(call["audioUnavailable"], reason, "{call}");
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
}

/// `set_audio_devices`: every page hears of it, it survives a restart, and the line uses it for
/// the next call (here a headset that is not plugged in, on a machine with no device at all:
/// the call's `audioDeviceUnavailable` names it). Bad names are refused with their reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_audio_devices_are_kept_and_used_for_the_next_call() {
    const HEADSET: &str = "Desk Headset 7";
    let env = [("ALSA_CONFIG_PATH", "/dev/null")];
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("tempdir"),
        "[demo]\nline = true\n[audio]\nbackend = \"cpal\"\n",
        &env,
        true,
    );
    let mut page = daemon.connect(CRM).await;
    let (reply, _) = page
        .request(
            "set_audio_devices",
            json!({"input": HEADSET, "output": HEADSET}),
        )
        .await;
    assert_eq!(
        reply["result"],
        json!({"input": HEADSET, "output": HEADSET, "ringer": null}),
        "{reply}"
    );
    let changed = page.event("audioDevicesChanged").await;
    assert_eq!(changed["payload"]["input"], HEADSET, "{changed}");
    let (refused, _) = page
        .request("set_audio_devices", json!({"ringer": "bell\nring"}))
        .await;
    assert_eq!(refused["error"]["code"], "invalid_params", "{refused}");

    let dir = daemon.stop();
    let daemon = Daemon::launch(dir, "", &env, true);
    let mut page = daemon.connect(CRM).await;
    assert_eq!(
        page.hello()["payload"]["state"]["audioDevices"],
        json!({"input": HEADSET, "output": HEADSET, "ringer": null}),
        "kept across the restart"
    );
    page.registered().await;
    let id = page.start_call("echo").await;
    let unavailable = page.event("audioDeviceUnavailable").await;
    assert!(
        unavailable["payload"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(HEADSET)),
        "the line opened the chosen headset: {unavailable}"
    );
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
}

/// Audio that follows the headset: a call on the chosen headset keeps going when it is
/// unplugged (the system default takes over within a second or two, `audioDevicesChanged` with
/// `inUse` says so, and pickers hear that the list changed), and goes back to the headset when
/// it is plugged in again. ALSA's configuration in a throw-away HOME stands in for the hardware:
/// the headset is a named device there, unplugged by rewriting the file without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_follows_the_headset_out_and_back_in_without_dropping() {
    const HEADSET: &str = "Desk Headset 7";
    let home = tempfile::tempdir().expect("home");
    let asoundrc = home.path().join(".asoundrc");
    let plug = |plugged: bool| {
        let headset = format!(
            "pcm.headset {{ type plug slave.pcm \"null\" hint {{ show on description \"{HEADSET}\" }} }}\n"
        );
        std::fs::write(
            &asoundrc,
            format!(
                "pcm.!default {{ type plug slave.pcm \"null\" }}\n{}",
                if plugged { headset.as_str() } else { "" }
            ),
        )
        .expect("asoundrc");
    };
    plug(true);
    let home_path = home.path().to_string_lossy().into_owned();
    let daemon = Daemon::launch(
        tempfile::tempdir().expect("dir"),
        "[demo]\nline = true\n[audio]\nbackend = \"cpal\"\n",
        &[("HOME", &home_path)],
        true,
    );
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    // The watcher lists the devices off the phone's task: the first list comes shortly after start.
    let mut list = serde_json::Value::Null;
    for _ in 0..50 {
        list = page.request("list_audio_devices", json!({})).await.0;
        if list["result"]["inputs"]
            .as_array()
            .is_some_and(|inputs| inputs.iter().any(|i| i == HEADSET))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        list.to_string().contains(HEADSET),
        "the picker lists the headset: {list}"
    );
    page.request(
        "set_audio_devices",
        json!({"input": HEADSET, "output": HEADSET}),
    )
    .await;
    page.event("audioDevicesChanged").await;
    let id = page.start_call("echo").await;
    page.event("callAccepted").await;
    let in_use = |state: &serde_json::Value| state["payload"]["inUse"].clone();
    let call_devices = |snapshot: serde_json::Value| {
        snapshot["result"]["state"]["calls"][0]["audioDevices"].clone()
    };
    let on_headset = json!({"input": HEADSET, "output": HEADSET});
    let mut opened = serde_json::Value::Null;
    for _ in 0..50 {
        let (state, _) = page.request("get_state", json!({})).await;
        opened = call_devices(state);
        if !opened.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(opened, on_headset, "the call opened the headset");

    plug(false);
    let switched = loop {
        let event = page.event("audioDevicesChanged").await;
        if !in_use(&event).is_null() {
            break event;
        }
    };
    assert_eq!(
        in_use(&switched)["conversationId"],
        id.as_str(),
        "{switched}"
    );
    assert_ne!(in_use(&switched)["input"], HEADSET, "{switched}");
    assert_eq!(
        switched["payload"]["input"], HEADSET,
        "still the agent's choice"
    );
    let (state, _) = page.request("get_state", json!({})).await;
    assert_eq!(
        state["result"]["state"]["calls"][0]["conversationId"],
        id.as_str(),
        "the call goes on"
    );
    assert_ne!(call_devices(state)["input"], HEADSET);
    let (list, _) = page.request("list_audio_devices", json!({})).await;
    assert!(
        !list.to_string().contains(HEADSET),
        "unplugged, the headset is off the list: {list}"
    );

    plug(true);
    let back = loop {
        let event = page.event("audioDevicesChanged").await;
        if in_use(&event)["input"] == HEADSET {
            break event;
        }
    };
    assert_eq!(in_use(&back)["output"], HEADSET, "{back}");
    let (state, _) = page.request("get_state", json!({})).await;
    assert_eq!(call_devices(state), on_headset, "back on the headset");
    page.request("hangup", json!({"conversationId": id})).await;
    let ended = page.event("callEnded").await;
    assert_eq!(ended["payload"]["conversationId"], id.as_str());
}

/// The agent's device check (`test_audio`): a tone out, the microphone's level in. With the file
/// backend the microphone is a 1 kHz tone at half scale (−9 dBFS RMS), and the output is a file:
/// the levels say −9 dBFS ten times a second, the file holds the check's 1 kHz at −15 dBFS.
/// Refused during a call and for a length out of range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_check_plays_a_tone_and_measures_the_microphone() {
    let (_dir, heard, daemon) = demo_with_a_tone();
    let mut page = daemon.connect(CRM).await;
    let (refused, _) = page.request("test_audio", json!({"seconds": 11})).await;
    assert_eq!(refused["error"]["code"], "invalid_params", "{refused}");
    let (reply, _) = page.request("test_audio", json!({"seconds": 2})).await;
    assert_eq!(reply["result"]["seconds"], 2, "{reply}");
    let mut levels = Vec::new();
    loop {
        let event = page.event("audioTest").await;
        if event["payload"]["done"] == true {
            assert!(event["payload"].get("reason").is_none(), "{event}");
            break;
        }
        levels.push(event["payload"]["inputLevel"].as_f64().expect("a level"));
    }
    assert!(
        (18..=20).contains(&levels.len()),
        "ten levels a second for 2 s: {levels:?}"
    );
    assert!(
        levels[2..].iter().all(|l| (l + 9.0).abs() < 1.0),
        "the microphone at −9 dBFS: {levels:?}"
    );
    let (rate, samples) = read_wav(&heard).expect("the output");
    let tone = analyse(rate, &samples, &[1000.0, 440.0]);
    assert_eq!(tone.peaks[0].0, 1000.0, "{tone:?}");
    assert!((tone.level_dbfs + 15.0).abs() < 1.0, "{tone:?}");

    // One at a time; and a call takes the devices from a check at once.
    page.registered().await;
    let (reply, _) = page.request("test_audio", json!({"seconds": 10})).await;
    assert_eq!(reply["result"]["seconds"], 10, "{reply}");
    let (again, _) = page.request("test_audio", json!({})).await;
    assert_eq!(again["error"]["code"], "call_in_progress", "{again}");
    let asked = std::time::Instant::now();
    let id = page.start_call("echo").await;
    loop {
        if page.event("audioTest").await["payload"]["done"] == true {
            break;
        }
    }
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "the call stopped the 10 s check"
    );
    // (Waiting for the check's end skipped the call's own events.)
    page.assert_call_listed(&id, "the device check").await;
    let (busy, _) = page.request("test_audio", json!({})).await;
    assert_eq!(busy["error"]["code"], "call_in_progress", "{busy}");
    page.request("hangup", json!({"conversationId": id})).await;
    page.event("callEnded").await;
}
