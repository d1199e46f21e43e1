"""Speech in, PESQ out, for the voice-quality bench (daemon/benches/quality.rs).

  quality.py speech DIR     writes DIR/speech-8k.wav (mono) and DIR/speech-48k.wav (stereo), 60 s of
                            espeak-ng speech (a few sentences, repeated) at -20 dBFS RMS
  quality.py score REF DEG  PESQ (ITU-T P.862, the `pesq` package) of the recording DEG against the
                            reference REF: wide band at 16 kHz when DEG is wide band, else narrow band
                            at 8 kHz. DEG's first second (the jitter buffer settling) is skipped; the
                            reference segment is found by cross-correlation, since the sender's file
                            loops and the recording starts wherever the call did. The same
                            SECONDS of the reference are then scored for every recording: from
                            its first pause after 2 s (the sender starts the file anew each call),
                            so where a receiver's recording happens to start (its first frames of
                            silence) does not move the cut into a word. Prints the score.
"""
import subprocess, sys, tempfile, wave

import numpy as np
from pesq import pesq

TEXT = ("The quick brown fox jumps over the lazy dog. Please hold while I transfer your call. "
        "Your account number ends in four seven two nine. Thank you for calling, how can I help you today? "
        "We will send the replacement part by Thursday afternoon. ")


def read(path):
    with wave.open(path) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype='<i2').astype(np.float64) / 32768
    if channels > 1:
        data = data.reshape(-1, channels)[:, 0]
    return rate, data


def write(path, rate, data, channels=1):
    pcm = (np.clip(data, -1, 1) * 32767).astype('<i2')
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1).reshape(-1)
    with wave.open(path, 'wb') as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def resample(data, source, target):
    """Band-limited resampling by FFT (offline files only)."""
    if source == target:
        return data
    n = int(round(len(data) * target / source))
    spectrum = np.fft.rfft(data)
    keep = min(len(spectrum), n // 2 + 1)
    out = np.zeros(n // 2 + 1, dtype=complex)
    out[:keep] = spectrum[:keep]
    return np.fft.irfft(out, n) * (n / len(data))


def speech(directory):
    with tempfile.NamedTemporaryFile(suffix='.wav') as raw:
        subprocess.run(['espeak-ng', '-v', 'en-us', '-s', '150', '-w', raw.name, TEXT], check=True)
        rate, voice = read(raw.name)
    voice = voice / (np.sqrt(np.mean(voice[np.abs(voice) > 1e-3] ** 2)) + 1e-12) * 0.1
    # Short pauses between repeats; 60 s in all.
    unit = np.concatenate([voice, np.zeros(int(0.4 * rate))])
    long = np.tile(unit, int(np.ceil(60 * rate / len(unit))))[: 60 * rate]
    write(f'{directory}/speech-8k.wav', 8000, resample(long, rate, 8000))
    write(f'{directory}/speech-48k.wav', 48000, resample(long, rate, 48000), channels=2)


def score(reference, degraded):
    ref_rate, ref = read(reference)
    deg_rate, deg = read(degraded)
    rate, mode = (16000, 'wb') if deg_rate >= 16000 else (8000, 'nb')
    ref, deg = resample(ref, ref_rate, rate), resample(deg, deg_rate, rate)
    # Where in the looping reference the recording starts: cross-correlate 3 s after the first.
    probe = deg[rate: 4 * rate]
    corr = np.fft.irfft(np.fft.rfft(ref, 2 * len(ref)) * np.conj(np.fft.rfft(probe, 2 * len(ref))))
    offset = int(np.argmax(corr[: len(ref) - len(probe)]))
    shift = offset - rate  # deg[i] is ref[i + shift]
    start = next_pause(ref, 2 * rate, rate)
    if start - shift < rate:  # not in the first second of the recording: the next pause on
        start = next_pause(ref, shift + 2 * rate, rate)
    length = SECONDS * rate
    if start - shift + length > len(deg) or start + length > len(ref):
        sys.exit(f'the recording does not cover {SECONDS} s from the reference at {start / rate:.2f} s')
    print(f'{pesq(rate, ref[start: start + length], deg[start - shift: start - shift + length], mode):.2f}')


SECONDS = 5  # within both receivers' recordings (ours 9 s, baresip's 10 s)


def next_pause(ref, start, rate):
    """The middle of the first 100 ms of near-silence in `ref` from `start` on (else `start`)."""
    frame = rate // 100
    level = np.sqrt(np.mean(ref ** 2)) + 1e-12
    quiet = 0
    for i in range(start, len(ref) - frame, frame):
        if np.sqrt(np.mean(ref[i: i + frame] ** 2)) < level * 0.03:
            quiet += 1
            if quiet == 10:
                return i - 4 * frame
        else:
            quiet = 0
    return start


if __name__ == '__main__':
    if sys.argv[1] == 'speech':
        speech(sys.argv[2])
    else:
        score(sys.argv[2], sys.argv[3])
