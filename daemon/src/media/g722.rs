//! G.722 (ITU-T): 16 kHz wideband speech at 64 kbit/s — two ADPCM sub-bands (0–4 kHz and
//! 4–8 kHz) split and rejoined by a quadrature mirror filter; one byte per pair of samples.
//!
//! What most desk phones and PBXs offer as "HD voice". Only mode 1 (64 kbit/s, unpacked), which is
//! what RTP carries (RFC 3551 §4.5.2: payload type 9, `G722/8000` — the clock says 8000 for
//! historical reasons, the audio is 16 kHz).
//!
//! A port of the fixed-point reference as in SpanDSP's `g722_encode.c`/`g722_decode.c` by Steve
//! Underwood (placed in the public domain), itself based on the CMU ADPCM program ("Copyright (c)
//! CMU 1993, Computer Science, Speech Group, Chengxiang Lu and Alex Hauptmann; use for any research
//! or commercial purpose is completely unrestricted; we would appreciate acknowledgement of its
//! origin"). Bit-exact with it, so it interoperates with phones built on SpanDSP (baresip's g722
//! module, Asterisk, FreeSWITCH); the tests call baresip with tones. docs/decisions.md says why a
//! port rather than a crate.

/// One sub-band's ADPCM state (the reference's `g722_band_t`).
#[derive(Debug, Clone, Default)]
struct Band {
    s: i32,
    sp: i32,
    sz: i32,
    r: [i32; 3],
    a: [i32; 3],
    ap: [i32; 3],
    p: [i32; 3],
    d: [i32; 7],
    b: [i32; 7],
    bp: [i32; 7],
    sg: [i32; 7],
    nb: i32,
    det: i32,
}

impl Band {
    /// The reference's initial step sizes: 32 for the low band, 8 for the high one.
    fn new(det: i32) -> Self {
        Self {
            det,
            ..Self::default()
        }
    }
}

const QMF_COEFFS: [i32; 12] = [3, -11, 12, 32, -210, 951, 3876, -805, 362, -156, 53, -11];
const WL: [i32; 8] = [-60, -30, 58, 172, 334, 538, 1198, 3042];
const RL42: [i32; 16] = [0, 7, 6, 5, 4, 3, 2, 1, 7, 6, 5, 4, 3, 2, 1, 0];
const ILB: [i32; 32] = [
    2048, 2093, 2139, 2186, 2233, 2282, 2332, 2383, 2435, 2489, 2543, 2599, 2656, 2714, 2774, 2834,
    2896, 2960, 3025, 3091, 3158, 3228, 3298, 3371, 3444, 3520, 3597, 3676, 3756, 3838, 3922, 4008,
];
const QM4: [i32; 16] = [
    0, -20456, -12896, -8968, -6288, -4240, -2584, -1200, 20456, 12896, 8968, 6288, 4240, 2584,
    1200, 0,
];
const QM2: [i32; 4] = [-7408, -1616, 7408, 1616];
const WH: [i32; 3] = [0, -214, 798];
const RH2: [i32; 4] = [2, 1, 2, 1];

fn saturate(amp: i32) -> i32 {
    amp.clamp(i32::from(i16::MIN), i32::from(i16::MAX))
}

/// The step size that follows a sub-band's log scale factor `nb` (blocks 3L/3H, SCALEL/SCALEH).
fn step(nb: i32, shift_base: i32) -> i32 {
    let wd1 = (nb >> 6) & 31;
    let wd2 = shift_base - (nb >> 11);
    let wd3 = if wd2 < 0 {
        ILB[wd1 as usize] << -wd2
    } else {
        ILB[wd1 as usize] >> wd2
    };
    wd3 << 2
}

/// Block 4: the sub-band's pole-zero predictor, updated with the quantised difference `d`.
fn block4(band: &mut Band, d: i32) {
    // RECONS, PARREC
    band.d[0] = d;
    band.r[0] = saturate(band.s + d);
    band.p[0] = saturate(band.sz + d);

    // UPPOL2
    for i in 0..3 {
        band.sg[i] = band.p[i] >> 15;
    }
    let wd1 = saturate(band.a[1] << 2);
    let wd2 = if band.sg[0] == band.sg[1] { -wd1 } else { wd1 }.min(32767);
    let mut wd3 = (wd2 >> 7) + if band.sg[0] == band.sg[2] { 128 } else { -128 };
    wd3 += (band.a[2] * 32512) >> 15;
    band.ap[2] = wd3.clamp(-12288, 12288);

    // UPPOL1
    band.sg[0] = band.p[0] >> 15;
    band.sg[1] = band.p[1] >> 15;
    let wd1 = if band.sg[0] == band.sg[1] { 192 } else { -192 };
    let wd2 = (band.a[1] * 32640) >> 15;
    band.ap[1] = saturate(wd1 + wd2);
    let limit = saturate(15360 - band.ap[2]);
    band.ap[1] = band.ap[1].clamp(-limit, limit);

    // UPZERO
    let wd1 = if d == 0 { 0 } else { 128 };
    band.sg[0] = d >> 15;
    for i in 1..7 {
        band.sg[i] = band.d[i] >> 15;
        let wd2 = if band.sg[i] == band.sg[0] { wd1 } else { -wd1 };
        let wd3 = (band.b[i] * 32640) >> 15;
        band.bp[i] = saturate(wd2 + wd3);
    }

    // DELAYA
    for i in (1..7).rev() {
        band.d[i] = band.d[i - 1];
        band.b[i] = band.bp[i];
    }
    for i in (1..3).rev() {
        band.r[i] = band.r[i - 1];
        band.p[i] = band.p[i - 1];
        band.a[i] = band.ap[i];
    }

    // FILTEP
    let wd1 = (band.a[1] * saturate(band.r[1] + band.r[1])) >> 15;
    let wd2 = (band.a[2] * saturate(band.r[2] + band.r[2])) >> 15;
    band.sp = saturate(wd1 + wd2);

    // FILTEZ
    band.sz = 0;
    for i in (1..7).rev() {
        band.sz += (band.b[i] * saturate(band.d[i] + band.d[i])) >> 15;
    }
    band.sz = saturate(band.sz);

    // PREDIC
    band.s = saturate(band.sp + band.sz);
}

/// 16 kHz samples in, one byte per two samples out.
#[derive(Debug, Clone)]
pub struct Encoder {
    /// The transmit QMF's history.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            x: [0; 24],
            band: [Band::new(32), Band::new(8)],
        }
    }
}

impl Encoder {
    /// Encodes `pcm` (an even number of 16 kHz samples; a last odd one is left out) into `out`.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) {
        const Q6: [i32; 32] = [
            0, 35, 72, 110, 150, 190, 233, 276, 323, 370, 422, 473, 530, 587, 650, 714, 786, 858,
            940, 1023, 1121, 1219, 1339, 1458, 1612, 1765, 1980, 2195, 2557, 2919, 0, 0,
        ];
        const ILN: [i32; 32] = [
            0, 63, 62, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13,
            12, 11, 10, 9, 8, 7, 6, 5, 4, 0,
        ];
        const ILP: [i32; 32] = [
            0, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41,
            40, 39, 38, 37, 36, 35, 34, 33, 32, 0,
        ];
        const IHN: [i32; 3] = [0, 1, 0];
        const IHP: [i32; 3] = [0, 3, 2];
        for pair in pcm.chunks_exact(2) {
            // The transmit QMF: two samples in, one low-band and one high-band sample out.
            self.x.copy_within(2.., 0);
            self.x[22] = i32::from(pair[0]);
            self.x[23] = i32::from(pair[1]);
            let (mut sumeven, mut sumodd) = (0, 0);
            for i in 0..12 {
                sumodd += self.x[2 * i] * QMF_COEFFS[i];
                sumeven += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
            }
            let xlow = (sumeven + sumodd) >> 14;
            let xhigh = (sumeven - sumodd) >> 14;

            // Low band: SUBTRA, QUANTL (6 bits).
            let low = &mut self.band[0];
            let el = saturate(xlow - low.s);
            let wd = if el >= 0 { el } else { -(el + 1) };
            let i = (1..30)
                .find(|&i| wd < (Q6[i] * low.det) >> 12)
                .unwrap_or(30);
            let ilow = if el < 0 { ILN[i] } else { ILP[i] };
            // INVQAL, LOGSCL, SCALEL
            let ril = (ilow >> 2) as usize;
            let dlow = (low.det * QM4[ril]) >> 15;
            low.nb = (((low.nb * 127) >> 7) + WL[RL42[ril] as usize]).clamp(0, 18432);
            low.det = step(low.nb, 8);
            block4(low, dlow);

            // High band: SUBTRA, QUANTH (2 bits).
            let high = &mut self.band[1];
            let eh = saturate(xhigh - high.s);
            let wd = if eh >= 0 { eh } else { -(eh + 1) };
            let mih = if wd >= (564 * high.det) >> 12 { 2 } else { 1 };
            let ihigh = if eh < 0 { IHN[mih] } else { IHP[mih] };
            // INVQAH, LOGSCH, SCALEH
            let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
            high.nb = (((high.nb * 127) >> 7) + WH[RH2[ihigh as usize] as usize]).clamp(0, 22528);
            high.det = step(high.nb, 10);
            block4(high, dhigh);

            out.push(((ihigh << 6) | ilow) as u8);
        }
    }
}

/// One byte in, two 16 kHz samples out.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The receive QMF's history.
    x: [i32; 24],
    band: [Band; 2],
}

impl Default for Decoder {
    fn default() -> Self {
        Self {
            x: [0; 24],
            band: [Band::new(32), Band::new(8)],
        }
    }
}

impl Decoder {
    /// Decodes `payload` (64 kbit/s codes) into `out`, two samples per byte.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        const QM6: [i32; 64] = [
            -136, -136, -136, -136, -24808, -21904, -19008, -16704, -14984, -13512, -12280, -11192,
            -10232, -9360, -8576, -7856, -7192, -6576, -6000, -5456, -4944, -4464, -4008, -3576,
            -3168, -2776, -2400, -2032, -1688, -1360, -1040, -728, 24808, 21904, 19008, 16704,
            14984, 13512, 12280, 11192, 10232, 9360, 8576, 7856, 7192, 6576, 6000, 5456, 4944,
            4464, 4008, 3576, 3168, 2776, 2400, 2032, 1688, 1360, 1040, 728, 432, 136, -432, -136,
        ];
        for &code in payload {
            let code = i32::from(code);
            let ilow = code & 0x3f;
            let ihigh = (code >> 6) & 0x3;

            // Low band: INVQBL, RECONS, LIMIT; then INVQAL, LOGSCL, SCALEL.
            let low = &mut self.band[0];
            let rlow = (low.s + ((low.det * QM6[ilow as usize]) >> 15)).clamp(-16384, 16383);
            let ril = (ilow >> 2) as usize;
            let dlowt = (low.det * QM4[ril]) >> 15;
            low.nb = (((low.nb * 127) >> 7) + WL[RL42[ril] as usize]).clamp(0, 18432);
            low.det = step(low.nb, 8);
            block4(low, dlowt);

            // High band: INVQAH, RECONS, LIMIT; LOGSCH, SCALEH.
            let high = &mut self.band[1];
            let dhigh = (high.det * QM2[ihigh as usize]) >> 15;
            let rhigh = (dhigh + high.s).clamp(-16384, 16383);
            high.nb = (((high.nb * 127) >> 7) + WH[RH2[ihigh as usize] as usize]).clamp(0, 22528);
            high.det = step(high.nb, 10);
            block4(high, dhigh);

            // The receive QMF: two 16 kHz samples.
            self.x.copy_within(2.., 0);
            self.x[22] = rlow + rhigh;
            self.x[23] = rlow - rhigh;
            let (mut xout1, mut xout2) = (0, 0);
            for i in 0..12 {
                xout2 += self.x[2 * i] * QMF_COEFFS[i];
                xout1 += self.x[2 * i + 1] * QMF_COEFFS[11 - i];
            }
            out.push(saturate(xout1 >> 11) as i16);
            out.push(saturate(xout2 >> 11) as i16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f64, samples: usize, amplitude: f64) -> Vec<i16> {
        (0..samples)
            .map(|i| {
                (amplitude * (2.0 * std::f64::consts::PI * hz * i as f64 / 16000.0).sin()) as i16
            })
            .collect()
    }

    /// The level of `hz` in `samples` (16 kHz) by correlation, as a fraction of full scale.
    fn level(samples: &[i16], hz: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, s) in samples.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / 16000.0;
            re += f64::from(*s) * phase.cos();
            im += f64::from(*s) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / samples.len() as f64 / 32768.0
    }

    fn round_trip(input: &[i16]) -> Vec<i16> {
        let (mut encoder, mut decoder) = (Encoder::default(), Decoder::default());
        let (mut coded, mut decoded) = (Vec::new(), Vec::new());
        for frame in input.chunks(320) {
            coded.clear();
            encoder.encode(frame, &mut coded);
            assert_eq!(coded.len(), frame.len() / 2, "one byte per two samples");
            decoder.decode(&coded, &mut decoded);
        }
        decoded
    }

    #[test]
    fn a_tone_in_either_band_comes_back_at_its_level() {
        // 1 kHz is in the low band, 6 kHz in the high one (G.711 cannot carry 6 kHz at all).
        for hz in [1000.0, 6000.0] {
            let input = tone(hz, 16000, 10000.0);
            let output = round_trip(&input);
            // Past the first 100 ms (the ADPCM adapts), compare the tone's level both sides.
            let (before, after) = (level(&input[1600..], hz), level(&output[1600..], hz));
            assert!(
                (after / before - 1.0).abs() < 0.1,
                "{hz} Hz: {before:.3} in, {after:.3} out"
            );
        }
    }

    #[test]
    fn silence_stays_silent_and_loud_input_does_not_overflow() {
        let silence = round_trip(&vec![0; 3200]);
        assert!(
            silence.iter().all(|s| s.abs() < 64),
            "silence in, silence out"
        );
        let square: Vec<i16> = (0..16000)
            .map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        let loud = round_trip(&square);
        assert_eq!(loud.len(), square.len());
    }
}
