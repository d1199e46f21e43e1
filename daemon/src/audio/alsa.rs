//! Linux: the call's microphone and speaker through ALSA directly, with small periods.
//!
//! cpal's ALSA host always asks a device for two periods and keeps the speaker's buffer full:
//! with 10 ms asked, the sound server's ALSA plugin grants 6.7 ms periods, the speaker holds
//! 13.3 ms, and the server holds more for such a client (19.6 ms measured; issue 15). Here the
//! period is a 400th of a second (2.5 ms), the microphone is read as each period comes in, and
//! the speaker's buffer is many periods but kept filled only to a target — two periods, one more
//! each time the device still ran dry: the rest of the buffer is room, not delay. cpal still
//! lists the devices, opens them where this cannot, plays the ringer, and serves every other
//! platform. Measured: `cargo bench --bench latency`, its device table (docs/benchmarks.md).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use alsa::pcm::{Access, Format, Frames, HwParams, PCM};
use alsa::{Direction, ValueOr};

use super::AudioError;

/// Periods a second asked for: 2.5 ms each (the sound server's own copier, `arecord | aplay`
/// with 10 ms buffers, runs at it and costs 10–13 ms mouth to ear).
const PERIODS_PER_SECOND: u32 = 400;
/// The speaker's whole buffer, in periods: room to hold more after a device ran dry.
const BUFFER_PERIODS: Frames = 16;
/// The speaker's fill target to start with, in periods; one more each time the device still
/// ran dry, up to half the buffer.
const START_TARGET_PERIODS: Frames = 2;
/// How long a stream's thread waits on its device before it looks whether to stop (a stalled
/// device must not hold up the end of a call).
const WAIT_MS: u32 = 50;

type Buffer = Arc<Mutex<VecDeque<f32>>>;

/// One open direction of a device, run by its own thread, which stops when this is dropped.
pub struct Stream {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub rate: u32,
    /// Frames per period the device granted.
    pub period: Frames,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn error(device: &str, what: &str, e: alsa::Error) -> AudioError {
    AudioError::Device(format!("{device}: {what}: {e}"))
}

/// After an error on a running stream: `true` when it can go on (nothing was ready yet, or an
/// overrun or underrun it was brought back from), `false` when the device is gone.
fn recovered(pcm: &PCM, e: alsa::Error) -> bool {
    e.errno() == libc::EAGAIN || pcm.try_recover(e, true).is_ok()
}

/// Samples as the device takes them: float where it can, else 16-bit.
#[derive(Clone, Copy)]
enum Sample {
    F32,
    I16,
}

/// An opened device.
struct Opened {
    pcm: PCM,
    sample: Sample,
    rate: u32,
    channels: usize,
    /// Frames per period, and in the whole buffer.
    period: Frames,
    size: Frames,
}

/// Opens `device` for `direction` at its nearest to 48 kHz with small periods. Non-blocking: a
/// device another program holds fails at once rather than hanging the call, and the threads
/// wait on their device with a time limit.
fn open(device: &str, direction: Direction) -> Result<Opened, AudioError> {
    let pcm = PCM::new(device, direction, true).map_err(|e| error(device, "open", e))?;
    let hw = HwParams::any(&pcm).map_err(|e| error(device, "parameters", e))?;
    hw.set_access(Access::RWInterleaved)
        .map_err(|e| error(device, "interleaved access", e))?;
    let sample = if hw.set_format(Format::float()).is_ok() {
        Sample::F32
    } else {
        hw.set_format(Format::s16())
            .map_err(|e| error(device, "sample format", e))?;
        Sample::I16
    };
    // Mono where the device has it, else its fewest channels.
    if hw.set_channels(1).is_err() {
        let fewest = hw
            .get_channels_min()
            .map_err(|e| error(device, "channels", e))?;
        hw.set_channels(fewest)
            .map_err(|e| error(device, "channels", e))?;
    }
    hw.set_rate(48_000, ValueOr::Nearest)
        .map_err(|e| error(device, "rate", e))?;
    let rate = hw.get_rate().map_err(|e| error(device, "rate", e))?;
    let period = hw
        .set_period_size_near(Frames::from(rate / PERIODS_PER_SECOND), ValueOr::Nearest)
        .map_err(|e| error(device, "period", e))?;
    let size = hw
        .set_buffer_size_near(period * BUFFER_PERIODS)
        .map_err(|e| error(device, "buffer", e))?;
    pcm.hw_params(&hw)
        .map_err(|e| error(device, "parameters", e))?;
    let channels = hw
        .get_channels()
        .map_err(|e| error(device, "channels", e))?;
    drop(hw);
    if period <= 0 || size < period * 2 {
        return Err(AudioError::Device(format!(
            "{device}: a {period}-frame period in a {size}-frame buffer"
        )));
    }
    Ok(Opened {
        pcm,
        sample,
        rate,
        channels: (channels as usize).max(1),
        period,
        size,
    })
}

/// The microphone `device`: each period's frames mixed to mono onto `buffer`, which keeps the
/// newest `limit_seconds`; `lost` is set if the device goes.
pub fn capture(
    device: &str,
    buffer: &Buffer,
    limit_seconds: f32,
    lost: &Arc<AtomicBool>,
) -> Result<Stream, AudioError> {
    let Opened {
        pcm,
        sample,
        rate,
        channels,
        period,
        ..
    } = open(device, Direction::Capture)?;
    pcm.sw_params_current()
        .and_then(|sw| {
            sw.set_avail_min(period)?;
            pcm.sw_params(&sw)
        })
        .map_err(|e| error(device, "software parameters", e))?;
    pcm.start().map_err(|e| error(device, "start", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (stopping, buffer, lost, name) = (
        Arc::clone(&stop),
        Arc::clone(buffer),
        Arc::clone(lost),
        device.to_owned(),
    );
    let limit = (rate as f32 * limit_seconds) as usize;
    let thread = std::thread::Builder::new()
        .name("microphone".into())
        .spawn(move || {
            let samples = period as usize * channels;
            let (mut floats, mut ints) = (vec![0f32; samples], vec![0i16; samples]);
            let gone = |e: alsa::Error| {
                tracing::warn!("microphone {name}: {e}");
                lost.store(true, Ordering::Relaxed);
            };
            while !stopping.load(Ordering::Relaxed) {
                match pcm.wait(Some(WAIT_MS)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) if recovered(&pcm, e) => {
                        let _ = pcm.start();
                        continue;
                    }
                    Err(e) => return gone(e),
                }
                let read = match sample {
                    Sample::F32 => pcm.io_f32().and_then(|io| io.readi(&mut floats)),
                    Sample::I16 => pcm.io_i16().and_then(|io| {
                        let n = io.readi(&mut ints)?;
                        for (float, int) in floats.iter_mut().zip(&ints[..n * channels]) {
                            *float = f32::from(*int) / 32768.0;
                        }
                        Ok(n)
                    }),
                };
                let frames = match read {
                    Ok(frames) => frames.min(period as usize),
                    Err(e) if recovered(&pcm, e) => {
                        let _ = pcm.start();
                        continue;
                    }
                    Err(e) => return gone(e),
                };
                let Ok(mut buffer) = buffer.lock() else {
                    return;
                };
                for frame in floats[..frames * channels].chunks(channels) {
                    buffer.push_back(frame.iter().sum::<f32>() / channels as f32);
                }
                let excess = buffer.len().saturating_sub(limit);
                buffer.drain(..excess);
            }
        })
        .map_err(|e| AudioError::Device(e.to_string()))?;
    Ok(Stream {
        stop,
        thread: Some(thread),
        rate,
        period,
    })
}

/// Keeps the speaker filled to `target` frames: it starts once that much is in, and its thread
/// wakes once a period of it has played.
fn keep_filled(pcm: &PCM, target: Frames, period: Frames, size: Frames) -> alsa::Result<()> {
    let sw = pcm.sw_params_current()?;
    sw.set_avail_min(size - target + period)?;
    sw.set_start_threshold(target)?;
    pcm.sw_params(&sw)
}

/// The speaker `device`, playing `buffer` and counting in `short` the samples it found missing
/// once fed; `lost` is set if the device goes.
pub fn playback(
    device: &str,
    (buffer, short): (&Buffer, &Arc<AtomicUsize>),
    lost: &Arc<AtomicBool>,
) -> Result<Stream, AudioError> {
    let Opened {
        pcm,
        sample,
        rate,
        channels,
        period,
        size,
    } = open(device, Direction::Playback)?;
    let mut target = period * START_TARGET_PERIODS;
    keep_filled(&pcm, target, period, size).map_err(|e| error(device, "software parameters", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (stopping, buffer, short, lost, name) = (
        Arc::clone(&stop),
        Arc::clone(buffer),
        Arc::clone(short),
        Arc::clone(lost),
        device.to_owned(),
    );
    let thread = std::thread::Builder::new()
        .name("speaker".into())
        .spawn(move || {
            let (mut floats, mut ints) = (Vec::new(), Vec::new());
            // Once fed, a sample missing is a shortfall the call's end should hold more against.
            let mut fed = false;
            let gone = |e: alsa::Error| {
                tracing::warn!("speaker {name}: {e}");
                lost.store(true, Ordering::Relaxed);
            };
            while !stopping.load(Ordering::Relaxed) {
                let filled = match pcm.avail_update() {
                    Ok(free) => size - free.clamp(0, size),
                    Err(e) if recovered(&pcm, e) => {
                        // It ran dry (or was suspended): a period more from now on.
                        if fed && target + period <= size / 2 {
                            target += period;
                            let _ = keep_filled(&pcm, target, period, size);
                            tracing::info!(speaker = %name, target_frames = target, "the speaker ran dry; keeping more in it");
                        }
                        0
                    }
                    Err(e) => return gone(e),
                };
                let wanted = (target - filled.min(target)) as usize;
                if wanted > 0 {
                    floats.clear();
                    let mut missing = 0;
                    if let Ok(mut buffer) = buffer.lock() {
                        for _ in 0..wanted {
                            let value = buffer.pop_front();
                            fed |= value.is_some();
                            missing += usize::from(fed && value.is_none());
                            floats.extend(std::iter::repeat_n(value.unwrap_or(0.0), channels));
                        }
                    }
                    if missing > 0 {
                        short.fetch_add(missing, Ordering::Relaxed);
                    }
                    let written = match sample {
                        Sample::F32 => pcm.io_f32().and_then(|io| io.writei(&floats)),
                        Sample::I16 => pcm.io_i16().and_then(|io| {
                            ints.clear();
                            ints.extend(
                                floats
                                    .iter()
                                    .map(|f| (f.clamp(-1.0, 1.0) * 32767.0) as i16),
                            );
                            io.writei(&ints)
                        }),
                    };
                    if let Err(e) = written
                        && !recovered(&pcm, e)
                    {
                        return gone(e);
                    }
                }
                if let Err(e) = pcm.wait(Some(WAIT_MS))
                    && !recovered(&pcm, e)
                {
                    return gone(e);
                }
            }
            let _ = pcm.drop();
        })
        .map_err(|e| AudioError::Device(e.to_string()))?;
    Ok(Stream {
        stop,
        thread: Some(thread),
        rate,
        period,
    })
}
