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
    #[error("cannot write the recording {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the Opus encoder refused {what}: {reason}")]
    Encoder { what: &'static str, reason: String },
}

pub struct RecordingFile {
    path: String,
    writer: PacketWriter<'static, BufWriter<std::fs::File>>,
    encoder: opus2::Encoder,
    serial: u32,
    /// Samples per channel in one 20 ms frame at `rate`.
    frame: usize,
    rate: u32,
    /// Granule position after the last packet written.
    granule: u64,
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
        let shown = path.display().to_string();
        let io = |source| RecorderError::Io {
            path: shown.clone(),
            source,
        };
        let (file, _) = crate::private_files::open(path, crate::private_files::Existing::Truncate)
            .map_err(|e| io(e.source))?;
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
        let serial = u32::from_le_bytes(*b"SPBR");
        let mut writer = PacketWriter::new(BufWriter::new(file));
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
            path: shown,
            writer,
            encoder,
            serial,
            frame: (rate / 50) as usize,
            rate,
            granule: u64::from(pre_skip),
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
                let path = self.path.clone();
                self.writer
                    .inner_mut()
                    .flush()
                    .map_err(|source| RecorderError::Io { path, source })?;
            }
        }
        Ok(())
    }

    fn put(&mut self, packet: Vec<u8>, end: PacketWriteEndInfo) -> Result<(), RecorderError> {
        self.granule += GRANULE_RATE / 50;
        let path = self.path.clone();
        self.writer
            .write_packet(packet, self.serial, end, self.granule)
            .map_err(|source| RecorderError::Io { path, source })
    }

    /// Ends the stream and closes the file; the seconds of audio it holds.
    pub fn finish(mut self) -> Result<f64, RecorderError> {
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
        let path = self.path.clone();
        let mut file = self.writer.into_inner();
        file.flush().map_err(|source| RecorderError::Io {
            path: path.clone(),
            source,
        })?;
        if let Ok(file) = file.into_inner() {
            let _ = file.sync_all();
        }
        Ok(f64::from(self.frames) / 50.0)
    }
}
