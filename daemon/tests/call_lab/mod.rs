//! A call lab: Kamailio as proxy, baresip as the far-end phone playing one tone, the daemon
//! playing another from a WAV and recording what it hears. Shared by the call tests.

#![allow(dead_code)]

use std::time::Duration;

use crate::common::{self, Daemon, eventually};
use crate::lab::{Baresip, Kamailio, analyse, read_wav, write_tone};

/// The agent's microphone tone and the far end's.
pub const AGENT_HZ: f64 = 1000.0;
pub const FAR_HZ: f64 = 441.0;
/// Enough audio to judge: wait until the agent has heard this much.
pub const HEARD_SECONDS: f64 = 3.0;

pub struct Lab {
    pub kamailio: Kamailio,
    pub baresip: Baresip,
    pub daemon: Daemon,
    pub dir: tempfile::TempDir,
    /// The agent's recording rate (the codec's clock rate).
    pub rate: u32,
}

/// `codec` is baresip's name for it (`PCMU`, `PCMA`, `opus/48000/2`).
pub fn lab(codec: &str) -> Lab {
    lab_with(codec, "", "")
}

/// With extra baresip account parameters (`;mediaenc=srtp-mand`) and extra `[media]` settings.
pub fn lab_with(codec: &str, baresip_params: &str, media: &str) -> Lab {
    lab_full(codec, baresip_params, media, "")
}

/// With extra `[account]` settings.
pub fn lab_with_account(codec: &str, account: &str) -> Lab {
    lab_full(codec, "", "", account)
}

fn lab_full(codec: &str, baresip_params: &str, media: &str, account: &str) -> Lab {
    // baresip 1.0 (libre) answers MD5 challenges only.
    let kamailio = Kamailio::start("MD5");
    let server = format!(
        "server = \"127.0.0.1:{}\"\ntransport = \"udp\"\n",
        kamailio.port
    );
    lab_on(kamailio, &server, codec, baresip_params, media, account)
}

/// The agent's line over `transport` (`udp`, `tcp` or `tls`) to Kamailio; baresip stays on UDP.
pub fn lab_over(codec: &str, transport: &str) -> Lab {
    let kamailio = if transport == "tls" {
        Kamailio::start_with_tls("MD5")
    } else {
        Kamailio::start("MD5")
    };
    let server = match transport {
        "tls" => format!(
            "server = \"127.0.0.1:{}\"\ntransport = \"tls\"\nca_file = \"{}\"\n",
            kamailio.tls_port.expect("a TLS port"),
            kamailio.ca_file().display()
        ),
        other => format!(
            "server = \"127.0.0.1:{}\"\ntransport = \"{other}\"\n",
            kamailio.port
        ),
    };
    lab_on(kamailio, &server, codec, "", "", "")
}

/// baresip on `kamailio`, the agent's line on `server` (the `[account]` lines naming the
/// server(s) and transport).
pub fn lab_on_server(kamailio: Kamailio, server: &str, codec: &str) -> Lab {
    lab_on(kamailio, server, codec, "", "", "")
}

fn lab_on(
    kamailio: Kamailio,
    server: &str,
    codec: &str,
    baresip_params: &str,
    media: &str,
    account: &str,
) -> Lab {
    let baresip =
        Baresip::start_with_params(&kamailio, "1002", FAR_HZ, codec, "auto", baresip_params);
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("agent.wav");
    write_tone(&tone, 48000, AGENT_HZ, 0.5, 10.0);
    let heard = dir.path().join("heard.wav");
    // The agent speaks baresip's codec only, unless `media` names the codecs itself.
    let codecs = if media.contains("codecs") {
        String::new()
    } else {
        format!(
            "codecs = [\"{}\"]\n",
            codec
                .split('/')
                .next()
                .unwrap_or(codec)
                .to_ascii_lowercase()
        )
    };
    let daemon = Daemon::start(&format!(
        "[account]\n{server}username = \"1001\"\npassword = \"secret1001\"\n{account}\n\
         [log]\nlevel = \"debug\"\n[media]\n{codecs}{media}\n[audio]\nbackend = \"file\"\ninput_file = \"{}\"\noutput_file = \"{}\"\nringer_file = \"{}\"\n",
        tone.display(),
        heard.display(),
        dir.path().join("ringer.wav").display()
    ));
    let rate = if codec.starts_with("opus") {
        48000
    } else if codec.eq_ignore_ascii_case("g722") {
        16000
    } else {
        8000
    };
    Lab {
        kamailio,
        baresip,
        daemon,
        dir,
        rate,
    }
}

impl Lab {
    pub fn heard_path(&self) -> std::path::PathBuf {
        self.dir.path().join("heard.wav")
    }

    /// Waits until the agent's recording holds `HEARD_SECONDS` of audio (it grows while the call runs).
    pub fn wait_for_audio(&self) {
        let bytes = (HEARD_SECONDS * f64::from(self.rate) * 2.0) as u64 + 44;
        eventually("audio from the far end", Duration::from_secs(20), || {
            (std::fs::metadata(self.heard_path())
                .map(|m| m.len())
                .unwrap_or(0)
                >= bytes)
                .then_some(())
        });
    }

    /// Bytes of the agent's recording so far (it grows while a call runs).
    pub fn heard_bytes(&self) -> u64 {
        std::fs::metadata(self.heard_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// A page of the CRM's origin, connected once the line is registered.
    pub async fn page(&self) -> common::Client {
        let mut page = self.daemon.connect(common::CRM).await;
        page.registered().await;
        page
    }

    /// baresip calls the agent, the page answers, and audio flows; returns the conversation id.
    pub async fn answered_call(&self, page: &mut common::Client) -> String {
        let (id, _) = self.call_the_agent(page).await;
        page.request("answer", serde_json::json!({"conversationId": id}))
            .await;
        page.event("callAccepted").await;
        self.wait_for_audio();
        id
    }

    /// After `event` (a restart, a move…), with the agent's recording `heard_from` bytes long
    /// then: waits for four more seconds of it, hangs up, and checks that our BYE ended
    /// baresip's call and that each side heard the other's tone after the event.
    pub async fn hang_up_after(
        &self,
        page: &mut common::Client,
        id: &str,
        heard_from: u64,
        event: &str,
    ) {
        eventually(
            &format!("the far end's audio after {event}"),
            Duration::from_secs(20),
            || (self.heard_bytes() >= heard_from + 4 * u64::from(self.rate) * 2).then_some(()),
        );
        page.request("hangup", serde_json::json!({"conversationId": id}))
            .await;
        page.event("callEnded").await;
        // baresip closes its recording when our BYE ends the call (otherwise it would keep the
        // call until its 120 s tone ran out). Its last 3 s all come after the event.
        let (rate, far) = eventually(
            "baresip to end the call on our BYE",
            Duration::from_secs(10),
            || self.baresip.recording().filter(|(_, s)| !s.is_empty()),
        );
        let tail = &far[far.len().saturating_sub(3 * rate as usize)..];
        let report = analyse(rate, tail, &[AGENT_HZ, FAR_HZ, 1500.0]);
        assert_eq!(
            report.peaks[0].0, AGENT_HZ,
            "the far end hears us after {event}: {report:?}"
        );
        assert!(report.peaks[0].1 > 0.8, "{event}: {report:?}");

        let (rate, heard) = read_wav(&self.heard_path()).expect("the agent's recording");
        let from = (heard_from.saturating_sub(44) / 2) as usize;
        let report = analyse(
            rate,
            &heard[from.min(heard.len())..],
            &[FAR_HZ, AGENT_HZ, 1500.0],
        );
        assert_eq!(
            report.peaks[0].0, FAR_HZ,
            "we hear the far end after {event}: {report:?}"
        );
        assert!(report.peaks[0].1 > 0.8, "{event}: {report:?}");
        assert!(report.seconds >= 3.5, "{event}: {report:?}");
        assert!(
            report.level_dbfs > -15.0 && report.level_dbfs < -3.0,
            "{event}: {report:?}"
        );
    }

    /// baresip calls the agent; returns the conversation id and the `incomingCall` payload.
    pub async fn call_the_agent(&self, page: &mut common::Client) -> (String, serde_json::Value) {
        self.baresip.command(
            "dial",
            &format!("sip:1001@{}:{}", self.kamailio.address, self.kamailio.port),
        );
        page.incoming_call().await
    }

    /// Both recordings contain the other side's tone, clearly and at a sane level.
    pub fn assert_tones_both_ways(&self) {
        let (rate, heard) = read_wav(&self.heard_path()).expect("the agent's recording");
        let agent = analyse(rate, &heard, &[FAR_HZ, AGENT_HZ, 1500.0]);
        assert_eq!(
            agent.peaks[0].0, FAR_HZ,
            "the agent hears the far end's tone: {agent:?}"
        );
        assert!(agent.peaks[0].1 > 0.8, "and little else: {agent:?}");
        assert!(
            agent.level_dbfs > -15.0 && agent.level_dbfs < -3.0,
            "at about the sent level (-9 dBFS): {agent:?}"
        );
        assert!(agent.seconds >= HEARD_SECONDS, "{agent:?}");

        let (rate, far) = eventually("baresip's recording", Duration::from_secs(10), || {
            self.baresip.recording()
        });
        let far = analyse(rate, &far, &[AGENT_HZ, FAR_HZ, 1500.0]);
        assert_eq!(
            far.peaks[0].0, AGENT_HZ,
            "the far end hears the agent's tone: {far:?}"
        );
        assert!(far.peaks[0].1 > 0.8, "and little else: {far:?}");
        assert!(far.level_dbfs > -15.0 && far.level_dbfs < -3.0, "{far:?}");
    }
}
