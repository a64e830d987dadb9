"""From a manifest to stored features: one config, one extraction function, resumable sharded writes."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from voxa.data.loading import load_record
from voxa.data.manifest import Record
from voxa.errors import AudioError, ConfigError
from voxa.features.cmvn import cmvn
from voxa.features.deltas import add_deltas
from voxa.features.framing import ShortAudioError
from voxa.features.lpc import lpcc
from voxa.features.mfcc import fbank, mfcc
from voxa.features.plp import plp
from voxa.features.prosody import prosody_windows
from voxa.features.sdc import sdc
from voxa.features.store import merge_indexes, write_kaldi_shard, write_voxa_shard
from voxa.features.vad import energy_vad
from voxa.utils.atomic import write_text_atomic
from voxa.utils.threads import numeric_threads

log = logging.getLogger(__name__)

FEATURE_TYPES = ("mfcc", "fbank", "plp", "lpcc", "sdc", "prosody")


@dataclass
class FeatureConfig:
    """What features a pipeline computes.

    Attributes:
        type: ``mfcc``, ``fbank``, ``plp``, ``lpcc``, ``sdc`` (SDC over MFCCs, statics included) or
            ``prosody`` (long-term pitch/energy/voicing statistics over sliding 0.5 s windows every
            0.1 s, :func:`voxa.features.prosody.prosody_windows`; ``vad`` does not apply to them).
        deltas: orders of deltas appended (not used with ``sdc``).
        cmvn: ``None``, ``"utt"`` (per utterance) or ``"sliding"`` (300-frame centred window).
        norm_vars: CMVN also normalises variances.
        vad: keep only the frames energy VAD marks as speech (all of them if it finds none).
        kaldi_compat: Kaldi's defaults, samples on the 16-bit scale.
        sample_rate: resample to this rate first (``None``: the file's own rate).
        options: extra keyword arguments for the feature function (``num_ceps``, ``window``, ...).
        sdc: the N-d-P-k parameters for ``type="sdc"``.
    """

    type: str = "mfcc"
    deltas: int = 2
    cmvn: str | None = "utt"
    norm_vars: bool = False
    vad: bool = True
    kaldi_compat: bool = False
    sample_rate: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    sdc: tuple[int, int, int, int] = (7, 1, 3, 7)

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise ConfigError(f"unknown feature type {self.type!r}; choose one of {', '.join(FEATURE_TYPES)}")
        if self.cmvn not in (None, "utt", "sliding"):
            raise ConfigError(f"cmvn must be null, 'utt' or 'sliding', got {self.cmvn!r}")
        if isinstance(self.deltas, bool) or not isinstance(self.deltas, int) \
                or not 0 <= self.deltas <= 3:
            raise ConfigError(f"deltas={self.deltas!r} must be an integer in 0..3")
        for name in ("norm_vars", "vad", "kaldi_compat"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")
        sr = self.sample_rate
        if sr is not None and (isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0):
            raise ConfigError(f"sample_rate={sr!r} must be a positive integer (Hz) or null")
        if not isinstance(self.options, dict) or not all(isinstance(k, str) for k in self.options):
            raise ConfigError(f"options={self.options!r} must be a mapping of option names to values")
        try:
            self.sdc = tuple(int(v) for v in self.sdc)  # type: ignore[assignment]
        except (TypeError, ValueError):
            raise ConfigError(f"sdc={self.sdc!r} must be four integers N, d, P, k") from None
        if len(self.sdc) != 4 or min(self.sdc) < 1:
            raise ConfigError(f"sdc={list(self.sdc)} must be four integers N, d, P, k, each >= 1")
        self._probe()

    def _probe(self) -> None:
        """Compute these features on a short noise burst, so that a bad option (``num_ceps=50``,
        an unknown name) is a :class:`ConfigError` now, not a traceback mid-corpus."""
        rate = self.sample_rate or 16000
        frame_ms = self.options.get("frame_length_ms", 25.0)
        seconds = 1.0 + (3.0 * frame_ms / 1000.0 if isinstance(frame_ms, (int, float)) else 0.0)
        g = torch.Generator().manual_seed(0)
        x = 0.1 * torch.randn(int(rate * seconds), generator=g)
        try:
            with numeric_threads(1):  # a second's features gain nothing from a thread team
                extract(x, rate, self)
        except ConfigError:
            raise
        except TypeError as e:  # an option name the feature function does not take
            raise ConfigError(f"{self.type} option(s) {sorted(self.options)}: {e}") from None
        except AudioError as e:
            raise ConfigError(f"{self.type} options {self.options} cannot make features: "
                              f"{e.problem}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FeatureConfig:
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown feature setting(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sdc"] = list(self.sdc)
        return d


    def key(self) -> str:
        """A short name unique to these settings, for feature directories (``mfcc-1a2b3c4d``)."""
        import hashlib

        digest = hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.type}-{digest}"


_FUNCS = {"mfcc": mfcc, "fbank": fbank, "plp": plp, "lpcc": lpcc}


def extract(waveform: torch.Tensor, sample_rate: int, cfg: FeatureConfig) -> torch.Tensor:
    """Features of one waveform in [-1, 1] as ``[frames, dims]`` under ``cfg``.

    Order: base features, deltas or SDC (on contiguous frames), VAD selection, CMVN over what is kept.

    Example:
        >>> extract(torch.randn(16000) * 0.1, 16000, FeatureConfig()).shape[1]
        39
    """
    x = waveform.reshape(-1) if waveform.dim() > 1 and waveform.shape[0] == 1 else waveform
    if x.dim() != 1:
        raise AudioError("waveform", f"extract wants one mono waveform, got shape "
                                     f"{tuple(waveform.shape)}")
    if cfg.kaldi_compat:
        x = x * 32768.0
    opts = dict(cfg.options)
    if cfg.type == "sdc":
        n = cfg.sdc[0]
        opts.setdefault("num_ceps", max(n, 7))
        base = mfcc(x, sample_rate, kaldi_compat=cfg.kaldi_compat, **opts)
        n_, d, p, k = cfg.sdc
        feats = sdc(base, n_, d, p, k, include_static=True, kaldi_compat=cfg.kaldi_compat)
    elif cfg.type == "prosody":
        feats = prosody_windows(x, sample_rate, **opts)
        if cfg.deltas:
            feats = add_deltas(feats, cfg.deltas)
        # windows are not frames: an energy VAD cannot select them, and pauses are prosody here
        return _normalise(feats, cfg)
    else:
        func = _FUNCS[cfg.type]
        if cfg.type == "lpcc":
            feats = func(x, sample_rate, **opts)
        else:
            feats = func(x, sample_rate, kaldi_compat=cfg.kaldi_compat, **opts)
        if cfg.deltas:
            feats = add_deltas(feats, cfg.deltas)
    if cfg.vad and feats.shape[0] > 0:
        keep = energy_vad(x, sample_rate, kaldi_compat=cfg.kaldi_compat,
                          **{k: v for k, v in opts.items() if k in _FRAME_KEYS})
        keep = keep[: feats.shape[0]]
        if keep.any():
            feats = feats[keep]
    return _normalise(feats, cfg)


def _normalise(feats: torch.Tensor, cfg: FeatureConfig) -> torch.Tensor:
    if cfg.cmvn == "utt":
        return cmvn(feats, norm_vars=cfg.norm_vars)
    if cfg.cmvn == "sliding":
        return cmvn(feats, norm_vars=cfg.norm_vars, window=300)
    return feats


_FRAME_KEYS = {"frame_length_ms", "frame_shift_ms", "window", "preemphasis", "remove_dc", "snip_edges"}


def extract_record(record: Record, cfg: FeatureConfig) -> torch.Tensor:
    """Load a record's audio and extract its features.

    Raises:
        AudioError: naming the record's file (``ShortAudioError`` below one frame).
    """
    wav, sr = load_record(record, cfg.sample_rate)
    try:
        return extract(wav[0], sr, cfg)
    except ShortAudioError as e:
        raise ShortAudioError(e.num_samples, e.min_samples, path=record.path) from None
    except AudioError as e:
        if e.path != "waveform":
            raise
        raise AudioError(record.path, e.problem) from None


class FeatureIndex(type(Path())):  # type: ignore[misc]
    """The index path :func:`compute_features` returns, carrying its :class:`FeatureSummary`.

    A plain :class:`pathlib.Path` in every other way, so callers that open it need not change.
    """

    summary: FeatureSummary


@dataclass
class FeatureSummary:
    """What :func:`compute_features` did.

    Attributes:
        utterances: records given.
        written: utterances with features in the store.
        skipped_ids: utterances skipped as shorter than one frame (Kaldi skips them too).
    """

    utterances: int
    written: int
    skipped_ids: list[str]

    @property
    def skipped(self) -> int:
        return len(self.skipped_ids)


def _chunks(seq: Sequence[Record], n: int) -> Iterator[tuple[int, Sequence[Record]]]:
    for i in range(0, len(seq), n):
        yield i // n, seq[i:i + n]


def compute_features(records: Sequence[Record], cfg: FeatureConfig, outdir: str | os.PathLike,
                     fmt: str = "kaldi", shard_size: int = 200, progress: bool = True) -> Path:
    """Compute and store features for every record, resumably.

    Writes ``outdir/feats.scp`` (Kaldi ark/scp) or ``outdir/index.jsonl`` (voxa's safetensors store),
    ``utt2num_frames`` and ``config.json``. Shards already complete from an earlier, interrupted run
    with the same config are kept. An utterance shorter than one analysis frame is skipped with a
    logged warning, as Kaldi's ``compute-mfcc-feats`` does: it has no entry in the store, and its
    id is listed in ``outdir/skipped`` and in the returned summary. Runs with
    :func:`voxa.utils.threads.auto_threads` torch threads (the cores other processes leave free).

    Returns:
        the index path (``feats.scp`` or ``index.jsonl``) as a :class:`FeatureIndex`, whose
        ``summary`` (:class:`FeatureSummary`) counts what was written and skipped.

    Raises:
        AudioError: every utterance is shorter than one frame, or one cannot be read.
        ConfigError: ``outdir`` holds features made with other settings, or a bad setting.
    """
    if fmt not in ("kaldi", "voxa"):
        raise ConfigError(f"unknown feature store format {fmt!r}; use 'kaldi' or 'voxa'")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    conf_path = out / "config.json"
    import hashlib

    ids = hashlib.sha1("\n".join(r.id for r in records).encode()).hexdigest()
    conf = {"features": cfg.to_dict(), "format": fmt, "shard_size": shard_size,
            "utterances": len(records), "ids_sha1": ids}
    if conf_path.exists():
        old = json.loads(conf_path.read_text())
        if old != conf:
            raise ConfigError(f"{out}: holds features made with other settings or utterances; "
                              f"use a new directory")
    else:
        write_text_atomic(conf_path, json.dumps(conf, indent=2))
    parts: list[Path] = []
    lens: list[Path] = []
    skips: list[Path] = []
    skipped: list[str] = []
    bar = tqdm(total=len(records), desc="features", unit="utt", disable=not progress)
    with numeric_threads():
        for i, chunk in _chunks(records, shard_size):
            stem = f"feats.{i:05d}"
            index = out / (f"{stem}.scp" if fmt == "kaldi" else f"{stem}.index.jsonl")
            frames = out / f"{stem}.num_frames"
            skip = out / f"{stem}.skipped"
            if not index.exists():
                items, short = [], []
                for r in chunk:
                    try:
                        items.append((r.id, extract_record(r, cfg).cpu().numpy()))
                    except ShortAudioError as e:
                        log.warning("%s: skipped, %s", r.id, e.problem)
                        short.append(f"{r.id} {e.num_samples}\n")
                    bar.update(1)
                # frame counts and skips first: the index appearing marks the shard complete
                write_text_atomic(frames, "".join(f"{k} {v.shape[0]}\n" for k, v in items))
                write_text_atomic(skip, "".join(short))
                if fmt == "kaldi":
                    write_kaldi_shard(items, out / f"{stem}.ark")
                else:
                    write_voxa_shard(items, out / f"{stem}.safetensors")
            else:
                bar.update(len(chunk))
            parts.append(index)
            lens.append(frames)
            skips.append(skip)
            if skip.exists():
                skipped += [line.split()[0] for line in skip.read_text().splitlines() if line]
    bar.close()
    if records and len(skipped) == len(records):
        raise AudioError(out, f"all {len(records)} utterance(s) are shorter than one analysis frame "
                              f"(e.g. {skipped[0]}); no features written")
    if skipped:
        log.warning("%d of %d utterance(s) skipped as shorter than one frame (listed in %s)",
                    len(skipped), len(records), out / "skipped")
    final = out / ("feats.scp" if fmt == "kaldi" else "index.jsonl")
    merge_indexes(parts, final)
    merge_indexes(lens, out / "utt2num_frames")
    merge_indexes([p for p in skips if p.exists()], out / "skipped")
    index_path = FeatureIndex(final)
    index_path.summary = FeatureSummary(len(records), len(records) - len(skipped), skipped)
    return index_path
