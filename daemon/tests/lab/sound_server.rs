//! A sound server for measuring through real audio devices (this machine has no sound card):
//! a private PulseAudio on a socket of its own, whose one clock-driven null sink, `room`, is the
//! "air" between a mouth and an ear. Its left channel is the mouth — what a player plays there
//! is what the default microphone (`mouth`: the left channel of `room.monitor`) hears; its right
//! channel is the ear — what the default speaker (`ear`) plays lands there. A recording of
//! `room.monitor` thus holds, on one clock, each sound said (left) and each sound heard (right).
//!
//! An endpoint opens the defaults through ALSA (cpal, baresip's `alsa` module): ALSA's `pulse`
//! plugin (Debian's libasound2-plugins) makes PulseAudio the default ALSA device while one is
//! running, found through `PULSE_SERVER` ([`SoundServer::env`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SoundServer {
    dir: tempfile::TempDir,
    child: Child,
}

/// Sample rate of the room (and of the recordings).
pub const RATE: u32 = 48000;

impl SoundServer {
    /// `None` when PulseAudio is not installed (`./dev setup` installs it).
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("native");
        let script = dir.path().join("default.pa");
        std::fs::write(
            &script,
            format!(
                "load-module module-native-protocol-unix socket={} auth-anonymous=1\n\
                 load-module module-null-sink sink_name=room format=s16le rate={RATE} channels=2 channel_map=front-left,front-right\n\
                 load-module module-remap-source source_name=mouth master=room.monitor channels=1 master_channel_map=front-left channel_map=mono remix=no\n\
                 load-module module-remap-sink sink_name=ear master=room channels=1 master_channel_map=front-right channel_map=mono remix=no\n\
                 set-default-source mouth\n\
                 set-default-sink ear\n",
                socket.display()
            ),
        )
        .expect("default.pa");
        let log = std::fs::File::create(dir.path().join("pulseaudio.log")).expect("log");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
            ])
            .arg("-F")
            .arg(&script)
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .ok()?;
        let server = Self { dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "PulseAudio did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// What a client needs in its environment to use this server (and only it).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "PULSE_SERVER",
                format!("unix:{}", self.dir.path().join("native").display()),
            ),
            // No autospawned server of its own, no cookie from a real home: the one this server
            // made in its own.
            (
                "PULSE_CLIENTCONFIG",
                self.client_config().display().to_string(),
            ),
            (
                "PULSE_COOKIE",
                self.dir
                    .path()
                    .join(".config/pulse/cookie")
                    .display()
                    .to_string(),
            ),
        ]
    }

    fn client_config(&self) -> PathBuf {
        let path = self.dir.path().join("client.conf");
        if !path.exists() {
            std::fs::write(&path, "autospawn = no\n").expect("client.conf");
        }
        path
    }

    /// Starts recording the room (stereo, [`RATE`], raw 16-bit) into `path`, in 5 ms pieces.
    pub fn record(&self, path: &Path) -> Child {
        let file = std::fs::File::create(path).expect("recording");
        Command::new("parec")
            .envs(self.env())
            .args([
                "--device=room.monitor",
                "--format=s16le",
                "--channels=2",
                "--latency-msec=5",
            ])
            .arg(format!("--rate={RATE}"))
            .arg("--raw")
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .expect("parec (pulseaudio-utils)")
    }

    /// Says `samples` (mono, [`RATE`]) into the mouth: played on the room's left channel, in real
    /// time. Returns the player; it exits when done.
    pub fn say(&self, samples: &[i16]) -> Child {
        let path = self.dir.path().join("said.raw");
        let stereo: Vec<u8> = samples
            .iter()
            .flat_map(|s| [*s, 0])
            .flat_map(i16::to_le_bytes)
            .collect();
        std::fs::write(&path, stereo).expect("said.raw");
        Command::new("pacat")
            .envs(self.env())
            .args(["--device=room", "--format=s16le", "--channels=2", "--raw"])
            .arg(format!("--rate={RATE}"))
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pacat (pulseaudio-utils)")
    }

    /// ALSA's own recorder piped into its own player (`arecord | aplay`, alsa-utils) from the
    /// default microphone to the default speaker, each with a `buffer_ms` buffer in quarters:
    /// what the server's devices cost a program that does nothing but copy. (`alsaloop` fails
    /// on the pulse plugin: "playback delay failed".) `None` without alsa-utils (`./dev bench`
    /// installs it).
    pub fn wire(&self, buffer_ms: u32) -> Option<Wire> {
        let alsa = |program: &str| {
            let mut command = Command::new(program);
            command
                .envs(self.env())
                .args([
                    "-q", "-D", "default", "-f", "S16_LE", "-c", "1", "-t", "raw",
                ])
                .arg(format!("--rate={RATE}"))
                .arg(format!("--buffer-time={}", buffer_ms * 1000))
                .arg(format!("--period-time={}", buffer_ms * 250))
                .stderr(Stdio::null());
            command
        };
        let mut recorder = alsa("arecord").stdout(Stdio::piped()).spawn().ok()?;
        let heard = recorder.stdout.take()?;
        let player = alsa("aplay").stdin(heard).stdout(Stdio::null()).spawn();
        let Ok(player) = player else {
            let _ = recorder.kill();
            let _ = recorder.wait();
            return None;
        };
        Some(Wire { recorder, player })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pulseaudio.log")).unwrap_or_default()
    }
}

/// A running [`SoundServer::wire`]: stopped when dropped.
pub struct Wire {
    recorder: Child,
    player: Child,
}

impl Drop for Wire {
    fn drop(&mut self) {
        for child in [&mut self.recorder, &mut self.player] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A raw stereo recording's channels: (left = said, right = heard).
pub fn channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let bytes = std::fs::read(path).expect("recording");
    let samples: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    samples
        .chunks_exact(2)
        .map(|frame| (frame[0], frame[1]))
        .unzip()
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
