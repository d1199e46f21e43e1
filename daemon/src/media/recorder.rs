//! A call's recording as a file: stereo Ogg Opus (RFC 7845), the agent on the left and the far
//! end on the right, one 20 ms frame at a time at the call's codec rate. A page is ended every
//! second and written out, so a crash loses at most the last second of a recording.

use std::io::{BufWriter, Write};
use std::path::Path;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// Frames (of 20 ms) per Ogg page: a page is flushed to the file every second.
const FRAMES_PER_PAGE: u32 = 50;
/// Opus granule positions count 48 kHz samples whatever the input rate (RFC 7845 §4).
const GRANULE_RATE: u64 = 48_000;

#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    /// `file` is the file's name only: pages see these messages.
    #[error("cannot write the recording {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("the Opus encoder refused {what}: {reason}")]
    Encoder { what: &'static str, reason: String },
}

/// A recording being written to `W` (a file; a buffer in tests).
pub struct RecordingFile<W: Write = BufWriter<std::fs::File>> {
    file: String,
    writer: PacketWriter<'static, W>,
    encoder: opus2::Encoder,
    serial: u32,
    /// Samples per channel in one 20 ms frame at `rate`.
    frame: usize,
    rate: u32,
    /// Granule position after the last packet written: 48 kHz samples, pre-skip included.
    granule: u64,
    pre_skip: u64,
    /// The newest encoded packet, held back until we know whether it ends the stream.
    held: Option<Vec<u8>>,
    frames: u32,
    interleaved: Vec<i16>,
    encoded: Vec<u8>,
}

impl RecordingFile {
    /// Creates `path` (owner-only) for a call at `rate` Hz (8, 12, 16, 24 or 48 kHz), with
    /// `title` in its tags (the conversation id).
    pub fn create(path: &Path, rate: u32, title: &str) -> Result<Self, RecorderError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (file, _) = crate::private_files::open(path, crate::private_files::Existing::Truncate)
            .map_err(|e| RecorderError::Io {
                file: name.clone(),
                source: e.source,
            })?;
        let serial = {
            let mut bytes = [0u8; 4];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
            u32::from_le_bytes(bytes)
        };
        Self::start(BufWriter::new(file), name, serial, rate, title)
    }
}

impl<W: Write> RecordingFile<W> {
    /// Writes the two header pages (RFC 7845 §5) to `out`.
    fn start(
        out: W,
        name: String,
        serial: u32,
        rate: u32,
        title: &str,
    ) -> Result<Self, RecorderError> {
        let io = |source| RecorderError::Io {
            file: name.clone(),
            source,
        };
        let mut encoder =
            opus2::Encoder::new(rate, opus2::Channels::Stereo, opus2::Application::Voip).map_err(
                |e| RecorderError::Encoder {
                    what: "the call's sample rate",
                    reason: e.to_string(),
                },
            )?;
        let _ = encoder.set_bitrate(opus2::Bitrate::Bits(32_000));
        let lookahead = encoder.get_lookahead().unwrap_or(0).max(0) as u64;
        let pre_skip = u16::try_from(lookahead * GRANULE_RATE / u64::from(rate)).unwrap_or(0);
        let mut writer = PacketWriter::new(out);
        // OpusHead: version 1, 2 channels, pre-skip, input rate, no gain, mapping family 0.
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(2);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&rate.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        writer
            .write_packet(head, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let vendor = concat!("softphone-bridge ", env!("CARGO_PKG_VERSION"));
        let comments = [
            format!("TITLE={title}"),
            "ENCODER=softphone-bridge (libopus)".to_owned(),
            "CHANNELS=left: agent, right: far end".to_owned(),
        ];
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&(comments.len() as u32).to_le_bytes());
        for comment in &comments {
            tags.extend_from_slice(&(comment.len() as u32).to_le_bytes());
            tags.extend_from_slice(comment.as_bytes());
        }
        writer
            .write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        writer.inner_mut().flush().map_err(io)?;
        Ok(Self {
            file: name,
            writer,
            encoder,
            serial,
            frame: (rate / 50) as usize,
            rate,
            pre_skip: u64::from(pre_skip),
            granule: 0,
            held: None,
            frames: 0,
            interleaved: Vec::new(),
            encoded: vec![0; 4000],
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// One 20 ms frame of each side (shorter input is padded with silence, longer cut).
    pub fn write(&mut self, agent: &[i16], far: &[i16]) -> Result<(), RecorderError> {
        self.interleaved.clear();
        for i in 0..self.frame {
            self.interleaved.push(agent.get(i).copied().unwrap_or(0));
            self.interleaved.push(far.get(i).copied().unwrap_or(0));
        }
        let size = self
            .encoder
            .encode(&self.interleaved, &mut self.encoded)
            .map_err(|e| RecorderError::Encoder {
                what: "a frame",
                reason: e.to_string(),
            })?;
        let packet = self.encoded[..size].to_vec();
        if let Some(previous) = self.held.replace(packet) {
            self.frames += 1;
            let end = if self.frames.is_multiple_of(FRAMES_PER_PAGE) {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.put(previous, end)?;
            if end == PacketWriteEndInfo::EndPage {
                let file = self.file.clone();
                self.writer
                    .inner_mut()
                    .flush()
                    .map_err(|source| RecorderError::Io { file, source })?;
            }
        }
        Ok(())
    }

    fn put(&mut self, packet: Vec<u8>, end: PacketWriteEndInfo) -> Result<(), RecorderError> {
        self.granule += GRANULE_RATE / 50;
        let file = self.file.clone();
        self.writer
            .write_packet(packet, self.serial, end, self.granule)
            .map_err(|source| RecorderError::Io { file, source })
    }

    /// Ends the stream; the seconds of audio it holds and the output.
    pub fn finish(mut self) -> Result<(f64, W), RecorderError> {
        // A stream needs a last packet to carry its end: a frame of silence if none is held.
        let last = match self.held.take() {
            Some(packet) => packet,
            None => {
                self.interleaved.clear();
                self.interleaved.resize(self.frame * 2, 0);
                let size = self
                    .encoder
                    .encode(&self.interleaved, &mut self.encoded)
                    .map_err(|e| RecorderError::Encoder {
                        what: "the last frame",
                        reason: e.to_string(),
                    })?;
                self.encoded[..size].to_vec()
            }
        };
        self.frames += 1;
        self.put(last, PacketWriteEndInfo::EndStream)?;
        let mut out = self.writer.into_inner();
        out.flush().map_err(|source| RecorderError::Io {
            file: self.file.clone(),
            source,
        })?;
        // What a player plays: the granule less the encoder's pre-skip (RFC 7845 §4).
        let seconds = self.granule.saturating_sub(self.pre_skip) as f64 / GRANULE_RATE as f64;
        Ok((seconds, out))
    }
}

impl RecordingFile {
    /// Ends the stream and closes the file, on disk; the seconds of audio it holds.
    pub fn close(self) -> Result<f64, RecorderError> {
        let (seconds, out) = self.finish()?;
        if let Ok(file) = out.into_inner() {
            let _ = file.sync_all();
        }
        Ok(seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ogg pages of `bytes`: (header type, granule, serial, sequence, packets' bytes).
    fn pages(bytes: &[u8]) -> Vec<(u8, u64, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 27 <= bytes.len() {
            assert_eq!(&bytes[at..at + 4], b"OggS", "a page starts at {at}");
            let kind = bytes[at + 5];
            let granule = u64::from_le_bytes(bytes[at + 6..at + 14].try_into().expect("8"));
            let serial = u32::from_le_bytes(bytes[at + 14..at + 18].try_into().expect("4"));
            let sequence = u32::from_le_bytes(bytes[at + 18..at + 22].try_into().expect("4"));
            let segments = usize::from(bytes[at + 26]);
            let table = &bytes[at + 27..at + 27 + segments];
            let size: usize = table.iter().map(|s| usize::from(*s)).sum();
            let body = at + 27 + segments;
            out.push((
                kind,
                granule,
                serial,
                sequence,
                bytes[body..body + size].to_vec(),
            ));
            at = body + size;
        }
        assert_eq!(at, bytes.len(), "nothing after the last page");
        out
    }

    fn tone(rate: u32, hz: f64, frame: usize, n: usize) -> Vec<i16> {
        (0..frame)
            .map(|i| {
                let t = (n * frame + i) as f64 / f64::from(rate);
                (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn headers_granules_and_the_end_follow_rfc_7845() {
        let mut file =
            RecordingFile::start(Vec::new(), "t.opus".into(), 7, 8000, "call-1").expect("start");
        for n in 0..120 {
            file.write(&tone(8000, 1000.0, 160, n), &tone(8000, 441.0, 160, n))
                .expect("write");
        }
        let pre_skip = file.pre_skip;
        let (seconds, bytes) = file.finish().expect("finish");
        let pages = pages(&bytes);
        // OpusHead alone on the first page, beginning the stream; OpusTags alone on the second.
        let (kind, granule, serial, sequence, head) = &pages[0];
        assert_eq!((*kind, *granule, *serial, *sequence), (2, 0, 7, 0));
        assert_eq!(&head[0..8], b"OpusHead");
        assert_eq!((head[8], head[9]), (1, 2), "version 1, 2 channels");
        assert_eq!(
            u64::from(u16::from_le_bytes([head[10], head[11]])),
            pre_skip
        );
        assert_eq!(
            u32::from_le_bytes(head[12..16].try_into().expect("4")),
            8000
        );
        assert_eq!(head[18], 0, "mapping family 0");
        assert_eq!(&pages[1].4[0..8], b"OpusTags");
        assert!(String::from_utf8_lossy(&pages[1].4).contains("TITLE=call-1"));
        assert_eq!(pages[1].1, 0);
        // Audio: a page a second (50 packets), granules in 48 kHz samples, the last page ends it.
        let audio = &pages[2..];
        assert_eq!(audio.len(), 3, "120 frames: 50 + 50 + 20");
        assert_eq!(audio[0].1, 50 * 960);
        assert_eq!(audio[1].1, 100 * 960);
        assert_eq!(audio[2].1, 120 * 960);
        assert_eq!(audio[2].0 & 4, 4, "end of stream on the last page");
        assert!(audio.iter().all(|p| p.2 == 7), "one serial");
        assert!(
            audio.iter().enumerate().all(|(i, p)| p.3 == i as u32 + 2),
            "pages numbered in order"
        );
        assert!((seconds - (120.0 * 960.0 - pre_skip as f64) / 48000.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_recording_is_still_a_complete_stream() {
        let file = RecordingFile::start(Vec::new(), "t.opus".into(), 1, 16000, "c").expect("start");
        let (seconds, bytes) = file.finish().expect("finish");
        let pages = pages(&bytes);
        assert_eq!(pages.len(), 3, "the headers and one silent packet");
        assert_eq!(pages[2].0 & 4, 4, "ended");
        assert!(seconds < 0.02);
    }

    #[test]
    fn an_unsupported_rate_is_a_clear_error() {
        let error = RecordingFile::start(Vec::new(), "t.opus".into(), 1, 44100, "c")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("sample rate"), "{error}");
    }
}
