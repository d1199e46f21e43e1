//! The `cpal` backend: the agent's real microphone and speaker/headset.
//!
//! cpal streams are not `Send` on every platform, so they live on their own thread. The data
//! callbacks and the call's media task meet in two small buffers (at most 200 ms each, so
//! latency cannot pile up). Rates are converted between the device's and the codec's with a
//! band-limited resampler ([`super::resample`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SizedSample};

use super::backlog::{self, Backlog};
use super::resample::StreamResampler;
use super::{AudioError, AudioSink, AudioSource, CallAudio, InUseReport};
use crate::config::AudioConfig;
use crate::protocol::DevicesInUse;

/// Upper bound on buffered audio in each direction.
const MAX_BUFFER_SECONDS: f32 = 0.2;

/// The device period asked for: 10 ms. A device left to its default may pick 100 ms or more,
/// and the speaker's buffer is two periods and the microphone's at least one: mouth-to-ear
/// grows by three periods. Desk softphones ask for 10–20 ms; 10 ms keeps the buffers under one
/// codec frame.
const PERIOD_SECONDS: f32 = 0.01;

/// How often a call's audio thread looks for its chosen devices (unplugged: the system default;
/// back: the chosen one again), and how often the device list is refreshed for pickers.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

type Buffer = Arc<Mutex<VecDeque<f32>>>;

/// What a call's audio thread tells both ends of the call's audio about the devices it opened:
/// their rates, and how many times it has opened devices. After a switch each end starts its
/// queue's bookkeeping afresh: what the old device held or went short says nothing of the new.
#[derive(Default)]
struct DevicesOpened {
    input_rate: AtomicU32,
    output_rate: AtomicU32,
    times: AtomicU32,
}

impl DevicesOpened {
    fn opened(&self, (input_rate, output_rate): (u32, u32)) {
        self.input_rate.store(input_rate, Ordering::Relaxed);
        self.output_rate.store(output_rate, Ordering::Relaxed);
        self.times.fetch_add(1, Ordering::Release);
    }

    /// The output rate if devices were opened again since `seen` (which it updates).
    fn output_since(&self, seen: &mut u32) -> Option<u32> {
        self.since(seen)
            .then(|| self.output_rate.load(Ordering::Relaxed))
    }

    fn input_since(&self, seen: &mut u32) -> Option<u32> {
        self.since(seen)
            .then(|| self.input_rate.load(Ordering::Relaxed))
    }

    fn since(&self, seen: &mut u32) -> bool {
        let times = self.times.load(Ordering::Acquire);
        std::mem::replace(seen, times) != times
    }
}

/// Device names for `softphone-bridge devices` and `[audio] input`/`output`/`ringer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub default_input: Option<String>,
    pub default_output: Option<String>,
}

pub fn list() -> DeviceList {
    let host = cpal::default_host();
    DeviceList {
        inputs: host
            .input_devices()
            .map(|d| d.filter_map(|d| name(&d)).collect())
            .unwrap_or_default(),
        outputs: host
            .output_devices()
            .map(|d| d.filter_map(|d| name(&d)).collect())
            .unwrap_or_default(),
        default_input: host.default_input_device().and_then(|d| name(&d)),
        default_output: host.default_output_device().and_then(|d| name(&d)),
    }
}

/// Watches the devices plugged in, listing them every [`WATCH_INTERVAL`] on a thread of its own
/// (enumeration can block for a while) and sending each list that differs from the last; stops
/// when `lists` is closed.
pub fn watch(lists: tokio::sync::mpsc::Sender<crate::protocol::AudioDeviceList>) {
    let spawned = std::thread::Builder::new()
        .name("device-watch".into())
        .spawn(move || {
            let mut last = None;
            loop {
                let DeviceList {
                    inputs,
                    outputs,
                    default_input,
                    default_output,
                } = list();
                let now = crate::protocol::AudioDeviceList {
                    inputs,
                    outputs,
                    default_input,
                    default_output,
                };
                if last.as_ref() != Some(&now) {
                    if lists.blocking_send(now.clone()).is_err() {
                        return;
                    }
                    last = Some(now);
                }
                std::thread::sleep(WATCH_INTERVAL);
                if lists.is_closed() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch the audio devices: {e}");
    }
}

/// Opens the configured (or default) input and output devices for one call at `rate` Hz. While
/// the call lasts its thread follows the devices: a chosen one unplugged (or failing) gives way
/// to the system default, and is taken back once plugged in again; `report` hears of each.
pub fn open(
    config: &AudioConfig,
    rate: u32,
    mut report: Option<InUseReport>,
) -> Result<CallAudio, AudioError> {
    let capture: Buffer = Arc::default();
    let playback: Buffer = Arc::default();
    let short = Arc::new(AtomicUsize::new(0));
    let rates = Arc::new(DevicesOpened::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let chosen = (config.input.clone(), config.output.clone());
    let (capture_cb, playback_cb, rates_cb, short_cb) = (
        Arc::clone(&capture),
        Arc::clone(&playback),
        Arc::clone(&rates),
        Arc::clone(&short),
    );
    std::thread::Builder::new()
        .name("audio".into())
        .spawn(move || {
            let (input, output) = (chosen.0.as_deref(), chosen.1.as_deref());
            let lost = Arc::new(AtomicBool::new(false));
            let open = |lost: &Arc<AtomicBool>| {
                start_streams(input, output, &capture_cb, (&playback_cb, &short_cb), lost)
            };
            let mut current = match open(&lost) {
                Ok(opened) => {
                    rates_cb.opened(opened.rates);
                    let _ = ready_tx.send(Ok(opened.rates));
                    if let Some(report) = report.as_mut() {
                        report(opened.names.clone(), false);
                    }
                    opened
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            // Until both ends of the call's audio are dropped: follow the devices.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop_rx.recv_timeout(WATCH_INTERVAL) {
                let host = cpal::default_host();
                let wanted = DevicesInUse {
                    input: wanted(input, host.input_devices(), host.default_input_device()),
                    output: wanted(output, host.output_devices(), host.default_output_device()),
                };
                if !lost.load(Ordering::Relaxed) && wanted == current.names {
                    continue;
                }
                // The old streams go first: some devices open only once. What they left, and
                // what they went short, is theirs.
                drop(current.streams.take());
                for buffer in [&capture_cb, &playback_cb] {
                    if let Ok(mut buffer) = buffer.lock() {
                        buffer.clear();
                    }
                }
                short_cb.store(0, Ordering::Relaxed);
                lost.store(false, Ordering::Relaxed);
                match open(&lost) {
                    Ok(opened) => {
                        // The queues were cleared before the opening; what the call writes
                        // meanwhile, at the old rate, the speaker's end clears when it hears.
                        rates_cb.opened(opened.rates);
                        tracing::info!(input = %opened.names.input, output = %opened.names.output, "the call's audio devices changed");
                        if opened.names != current.names
                            && let Some(report) = report.as_mut()
                        {
                            report(opened.names.clone(), true);
                        }
                        current = opened;
                    }
                    // Nothing to open now (the default went too): try again next time.
                    Err(e) => {
                        // Once, not every second until a device is back.
                        if !current.names.input.is_empty() {
                            tracing::warn!("reopening the call's audio devices: {e}");
                        }
                        current.names = DevicesInUse {
                            input: String::new(),
                            output: String::new(),
                        };
                        lost.store(true, Ordering::Relaxed);
                    }
                }
            }
        })
        .map_err(|e| AudioError::Device(e.to_string()))?;
    let (input_rate, output_rate) = ready_rx
        .recv()
        .map_err(|e| AudioError::Device(e.to_string()))??;
    let stop = Arc::new(stop_tx);
    let seen = rates.times.load(Ordering::Acquire);
    Ok(CallAudio {
        source: Box::new(DeviceSource {
            buffer: capture,
            resampler: StreamResampler::new(input_rate, rate)?,
            rates: Arc::clone(&rates),
            seen,
            rate,
            captured: Vec::new(),
            backlog: Backlog::new(rate),
            fed: false,
            short: 0,
            _stop: Arc::clone(&stop),
        }),
        sink: Box::new(DeviceSink {
            buffer: playback,
            resampler: StreamResampler::new(rate, output_rate)?,
            rates: Some((rates, seen)),
            device_rate: output_rate,
            rate,
            scratch: Vec::new(),
            backlog: Backlog::new(output_rate),
            short,
            _stop: stop,
        }),
        unavailable: None,
    })
}

/// The device a call should be on: the chosen one while it is plugged in, else the default.
fn wanted(
    chosen: Option<&str>,
    devices: Result<impl Iterator<Item = cpal::Device>, cpal::Error>,
    default: Option<cpal::Device>,
) -> String {
    chosen
        .filter(|name| find(devices, name).is_some())
        .map(str::to_owned)
        .or_else(|| default.and_then(|d| name(&d)))
        .unwrap_or_default()
}

/// Opens an output device alone (the ringer): `name`, else the default output.
pub fn open_output(name: Option<&str>, rate: u32) -> Result<Box<dyn AudioSink>, AudioError> {
    let playback: Buffer = Arc::default();
    let short = Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let name = name.map(str::to_owned);
    let (buffer, short_cb) = (Arc::clone(&playback), Arc::clone(&short));
    std::thread::Builder::new()
        .name("ringer".into())
        .spawn(move || {
            let opened = (|| {
                let host = cpal::default_host();
                let device = match &name {
                    Some(name) => find(host.output_devices(), name).ok_or_else(|| {
                        AudioError::Device(format!("no output device named {name:?}"))
                    })?,
                    None => host
                        .default_output_device()
                        .ok_or_else(|| AudioError::Device("no default output device".into()))?,
                };
                let config = device
                    .default_output_config()
                    .map_err(|e| AudioError::Device(e.to_string()))?;
                // The ringer rings for a few seconds on whatever device it found.
                let ringer_lost = Arc::new(AtomicBool::new(false));
                let stream = match config.sample_format() {
                    cpal::SampleFormat::F32 => playback_stream::<f32>(
                        &device,
                        &config.config(),
                        (&buffer, &short_cb),
                        &ringer_lost,
                    ),
                    cpal::SampleFormat::I16 => playback_stream::<i16>(
                        &device,
                        &config.config(),
                        (&buffer, &short_cb),
                        &ringer_lost,
                    ),
                    cpal::SampleFormat::I32 => playback_stream::<i32>(
                        &device,
                        &config.config(),
                        (&buffer, &short_cb),
                        &ringer_lost,
                    ),
                    other => {
                        return Err(AudioError::Device(format!(
                            "unsupported output sample format {other:?}"
                        )));
                    }
                }?;
                stream
                    .play()
                    .map_err(|e| AudioError::Device(e.to_string()))?;
                Ok((stream, config.sample_rate()))
            })();
            match opened {
                Ok((stream, device_rate)) => {
                    let _ = ready_tx.send(Ok(device_rate));
                    let _ = stop_rx.recv();
                    drop(stream);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| AudioError::Device(e.to_string()))?;
    let device_rate = ready_rx
        .recv()
        .map_err(|e| AudioError::Device(e.to_string()))??;
    Ok(Box::new(DeviceSink {
        buffer: playback,
        resampler: StreamResampler::new(rate, device_rate)?,
        rates: None,
        device_rate,
        rate,
        scratch: Vec::new(),
        backlog: Backlog::new(device_rate),
        short,
        _stop: Arc::new(stop_tx),
    }))
}

/// A device's name as the OS describes it; `None` when the OS cannot say (cpal's `Display`
/// fails then — WASAPI with no default device, the unplug case — and `to_string` would panic).
fn name(device: &cpal::Device) -> Option<String> {
    use std::fmt::Write;
    let mut name = String::new();
    write!(name, "{device}").ok().map(|()| name)
}

fn find(
    devices: Result<impl Iterator<Item = cpal::Device>, cpal::Error>,
    name: &str,
) -> Option<cpal::Device> {
    devices
        .ok()?
        .find(|d| self::name(d).as_deref() == Some(name))
}

type Streams = (cpal::Stream, cpal::Stream);

/// A call's open devices: the streams (kept alive here), their rates and names.
struct Opened {
    streams: Option<Streams>,
    rates: (u32, u32),
    names: DevicesInUse,
}

/// Opens the chosen devices, or the system default for one not plugged in. `lost` is set when
/// a stream reports its device gone.
/// The speaker's queue, and the count of samples its device found missing.
type Playback<'a> = (&'a Buffer, &'a Arc<AtomicUsize>);

fn start_streams(
    input: Option<&str>,
    output: Option<&str>,
    capture: &Buffer,
    playback: Playback<'_>,
    lost: &Arc<AtomicBool>,
) -> Result<Opened, AudioError> {
    let host = cpal::default_host();
    // The chosen devices that are not plugged in: a failure of the default in their place says so.
    let mut missing: Vec<&str> = [
        input.filter(|name| find(host.input_devices(), name).is_none()),
        output.filter(|name| find(host.output_devices(), name).is_none()),
    ]
    .into_iter()
    .flatten()
    .collect();
    missing.dedup();
    start_found_streams(&host, input, output, capture, playback, lost).map_err(|e| {
        match missing.as_slice() {
            [] => e,
            names => AudioError::Device(format!(
                "{} not plugged in, and the system default did not work ({e})",
                names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    })
}

fn start_found_streams(
    host: &cpal::Host,
    input: Option<&str>,
    output: Option<&str>,
    capture: &Buffer,
    playback: Playback<'_>,
    lost: &Arc<AtomicBool>,
) -> Result<Opened, AudioError> {
    // The agent's chosen device when it is plugged in, else the system default (a headset
    // unplugged between calls must not leave the next call silent).
    let input_device = match input.map(|name| (name, find(host.input_devices(), name))) {
        Some((_, Some(device))) => device,
        Some((name, None)) => {
            tracing::warn!("no input device named {name:?}; using the system default");
            host.default_input_device().ok_or_else(|| {
                AudioError::Device(format!(
                    "no input device named {name:?}, and no default input device"
                ))
            })?
        }
        None => host
            .default_input_device()
            .ok_or_else(|| AudioError::Device("no default input device".into()))?,
    };
    let output_device = match output.map(|name| (name, find(host.output_devices(), name))) {
        Some((_, Some(device))) => device,
        Some((name, None)) => {
            tracing::warn!("no output device named {name:?}; using the system default");
            host.default_output_device().ok_or_else(|| {
                AudioError::Device(format!(
                    "no output device named {name:?}, and no default output device"
                ))
            })?
        }
        None => host
            .default_output_device()
            .ok_or_else(|| AudioError::Device("no default output device".into()))?,
    };
    let device_error = |e: cpal::Error| AudioError::Device(e.to_string());
    let input_config = input_device.default_input_config().map_err(device_error)?;
    let output_config = output_device
        .default_output_config()
        .map_err(device_error)?;
    let input_rate = input_config.sample_rate();
    let output_rate = output_config.sample_rate();
    let input_stream = match input_config.sample_format() {
        cpal::SampleFormat::F32 => with_small_period(&input_config, |config| {
            capture_stream::<f32>(&input_device, config, capture, lost)
        }),
        cpal::SampleFormat::I16 => with_small_period(&input_config, |config| {
            capture_stream::<i16>(&input_device, config, capture, lost)
        }),
        cpal::SampleFormat::I32 => with_small_period(&input_config, |config| {
            capture_stream::<i32>(&input_device, config, capture, lost)
        }),
        other => {
            return Err(AudioError::Device(format!(
                "unsupported input sample format {other:?}"
            )));
        }
    }?;
    let output_stream = match output_config.sample_format() {
        cpal::SampleFormat::F32 => with_small_period(&output_config, |config| {
            playback_stream::<f32>(&output_device, config, playback, lost)
        }),
        cpal::SampleFormat::I16 => with_small_period(&output_config, |config| {
            playback_stream::<i16>(&output_device, config, playback, lost)
        }),
        cpal::SampleFormat::I32 => with_small_period(&output_config, |config| {
            playback_stream::<i32>(&output_device, config, playback, lost)
        }),
        other => {
            return Err(AudioError::Device(format!(
                "unsupported output sample format {other:?}"
            )));
        }
    }?;
    input_stream
        .play()
        .map_err(|e| AudioError::Device(e.to_string()))?;
    output_stream
        .play()
        .map_err(|e| AudioError::Device(e.to_string()))?;
    let names = DevicesInUse {
        input: name(&input_device).unwrap_or_default(),
        output: name(&output_device).unwrap_or_default(),
    };
    // The periods the devices granted (frames per callback): what they add to mouth-to-ear.
    let input_period = input_stream.buffer_size().ok();
    let output_period = output_stream.buffer_size().ok();
    tracing::info!(input = %names.input, output = %names.output, input_rate, output_rate, ?input_period, ?output_period, "audio devices open");
    Ok(Opened {
        streams: Some((input_stream, output_stream)),
        rates: (input_rate, output_rate),
        names,
    })
}

/// Builds a stream with a [`PERIOD_SECONDS`] period where the device's range allows, else
/// (a device that refuses it, a platform that cannot say) with the device's own default.
fn with_small_period(
    supported: &cpal::SupportedStreamConfig,
    build: impl Fn(&cpal::StreamConfig) -> Result<cpal::Stream, AudioError>,
) -> Result<cpal::Stream, AudioError> {
    let default = supported.config();
    let wanted = (supported.sample_rate() as f32 * PERIOD_SECONDS) as cpal::FrameCount;
    let frames = match supported.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if min <= max => wanted.clamp(*min, *max),
        _ => return build(&default),
    };
    let small = cpal::StreamConfig {
        buffer_size: cpal::BufferSize::Fixed(frames),
        ..default
    };
    build(&small).or_else(|e| {
        tracing::info!("a {frames}-frame period was refused ({e}); the device's default instead");
        build(&default)
    })
}

fn capture_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    buffer: &Buffer,
    lost: &Arc<AtomicBool>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let limit = (config.sample_rate as f32 * MAX_BUFFER_SECONDS) as usize;
    let (buffer, lost) = (Arc::clone(buffer), Arc::clone(lost));
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _| {
                let Ok(mut buffer) = buffer.lock() else {
                    return;
                };
                for frame in data.chunks(channels) {
                    let mono = frame.iter().map(|s| f32::from_sample(*s)).sum::<f32>()
                        / frame.len() as f32;
                    buffer.push_back(mono);
                }
                let excess = buffer.len().saturating_sub(limit);
                buffer.drain(..excess);
            },
            move |e| {
                tracing::warn!("microphone: {e}");
                if e.kind() == cpal::ErrorKind::DeviceNotAvailable {
                    lost.store(true, Ordering::Relaxed);
                }
            },
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

fn playback_stream<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    (buffer, short): Playback<'_>,
    lost: &Arc<AtomicBool>,
) -> Result<cpal::Stream, AudioError>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let (buffer, short, lost) = (Arc::clone(buffer), Arc::clone(short), Arc::clone(lost));
    // Once fed, a sample missing is a shortfall the writer should hold more against (before,
    // the call's audio has not begun).
    let mut fed = false;
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _| {
                let mut buffer = buffer.lock().ok();
                let mut missing = 0;
                for frame in data.chunks_mut(channels) {
                    let value = buffer.as_mut().and_then(|b| b.pop_front());
                    fed |= value.is_some();
                    missing += usize::from(fed && value.is_none());
                    frame.fill(T::from_sample(value.unwrap_or(0.0)));
                }
                if missing > 0 {
                    short.fetch_add(missing, Ordering::Relaxed);
                }
            },
            move |e| {
                tracing::warn!("speaker: {e}");
                if e.kind() == cpal::ErrorKind::DeviceNotAvailable {
                    lost.store(true, Ordering::Relaxed);
                }
            },
            None,
        )
        .map_err(|e| AudioError::Device(e.to_string()))
}

/// [`Backlog::observe`], logging each time the `device`'s margin grows (for a helpdesk: a
/// device that keeps going short).
fn observe(
    backlog: &mut Backlog,
    device: &str,
    level: usize,
    short: usize,
    quiet: impl FnOnce(usize) -> usize,
) -> usize {
    let before = backlog.margin();
    let drop = backlog.observe(level, short, quiet);
    if backlog.margin() > before {
        tracing::info!(
            device,
            short,
            margin_ms = backlog.margin_ms(),
            "the device went short; holding more against it"
        );
    }
    drop
}

struct DeviceSource {
    buffer: Buffer,
    resampler: StreamResampler,
    /// The devices the call has open, and how many times they had been opened when last read.
    rates: Arc<DevicesOpened>,
    seen: u32,
    rate: u32,
    captured: Vec<f32>,
    /// What stands converted beyond a tick's need (a late start, a burst), let go of.
    backlog: Backlog,
    /// Whether the microphone has delivered yet, and how much the last frame lacked since.
    fed: bool,
    short: usize,
    _stop: Arc<mpsc::Sender<()>>,
}

impl AudioSource for DeviceSource {
    fn read(&mut self, frame: &mut [i16]) {
        if let Some(device_rate) = self.rates.input_since(&mut self.seen) {
            // A new microphone: nothing of the old one's is kept or counted.
            match StreamResampler::new(device_rate, self.rate) {
                Ok(resampler) => self.resampler = resampler,
                Err(e) => tracing::warn!("the new microphone's rate: {e}"),
            }
            self.backlog = Backlog::new(self.rate);
            self.fed = false;
            self.short = 0;
        }
        self.captured.clear();
        if let Ok(mut buffer) = self.buffer.lock() {
            self.captured.extend(buffer.drain(..));
        }
        self.resampler.push(&self.captured);
        // Never more than three frames: a microphone not read for a while (on hold, while a
        // DTMF digit is sent) must not send what it heard then. Within that, what will still
        // wait after this frame is sent, standing since a device burst or a late start, is let
        // go of in a pause.
        self.resampler.trim(frame.len() * 3);
        let waiting = self.resampler.available().saturating_sub(frame.len());
        let resampler = &self.resampler;
        let drop = observe(&mut self.backlog, "microphone", waiting, self.short, |n| {
            backlog::quiet_run(resampler.oldest(n))
        });
        self.resampler.drop_oldest(drop);
        let mut converted = vec![0.0; frame.len()];
        // Too little captured (start-up, a slow device): the rest of the frame is silence.
        let got = self.resampler.pull(&mut converted);
        // Short only once the microphone has filled a frame: before, nothing was captured yet.
        self.short = if self.fed { frame.len() - got } else { 0 };
        self.fed |= got == frame.len();
        for (sample, value) in frame
            .iter_mut()
            .zip(converted[..got].iter().chain(std::iter::repeat(&0.0)))
        {
            *sample = (value.clamp(-1.0, 1.0) * 32767.0) as i16;
        }
    }
}

struct DeviceSink {
    buffer: Buffer,
    resampler: StreamResampler,
    /// A call's open devices, and how many times they had been opened when last read (the
    /// ringer's device does not change).
    rates: Option<(Arc<DevicesOpened>, u32)>,
    device_rate: u32,
    rate: u32,
    scratch: Vec<f32>,
    /// What stands unplayed beyond a tick's need (a device that started late), let go of.
    backlog: Backlog,
    /// Samples the device found missing (counted by its callback).
    short: Arc<AtomicUsize>,
    _stop: Arc<mpsc::Sender<()>>,
}

impl AudioSink for DeviceSink {
    fn write(&mut self, samples: &[i16]) {
        let mut switched = false;
        if let Some((rates, seen)) = &mut self.rates
            && let Some(device_rate) = rates.output_since(seen)
        {
            switched = true;
            // A new speaker: nothing of the old one's is kept or counted.
            match StreamResampler::new(self.rate, device_rate) {
                Ok(resampler) => self.resampler = resampler,
                Err(e) => tracing::warn!("the new speaker's rate: {e}"),
            }
            self.device_rate = device_rate;
            self.backlog = Backlog::new(device_rate);
        }
        self.scratch.clear();
        self.scratch
            .extend(samples.iter().map(|s| f32::from(*s) / 32768.0));
        self.resampler.push(&self.scratch);
        self.scratch.resize(self.resampler.available(), 0.0);
        let n = self.resampler.pull(&mut self.scratch);
        let limit = (self.device_rate as f32 * MAX_BUFFER_SECONDS) as usize;
        let Ok(mut buffer) = self.buffer.lock() else {
            return;
        };
        if switched {
            // Written at the old rate between the thread's clearing and its telling: not the
            // new device's to play or to count short against.
            buffer.clear();
            self.short.store(0, Ordering::Relaxed);
        }
        let waiting = buffer.len();
        let short = self.short.swap(0, Ordering::Relaxed);
        let drop = observe(&mut self.backlog, "speaker", waiting, short, |n| {
            backlog::quiet_run(buffer.range(..n))
        });
        buffer.drain(..drop);
        buffer.extend(&self.scratch[..n]);
        let excess = buffer.len().saturating_sub(limit);
        buffer.drain(..excess);
    }

    fn finish(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A switch to a device at the same rate is a switch all the same: each end hears of it
    /// once (to start its queue's bookkeeping afresh), and not again until the next.
    #[test]
    fn each_end_hears_of_every_opening_once() {
        let opened = DevicesOpened::default();
        opened.opened((48_000, 48_000));
        let (mut microphone, mut speaker) = (1, 1);
        assert_eq!(opened.input_since(&mut microphone), None);
        assert_eq!(opened.output_since(&mut speaker), None);
        opened.opened((48_000, 48_000));
        assert_eq!(opened.input_since(&mut microphone), Some(48_000));
        assert_eq!(opened.output_since(&mut speaker), Some(48_000));
        assert_eq!(opened.input_since(&mut microphone), None);
        opened.opened((16_000, 44_100));
        assert_eq!(opened.output_since(&mut speaker), Some(44_100));
        assert_eq!(opened.input_since(&mut microphone), Some(16_000));
    }
}
