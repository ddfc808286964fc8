"""The speaker embedding model the diarizer runs: Resemblyzer's GE2E voice encoder (in onnxruntime or
NumPy: :mod:`stages.speech.voice_lstm`), its mel spectrogram of a track (NumPy too, computed a piece at a time,
never the whole track at once) and the embedding of mel-frame windows in batches."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from stages.media import AudioFile

logger = logging.getLogger(__name__)


def load_voice_encoder(cache_dir: Path | None = None, threads: int = 1) -> tuple[Any, str]:
    """(encoder, "") or (None, why it is unavailable). Never raises.

    The encoder maps (B, T, 40) float32 mel frames to (B, 256) unit embeddings (NumPy in, NumPy out):
    Resemblyzer's weights run in onnxruntime's LSTM on ``threads`` threads, or in NumPy where that
    session cannot be built (:mod:`stages.speech.voice_lstm`: no torch in the worker either way), or,
    where converting the weights fails, Resemblyzer's own torch module behind the same call.
    """
    from stages.speech.voice_lstm import (
        NumpyVoiceEncoder,
        OnnxVoiceEncoder,
        converted_weights,
        resemblyzer_checkpoint,
    )

    if resemblyzer_checkpoint() is None:
        return None, ("speaker diarization unavailable: Resemblyzer is not installed "
                      "(install the 'interviews' extra: pip install -e '.[interviews]')")
    if cache_dir is None:
        from engine.config import Settings

        cache_dir = Settings().cache_dir
    try:
        weights = converted_weights(cache_dir)
        try:
            return OnnxVoiceEncoder(weights, threads=threads), ""
        except Exception as exc:
            logger.warning("the voice encoder runs in NumPy: onnxruntime's LSTM session failed: %s: %s",
                           type(exc).__name__, exc)
        return NumpyVoiceEncoder(weights), ""
    except Exception as exc:  # conversion needs torch in a child process: fall back to torch here
        numpy_failed = f"{type(exc).__name__}: {exc}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # webrtcvad's pkg_resources deprecation notice
            from resemblyzer import VoiceEncoder
    except Exception as exc:  # ImportError, or torch failing to load its libraries
        return None, (f"speaker diarization unavailable: {type(exc).__name__}: {exc} "
                      f"(and the NumPy encoder: {numpy_failed})")
    try:
        import torch

        torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
        return TorchVoiceEncoder(VoiceEncoder("cpu", verbose=False)), ""
    except Exception as exc:
        return None, f"speaker diarization unavailable: the voice encoder failed to load: {exc}"


class TorchVoiceEncoder:
    """Resemblyzer's torch module behind the call of :class:`~stages.speech.voice_lstm.OnnxVoiceEncoder`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __call__(self, mels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(mels, np.float32))).cpu().numpy()


#: the encoder's mel analysis (Resemblyzer's hparams): 25 ms windows every 10 ms, 40 bands
MEL_N_FFT, MEL_HOP, MEL_BANDS = 400, 160, 40
#: mel frames computed at once (60 s): the STFT of a piece, not of the whole track, is in memory
MEL_PIECE_FRAMES = 6000
#: frames whose spectrum is held at once inside a piece (~1.6 MB of complex64)
STFT_BLOCK = 1024


def volume_gain(mean_square: float, target_dbfs: float = -30.0) -> float:
    """Resemblyzer's ``normalize_volume(wav, -30, increase_only=True)`` as a factor, from mean(wav^2)."""
    if mean_square <= 0:
        return 1.0
    change = target_dbfs - 10 * np.log10(mean_square)
    return 1.0 if change < 0 else float(10 ** (change / 20))


@lru_cache(maxsize=4)
def mel_filterbank(rate: int = 16_000, n_fft: int = MEL_N_FFT, n_mels: int = MEL_BANDS) -> np.ndarray:
    """``librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)`` (Slaney's mel scale and area
    normalisation, 0 Hz to Nyquist) as a (n_mels, n_fft // 2 + 1) float32 matrix, in NumPy."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        m = f / f_sp
        return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, m)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    lo, hi = hz_to_mel(np.array([0.0, rate / 2.0]))
    mel_f = mel_to_hz(np.linspace(lo, hi, n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def mel_power(seg: np.ndarray, rate: int = 16_000) -> np.ndarray:
    """``librosa.feature.melspectrogram(y=seg, sr=rate, n_fft=400, hop_length=160, n_mels=40,
    center=False).T`` in NumPy: (frames, 40) float32 mel power of periodic-Hann windowed frames.

    NumPy instead of librosa: librosa's first call JIT-compiles its STFT helpers with numba, which
    cost ~7 s at worker start and ~177 MB of resident memory for the worker's life (measured)."""
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(seg, np.float32), MEL_N_FFT)[::MEL_HOP]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(MEL_N_FFT) / MEL_N_FFT)).astype(np.float32)
    bank = mel_filterbank(rate).T
    out = np.empty((len(frames), MEL_BANDS), np.float32)
    for f0 in range(0, len(frames), STFT_BLOCK):  # the spectrum of a block of frames at a time
        spec = np.fft.rfft(frames[f0:f0 + STFT_BLOCK] * window, axis=1)
        power = np.abs(spec)
        power *= power
        np.matmul(power, bank, out=out[f0:f0 + STFT_BLOCK])
    return out


class Mel:
    """The encoder's mel spectrogram of a track, computed on demand a piece at a time.

    Frames are those of Resemblyzer's ``wav_to_mel_spectrogram`` of the whole volume-normalised
    track (centred 25 ms windows, zero padding at both ends), but only one piece (``piece``
    frames, 60 s) is held at a time: ``frames(a, b)`` computes the piece that starts at ``a``
    when [a, b) is not in the one held. Read in increasing order (as the windows are), each
    frame is computed about once. ``samples`` is an array or the analysis audio on disk.
    """

    def __init__(self, samples: np.ndarray | AudioFile, rate: int, piece: int = MEL_PIECE_FRAMES) -> None:
        if rate != 16_000:
            raise ValueError("the voice encoder expects 16 kHz audio")
        self.samples, self.rate, self.piece = samples, rate, piece
        n = len(samples)
        if isinstance(samples, AudioFile):
            mean_square = samples.mean_square()
        else:
            x = np.asarray(samples, np.float64)
            mean_square = float(np.dot(x, x) / n) if n else 0.0
        self.gain = np.float32(volume_gain(mean_square))
        self.n_frames = 1 + n // MEL_HOP
        self._held = (0, 0)
        self._mel = np.zeros((0, MEL_BANDS), np.float32)

    def __len__(self) -> int:
        return self.n_frames

    def compute(self, f0: int, f1: int) -> np.ndarray:
        """Frames [f0, f1) (clipped to the track), computed now."""
        f0, f1 = max(0, f0), min(f1, self.n_frames)
        if f1 <= f0:
            return np.zeros((0, MEL_BANDS), np.float32)
        half, n = MEL_N_FFT // 2, len(self.samples)
        lo, hi = f0 * MEL_HOP - half, (f1 - 1) * MEL_HOP + half  # the samples frames f0..f1-1 see
        seg = np.zeros(hi - lo, np.float32)
        a, b = max(lo, 0), min(hi, n)
        if b > a:
            seg[a - lo:b - lo] = np.asarray(self.samples[a:b], np.float32)
        if self.gain != 1.0:
            seg *= self.gain
        return mel_power(seg, self.rate)

    def holds(self, a: int, b: int) -> bool:
        """Whether frames [a, b) are in the piece held now."""
        return self._held[0] <= a and b <= self._held[1]

    def frames(self, a: int, b: int, until: int | None = None) -> np.ndarray:
        """Frames [a, b); a new piece, when needed, runs to ``until`` (what the caller will read
        next; at most ``piece`` frames from ``a``) instead of a whole ``piece``."""
        if not self.holds(a, b):
            end = a + self.piece if until is None else min(a + self.piece, until)
            self._held = (a, min(self.n_frames, max(b, end)))
            self._mel = self.compute(*self._held)
        return self._mel[a - self._held[0]:b - self._held[0]]

    def energy(self) -> np.ndarray:
        """Each frame's summed mel power (float32, one value per frame), a piece at a time."""
        out = np.empty(self.n_frames, np.float32)
        for f0 in range(0, self.n_frames, self.piece):
            out[f0:f0 + self.piece] = self.compute(f0, f0 + self.piece).sum(axis=1)
        return out


def mel_frames(samples: np.ndarray | AudioFile, rate: int, piece: int = MEL_PIECE_FRAMES) -> np.ndarray:
    """The whole mel spectrogram (frames, 40) as one array, computed ``piece`` frames at a time."""
    mel = Mel(samples, rate, piece)
    out = np.empty((len(mel), MEL_BANDS), np.float32)
    for f0 in range(0, len(mel), piece):
        out[f0:f0 + piece] = mel.compute(f0, f0 + piece)
    return out


def embed_windows(encoder: Any, mel: Mel | np.ndarray, windows: Sequence[tuple[int, int]],
                  batch: int = 256) -> np.ndarray:
    """Unit embeddings (N, 256) of mel frame windows [a, b), in order; windows run in batches.

    ``mel`` is a :class:`Mel` (frames computed a piece at a time as the windows advance, each
    piece only as long as the windows ahead need) or the whole spectrogram as an array. Full
    windows go ``batch`` at a time; shorter ones (a region under 1.6 s) are batched with others of
    the same length (the encoder's LSTM reads whole sequences, so no padding: the same result as
    one call each, in far fewer calls).
    """
    is_mel = isinstance(mel, Mel)
    piece = mel.piece if is_mel else 0
    out = np.zeros((len(windows), 256), np.float32)
    groups: dict[int, tuple[list[int], list[np.ndarray]]] = {}  # frames of windows waiting, by length
    held = 0  # windows waiting in groups

    def run(length: int) -> None:
        idx, stacked = groups.pop(length, ([], []))
        if idx:
            out[idx] = encoder(np.stack(stacked))

    for i, (a, b) in enumerate(windows):
        if is_mel:
            until = b  # a new piece runs to the end of the windows ahead that fit in it
            if not mel.holds(a, b):
                j = i + 1
                while j < len(windows) and a <= windows[j][0] and windows[j][1] <= a + piece:
                    until, j = max(until, windows[j][1]), j + 1
            frames = np.array(mel.frames(a, b, until))  # a copy: the piece it came from may go
        else:
            frames = np.array(mel[a:b])
        idx, stacked = groups.setdefault(b - a, ([], []))
        idx.append(i)
        stacked.append(frames)
        held += 1
        if len(idx) == batch:
            held -= len(idx)
            run(b - a)
        elif held >= 4 * batch:  # bounded: short windows of many lengths are not all kept to the end
            for length in sorted(groups):
                run(length)
            held = 0
    for length in sorted(groups):
        run(length)
    return out

