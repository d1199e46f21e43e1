//! G.711 (ITU-T): μ-law (PCMU) and A-law (PCMA), 8 kHz, one byte per sample.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

pub fn ulaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm;
    }
    pcm = pcm.min(CLIP) + BIAS;
    let exponent = (7 - (pcm as u32).leading_zeros().saturating_sub(17).min(7)) as i32;
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

pub fn ulaw_decode(byte: u8) -> i16 {
    let byte = !byte;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample);
    let sign = if pcm >= 0 { 0x80 } else { 0 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    let pcm = pcm.min(32767);
    let byte = if pcm < 256 {
        (pcm >> 4) as u8
    } else {
        let exponent = (31 - (pcm as u32).leading_zeros()) as i32 - 7;
        let mantissa = (pcm >> (exponent + 3)) & 0x0F;
        ((exponent << 4) | mantissa) as u8
    };
    (byte | sign) ^ 0x55
}

pub fn alaw_decode(byte: u8) -> i16 {
    let byte = byte ^ 0x55;
    let sign = byte & 0x80;
    let exponent = i32::from((byte >> 4) & 0x07);
    let mantissa = i32::from(byte & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signal-to-noise ratio of a 1 kHz tone through encode+decode.
    fn snr_db(encode: fn(i16) -> u8, decode: fn(u8) -> i16, amplitude: f64) -> f64 {
        let (mut signal, mut noise) = (0.0, 0.0);
        for n in 0..8000 {
            let x = (amplitude
                * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(n) / 8000.0).sin())
            .round();
            let y = f64::from(decode(encode(x as i16)));
            signal += x * x;
            noise += (x - y) * (x - y);
        }
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn round_trip_quality_matches_g711() {
        // G.711 gives ~38 dB SNR over a wide range of levels.
        for amplitude in [1000.0, 8000.0, 30000.0] {
            assert!(
                snr_db(ulaw_encode, ulaw_decode, amplitude) > 33.0,
                "μ-law at {amplitude}"
            );
            assert!(
                snr_db(alaw_encode, alaw_decode, amplitude) > 33.0,
                "A-law at {amplitude}"
            );
        }
    }

    #[test]
    fn reference_values() {
        // Silence and full scale, from the ITU tables.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        for byte in 0..=255u8 {
            // 0x7F is μ-law's "negative zero"; it decodes to 0, which encodes as 0xFF.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(
                ulaw_encode(ulaw_decode(byte)),
                expected,
                "μ-law code {byte:#x} is stable"
            );
            assert_eq!(
                alaw_encode(alaw_decode(byte)),
                byte,
                "A-law code {byte:#x} is stable"
            );
        }
    }
}
