//! The `file` audio backend: WAV in, WAV out.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{AudioError, AudioSink, AudioSource, CallAudio};

/// How late the simulated speakerphone's sound reaches the microphone.
const SPEAKERPHONE_DELAY_MS: u32 = 30;

/// The file backend as a speakerphone: what the agent hears (written to the sink) comes back
/// into the microphone `db` dB down (clamped to −60…0) and [`SPEAKERPHONE_DELAY_MS`] late, on
/// top of the input file — an echo for the echo canceller to remove, with no devices.
pub fn speakerphone(audio: CallAudio, rate: u32, db: f32) -> CallAudio {
    let delay = (rate * SPEAKERPHONE_DELAY_MS / 1000) as usize;
    // The air between speaker and microphone: the delay's worth of silence to start with.
    let air = Arc::new(Mutex::new(VecDeque::from(vec![0i16; delay])));
    CallAudio {
        source: Box::new(Microphone {
            inner: audio.source,
            air: Arc::clone(&air),
            gain: 10f32.powf(db.clamp(-60.0, 0.0) / 20.0),
            bound: delay + rate as usize / 5,
        }),
        sink: Box::new(Speaker {
            inner: audio.sink,
            air,
        }),
        unavailable: audio.unavailable,
    }
}

struct Microphone {
    inner: Box<dyn AudioSource>,
    air: Arc<Mutex<VecDeque<i16>>>,
    gain: f32,
    /// The most sound kept in the air (the delay and 200 ms): the loop is paced by the call.
    bound: usize,
}

impl AudioSource for Microphone {
    fn read(&mut self, frame: &mut [i16]) {
        self.inner.read(frame);
        let Ok(mut air) = self.air.lock() else {
            return;
        };
        let excess = air.len().saturating_sub(self.bound);
        air.drain(..excess);
        for sample in frame.iter_mut() {
            let echo = air.pop_front().unwrap_or(0);
            let mixed = f32::from(*sample) + f32::from(echo) * self.gain;
            *sample = mixed.clamp(-32768.0, 32767.0) as i16;
        }
    }
}

struct Speaker {
    inner: Box<dyn AudioSink>,
    air: Arc<Mutex<VecDeque<i16>>>,
}

impl AudioSink for Speaker {
    fn write(&mut self, samples: &[i16]) {
        if let Ok(mut air) = self.air.lock() {
            air.extend(samples);
        }
        self.inner.write(samples);
    }

    fn finish(self: Box<Self>) {
        self.inner.finish();
    }
}

/// A WAV file played in a loop, mixed to mono and resampled (linear) to the call's rate, read
/// as it plays: loading a minute of 48 kHz stereo whole took ~30 MB of temporaries per call, and
/// the allocator kept them resident after the call (issue 15's "44 MB mapping").
pub struct WavSource {
    path: PathBuf,
    samples: Samples,
    channels: usize,
    /// The next frames, mixed to mono, and where in them we are.
    block: Vec<f32>,
    taken: usize,
    /// Input samples per output sample.
    step: f64,
    /// Where the next output sample falls between `previous` and `next` (0 ≤ at < 1 after
    /// catching up).
    at: f64,
    previous: f32,
    next: f32,
}

/// Frames read per block (20 ms at 48 kHz).
const BLOCK_FRAMES: usize = 960;

/// Where the samples come from.
enum Samples {
    /// 16-bit PCM, the usual case, a block of bytes at a time: hound reads one sample per call,
    /// which was a tenth of a PCMU call's CPU with this backend.
    Pcm16 {
        file: std::io::BufReader<std::fs::File>,
        /// Where the samples start in the file, how many bytes they are, how many were read.
        start: u64,
        bytes: u64,
        read: u64,
        raw: Vec<u8>,
    },
    /// Other formats, through hound; `scale` maps integer samples to `[-1, 1]` (`None`: float).
    Other {
        reader: hound::WavReader<std::io::BufReader<std::fs::File>>,
        scale: Option<f32>,
    },
}

impl WavSource {
    pub fn open(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let error = |message: String| AudioError::File {
            path: path.to_owned(),
            message,
        };
        let reader = hound::WavReader::open(path).map_err(|e| error(e.to_string()))?;
        let spec = reader.spec();
        if reader.duration() == 0 {
            return Err(error("has no samples".into()));
        }
        let channels = usize::from(spec.channels.max(1));
        let samples = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Int, 16) => {
                let bytes = u64::from(reader.len()) * 2;
                // hound has read the header: the file stands where the samples start.
                let mut file = reader.into_inner();
                let start =
                    std::io::Seek::stream_position(&mut file).map_err(|e| error(e.to_string()))?;
                Samples::Pcm16 {
                    file,
                    start,
                    bytes,
                    read: 0,
                    raw: vec![0; BLOCK_FRAMES * channels * 2],
                }
            }
            (hound::SampleFormat::Int, bits) => Samples::Other {
                reader,
                scale: Some(1.0 / (1u64 << (bits.clamp(1, 32) - 1)) as f32),
            },
            (hound::SampleFormat::Float, _) => Samples::Other {
                reader,
                scale: None,
            },
        };
        let mut source = Self {
            path: path.to_owned(),
            samples,
            channels,
            block: Vec::with_capacity(BLOCK_FRAMES),
            taken: 0,
            step: f64::from(spec.sample_rate.max(1)) / f64::from(rate.max(1)),
            at: 0.0,
            previous: 0.0,
            next: 0.0,
        };
        source.previous = source.mono();
        source.next = source.mono();
        Ok(source)
    }

    /// The next input frame mixed to mono; from the start again at the end.
    fn mono(&mut self) -> f32 {
        if self.taken >= self.block.len() {
            self.block.clear();
            self.taken = 0;
            if let Err(e) = self.fill() {
                tracing::warn!("playing {}: {e}", self.path.display());
            }
            if self.block.is_empty() {
                return 0.0;
            }
        }
        self.taken += 1;
        self.block[self.taken - 1]
    }

    /// Up to a block of frames into `block`, mixed to mono, going back to the start at the end.
    fn fill(&mut self) -> Result<(), String> {
        let channels = self.channels;
        match &mut self.samples {
            Samples::Pcm16 {
                file,
                start,
                bytes,
                read,
                raw,
            } => {
                use std::io::{Read, Seek, SeekFrom};
                let frame = channels * 2;
                if *bytes - *read < frame as u64 {
                    file.seek(SeekFrom::Start(*start))
                        .map_err(|e| e.to_string())?;
                    *read = 0;
                }
                let left = usize::try_from(*bytes - *read).unwrap_or(usize::MAX);
                let wanted = raw.len().min(left) / frame * frame;
                let mut got = 0;
                while got < wanted {
                    match file
                        .read(&mut raw[got..wanted])
                        .map_err(|e| e.to_string())?
                    {
                        0 => break,
                        n => got += n,
                    }
                }
                if got < wanted {
                    // Shorter than its header says (a recording cut off): it loops where it ends.
                    *bytes = *read + got as u64;
                }
                let n = got / frame * frame;
                *read += n as u64;
                let scale = 1.0 / (32768.0 * channels as f32);
                self.block.extend(raw[..n].chunks_exact(frame).map(|frame| {
                    frame
                        .chunks_exact(2)
                        .map(|s| f32::from(i16::from_le_bytes([s[0], s[1]])))
                        .sum::<f32>()
                        * scale
                }));
            }
            Samples::Other { reader, scale } => {
                let mut restarted = false;
                while self.block.len() < BLOCK_FRAMES {
                    let (mut sum, mut got) = (0.0, 0);
                    for _ in 0..channels {
                        let sample = match scale {
                            Some(scale) => reader
                                .samples::<i32>()
                                .next()
                                .map(|s| s.map(|v| v as f32 * *scale)),
                            None => reader.samples::<f32>().next(),
                        };
                        match sample {
                            Some(value) => {
                                sum += value.map_err(|e| e.to_string())?;
                                got += 1;
                            }
                            None => break,
                        }
                    }
                    if got > 0 {
                        self.block.push(sum / got as f32);
                        continue;
                    }
                    // The end: from the start again (at once if nothing was read yet).
                    reader.seek(0).map_err(|e| e.to_string())?;
                    if !self.block.is_empty() || restarted {
                        break;
                    }
                    restarted = true;
                }
            }
        }
        Ok(())
    }
}

impl AudioSource for WavSource {
    fn read(&mut self, frame: &mut [i16]) {
        for sample in frame {
            while self.at >= 1.0 {
                self.previous = self.next;
                self.next = self.mono();
                self.at -= 1.0;
            }
            let value = self.previous + (self.next - self.previous) * self.at as f32;
            *sample = (value.clamp(-1.0, 1.0) * 32767.0) as i16;
            self.at += self.step;
        }
    }
}

/// Records what the agent hears as 16-bit mono WAV.
pub struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl WavSink {
    pub fn create(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // What the agent hears is nobody else's business: the recording is owner-only.
        let (file, tightened) =
            crate::private_files::open(path, crate::private_files::Existing::Truncate).map_err(
                |e| AudioError::File {
                    path: e.path,
                    message: e.source.to_string(),
                },
            )?;
        if let Some(tightened) = tightened {
            tightened.warn();
        }
        let writer = hound::WavWriter::new(std::io::BufWriter::new(file), spec).map_err(|e| {
            AudioError::File {
                path: path.to_owned(),
                message: e.to_string(),
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
            writer,
        })
    }
}

impl AudioSink for WavSink {
    fn write(&mut self, samples: &[i16]) {
        for sample in samples {
            if let Err(e) = self.writer.write_sample(*sample) {
                tracing::warn!("recording to {}: {e}", self.path.display());
                return;
            }
        }
    }

    fn finish(self: Box<Self>) {
        if let Err(e) = self.writer.finalize() {
            tracing::warn!("closing recording {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_48k_stereo_file_plays_as_8k_mono_in_a_loop_and_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&input, spec).expect("create");
        for n in 0..4800 {
            let v = (10000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 48000.0).sin())
                as i16;
            writer.write_sample(v).expect("left");
            writer.write_sample(v).expect("right");
        }
        writer.finalize().expect("finalize");
        let mut source = WavSource::open(&input, 8000).expect("opens");
        let mut frame = vec![0i16; 160];
        source.read(&mut frame);
        // 1 kHz at 8 kHz: 8 samples per period, peak ~10000.
        assert!(frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0) > 9000);
        assert_eq!(frame[0], frame[8], "periodic");
        let mut more = vec![0i16; 800];
        source.read(&mut more);
        assert!(
            more[700..].iter().any(|s| *s != 0),
            "loops past the end (800 samples at 8 kHz)"
        );

        let output = dir.path().join("out.wav");
        let mut sink: Box<dyn AudioSink> =
            Box::new(WavSink::create(&output, 8000).expect("create"));
        sink.write(&frame);
        sink.finish();
        let reader = hound::WavReader::open(&output).expect("recorded");
        assert_eq!((reader.spec().sample_rate, reader.len()), (8000, 160));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&output)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "recordings are owner-only");
        }
    }

    /// 16-bit files are read a block at a time, other formats through hound: the same samples,
    /// and the loop goes on from the first sample without a gap.
    #[test]
    fn every_format_plays_the_same_samples_and_loops_seamlessly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ramp: Vec<i16> = (0..1000).map(|n| (n * 30 - 15000) as i16).collect();
        let mut played = Vec::new();
        for bits in [16u16, 24] {
            let input = dir.path().join(format!("ramp{bits}.wav"));
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 8000,
                bits_per_sample: bits,
                sample_format: hound::SampleFormat::Int,
            };
            let mut writer = hound::WavWriter::create(&input, spec).expect("create");
            for v in &ramp {
                let sample = i32::from(*v) << (bits - 16);
                writer.write_sample(sample).expect("sample");
            }
            writer.finalize().expect("finalize");
            let mut source = WavSource::open(&input, 8000).expect("opens");
            let mut out = vec![0i16; 2500];
            source.read(&mut out);
            played.push(out);
        }
        assert_eq!(played[0], played[1], "16-bit and 24-bit read alike");
        // Rate 8000 → 8000: sample n of the output is the file's sample n, looping every 1000.
        for (n, sample) in played[0].iter().enumerate() {
            let expected = ramp[n % 1000];
            assert!(
                (i32::from(*sample) - i32::from(expected)).abs() <= 1,
                "sample {n}: {sample} against {expected}"
            );
        }
    }

    /// A 16-bit file cut off (its header promises more than it holds) loops where it ends.
    #[test]
    fn a_file_shorter_than_its_header_loops_where_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("cut.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&input, spec).expect("create");
        for n in 0..1000i16 {
            writer.write_sample(n * 10 + 1).expect("sample");
        }
        writer.finalize().expect("finalize");
        // 400 samples' bytes lost from the end: 600 left.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&input)
            .expect("open");
        let length = file.metadata().expect("metadata").len();
        file.set_len(length - 800).expect("truncate");
        let mut source = WavSource::open(&input, 8000).expect("opens");
        let mut out = vec![0i16; 1500];
        source.read(&mut out);
        for (n, sample) in out.iter().enumerate() {
            let expected = (n % 600) as i16 * 10 + 1;
            assert!(
                (i32::from(*sample) - i32::from(expected)).abs() <= 1,
                "sample {n}: {sample} against {expected}"
            );
        }
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let err = WavSource::open(Path::new("/nonexistent/tone.wav"), 8000)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/tone.wav"), "{err}");
    }
}
