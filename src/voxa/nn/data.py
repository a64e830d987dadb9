"""Datasets, batching and augmentation for neural utterance classifiers.

Every random choice is drawn from a generator seeded by ``(seed, epoch, item)``, the convention of
:class:`voxa.nn.trainer.Trainer`: item ``i`` of epoch ``e`` is the same however the run was interrupted
and resumed, and whichever DataLoader worker builds it.

- :class:`UtteranceDataset`: stored features by id, with an optional random crop per item per epoch.
- :func:`collate_padded`: zero-padded ``[B, T, D]`` batches with their lengths and labels.
- :class:`LengthBucketSampler` / :func:`length_batches`: batches of similar lengths (less padding).
- :func:`class_balanced_weights`, :class:`ClassBalancedSampler`, :class:`BalancedDataset`: every class
  drawn equally often from imbalanced labels.
- :class:`Augment` and :class:`WaveformDataset`: speed, volume, reverberation and additive noise applied
  to waveforms, features computed on the fly.

Example:
    >>> import torch
    >>> feats = {"a": torch.ones(5, 2), "b": torch.ones(3, 2)}
    >>> ds = UtteranceDataset(feats, ["a", "b"], [0, 1])
    >>> x, lengths, labels = collate_padded([ds[0], ds[1]])
    >>> tuple(x.shape), lengths.tolist(), labels.tolist()
    ((2, 5, 2), [5, 3], [0, 1])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from voxa.errors import ConfigError, VoxaError

__all__ = ["Augment", "BalancedDataset", "ClassBalancedSampler", "LengthBucketSampler", "UtteranceDataset",
           "WaveformDataset", "class_balanced_weights", "collate_padded", "crop_frames", "length_batches",
           "padding_fraction"]


def _rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(epoch), int(index), int(stream)])


def _check_crop(crop: Sequence[int] | None) -> tuple[int, int] | None:
    if crop is None:
        return None
    if len(crop) != 2 or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in crop) \
            or not 1 <= crop[0] <= crop[1]:
        raise ConfigError(f"crop={crop!r} must be [min_frames, max_frames] with 1 <= min <= max")
    return int(crop[0]), int(crop[1])


def crop_frames(x: torch.Tensor, crop: tuple[int, int] | None, rng: np.random.Generator) -> torch.Tensor:
    """A random contiguous segment of ``x [T, D]``: ``min_frames..max_frames`` frames long (uniform),
    from a uniform start; an utterance shorter than the drawn length is kept whole (padding it would
    teach the model what silence looks like, not the class).

    Example:
        >>> import numpy as np, torch
        >>> crop_frames(torch.zeros(50, 3), (10, 20), np.random.default_rng(0)).shape[0] in range(10, 21)
        True
    """
    if crop is None:
        return x
    n = int(rng.integers(crop[0], crop[1] + 1))
    t = x.shape[0]
    if t <= n:
        return x
    start = int(rng.integers(0, t - n + 1))
    return x[start:start + n]


class UtteranceDataset(Dataset):
    """Stored utterance features with integer labels; items are ``(x [T, D], label)``.

    Args:
        feats: id to ``[T_u, D]`` features (e.g. from :func:`voxa.features.cache.load_features`).
        ids: the utterances of this set, in item order.
        labels: their class indices.
        crop: ``(min_frames, max_frames)``: each item is a random crop of that many frames, redrawn every
            epoch (:meth:`set_epoch`); ``None``: whole utterances.
        seed: seed of the crops.

    Example:
        >>> import torch
        >>> ds = UtteranceDataset({"a": torch.randn(100, 4)}, ["a"], [2], crop=(10, 30), seed=1)
        >>> ds.set_epoch(3)
        >>> x, y = ds[0]
        >>> 10 <= x.shape[0] <= 30, y, torch.equal(x, ds[0][0])
        (True, 2, True)
    """

    def __init__(self, feats: Mapping[str, torch.Tensor], ids: Sequence[str], labels: Sequence[int],
                 crop: tuple[int, int] | None = None, seed: int = 0) -> None:
        if len(ids) != len(labels):
            raise VoxaError(f"{len(ids)} utterances but {len(labels)} labels")
        missing = [u for u in ids if u not in feats]
        if missing:
            raise VoxaError(f"{len(missing)} utterance(s) have no features (e.g. {missing[0]})")
        self.feats, self.ids = feats, list(ids)
        self.labels = [int(y) for y in labels]
        self.crop = _check_crop(crop)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> list[int]:
        """Each utterance's full length in frames (before cropping)."""
        return [int(self.feats[u].shape[0]) for u in self.ids]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.feats[self.ids[index]]
        if self.crop is not None:
            x = crop_frames(x, self.crop, _rng(self.seed, self.epoch, index))
        return x, self.labels[index]


def collate_padded(batch: Sequence[tuple[torch.Tensor, int]]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack ``(x [T_i, D], label)`` items into ``(x [B, T_max, D]`` zero-padded, ``lengths [B]`` long,
    ``labels [B]`` long``)``.

    Example:
        >>> import torch
        >>> x, n, y = collate_padded([(torch.ones(2, 1), 0), (torch.ones(4, 1), 3)])
        >>> x[0, :, 0].tolist(), n.tolist(), y.tolist()
        ([1.0, 1.0, 0.0, 0.0], [2, 4], [0, 3])
    """
    if not batch:
        raise VoxaError("cannot collate an empty batch")
    xs = [b[0] for b in batch]
    lengths = torch.tensor([x.shape[0] for x in xs], dtype=torch.long)
    out = xs[0].new_zeros((len(xs), int(lengths.max()), xs[0].shape[1]))
    for i, x in enumerate(xs):
        out[i, : x.shape[0]] = x
    labels = torch.tensor([int(b[1]) for b in batch], dtype=torch.long)
    return out, lengths, labels


class LengthBucketSampler(Sampler[list[int]]):
    """A batch sampler whose batches hold utterances of similar length.

    Without ``shuffle`` the items are sorted by length and cut into batches (for inference). With it,
    the lengths are jittered by a random factor in [0.9, 1.1] before sorting, so batches differ between
    epochs while staying tight, and the batch order is permuted; both seeded by ``(seed, epoch)``.

    Args:
        lengths: each item's length.
        batch_size: items per batch.
        shuffle: draw a new grouping and order every epoch.
        seed: seed of the shuffle.
        drop_last: drop a final short batch.

    Example:
        >>> list(LengthBucketSampler([5, 1, 4, 2], batch_size=2, shuffle=False))
        [[1, 3], [2, 0]]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size={batch_size} must be at least 1")
        self.lengths = np.asarray(lengths, dtype=np.float64)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This epoch's batches of item indices."""
        key = self.lengths
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.shuffle:
            key = key * rng.uniform(0.9, 1.1, size=len(key))
        order = np.argsort(key, kind="stable").tolist()
        out = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


def length_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices cut into batches of similar length, shortest first (for inference).

    Example:
        >>> length_batches([30, 10, 20], 2)
        [[1, 2], [0]]
    """
    return LengthBucketSampler(lengths, batch_size, shuffle=False).batches()


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of the padded ``[B, T_max]`` cells of ``batches`` that are padding.

    Example:
        >>> padding_fraction([[0, 1]], [4, 2])
        0.25
    """
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    used = sum(lengths[i] for b in batches for i in b)
    return 1.0 - used / total if total else 0.0


def class_balanced_weights(labels: Sequence[int]) -> torch.Tensor:
    """Per-item weights ``[N]`` that give every class the same total (mean weight 1).

    Example:
        >>> class_balanced_weights([0, 0, 0, 1]).tolist()
        [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    y = np.asarray(labels)
    if y.size == 0:
        raise VoxaError("no labels to weight")
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return torch.from_numpy(w * (len(y) / w.sum()))


class ClassBalancedSampler(Sampler[int]):
    """Draw ``num_samples`` item indices per epoch, with replacement, every class equally likely (then
    an item of it uniformly); seeded by ``(seed, epoch)``.

    Args:
        labels: each item's class.
        num_samples: draws per epoch (default: the number of items).
        seed: seed of the draws.

    Example:
        >>> s = ClassBalancedSampler([0] * 9 + [1], seed=0)
        >>> sorted(set(s.order()))[-1]  # the lone item of class 1 is drawn too
        9
    """

    def __init__(self, labels: Sequence[int], num_samples: int | None = None, seed: int = 0) -> None:
        self.weights = class_balanced_weights(labels)
        self.num_samples = int(num_samples or len(self.weights))
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def order(self, epoch: int | None = None) -> list[int]:
        """The draws of ``epoch`` (default: the current one)."""
        g = torch.Generator().manual_seed(self.seed * 100003 + (self.epoch if epoch is None else epoch))
        return torch.multinomial(self.weights, self.num_samples, replacement=True, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order())

    def __len__(self) -> int:
        return self.num_samples


class BalancedDataset(Dataset):
    """A class-balanced view of ``base`` for the shared Trainer, which draws its own permutation of
    item indices: item ``i`` of epoch ``e`` is ``base[draws_e[i]]`` with the draws of a
    :class:`ClassBalancedSampler` seeded by ``(seed, e)``, so balancing stays exactly resumable.

    Args:
        base: a dataset (its ``set_epoch`` is called too).
        labels: the class of each of its items.
        seed: seed of the draws.

    Example:
        >>> import torch
        >>> base = UtteranceDataset({str(i): torch.zeros(2, 1) for i in range(4)}, list("0123"), [0, 0, 0, 1])
        >>> ds = BalancedDataset(base, base.labels)
        >>> len(ds), sum(ds[i][1] for i in range(len(ds))) > 0
        (4, True)
    """

    def __init__(self, base: Dataset, labels: Sequence[int], seed: int = 0) -> None:
        if len(labels) != len(base):  # type: ignore[arg-type]
            raise VoxaError(f"{len(base)} items but {len(labels)} labels")  # type: ignore[arg-type]
        self.base = base
        self.sampler = ClassBalancedSampler(labels, seed=seed)
        self._draws = self.sampler.order(0)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self._draws = self.sampler.order()
        if hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self._draws)

    def __getitem__(self, index: int) -> Any:
        return self.base[self._draws[index]]


# ---- waveform augmentation ------------------------------------------------------------------------
_AUDIO_EXT = (".wav", ".flac", ".ogg")


@dataclass
class Augment:
    """Waveform augmentation, applied in this order: speed, reverberation, additive noise, volume.

    Attributes:
        speed: speed factors drawn uniformly per item (Kaldi's 3-way perturbation is ``(0.9, 1.0, 1.1)``):
            resampled so the utterance lasts ``1 / factor`` as long, pitch shifted with it. Empty: none.
        gain_db: ``(lo, hi)`` random gain in dB (uniform); ``None``: none.
        rir_bank: a voxa impulse-response bank folder (:class:`voxa.tse.bank.RirBank`); ``None``: no
            reverberation.
        rir_split: the bank split whose responses are drawn.
        rir_prob: chance an item is reverberated.
        noise: a folder of noise recordings (wav/flac/ogg, searched recursively) or a JSONL manifest of
            them; ``None`` with ``snr_db`` set: white Gaussian noise.
        snr_db: ``(lo, hi)`` SNR of the added noise in dB (uniform); ``None``: no noise.
        noise_prob: chance an item gets noise.

    Example:
        >>> import numpy as np, torch
        >>> aug = Augment(speed=(1.1,), gain_db=(-6.0, 6.0), snr_db=(10.0, 20.0))
        >>> y = aug(torch.randn(16000) * 0.1, 16000, np.random.default_rng(0))
        >>> y.shape[0] in range(14540, 14550)
        True
    """

    speed: tuple[float, ...] = ()
    gain_db: tuple[float, float] | None = None
    rir_bank: str | None = None
    rir_split: str = "train"
    rir_prob: float = 1.0
    noise: str | None = None
    snr_db: tuple[float, float] | None = None
    noise_prob: float = 1.0

    def __post_init__(self) -> None:
        # loaded banks and noise recordings: not a field, so configs built from this stay plain data
        self._cache: dict[str, Any] = {}
        self.speed = tuple(float(s) for s in self.speed)
        if any(not 0.5 <= s <= 2.0 for s in self.speed):
            raise ConfigError(f"speed factors {self.speed} must lie in [0.5, 2]")
        for name in ("gain_db", "snr_db"):
            v = getattr(self, name)
            if v is not None:
                if len(v) != 2 or float(v[0]) > float(v[1]):
                    raise ConfigError(f"{name}={v!r} must be [lo, hi] with lo <= hi")
                setattr(self, name, (float(v[0]), float(v[1])))
        for name in ("rir_prob", "noise_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be in [0, 1]")
        if self.noise is not None and self.snr_db is None:
            raise ConfigError("noise is set but snr_db is not: give the SNR range, e.g. [5, 20]")

    @property
    def active(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.speed and self.speed != (1.0,)) or self.gain_db is not None \
            or self.rir_bank is not None or self.snr_db is not None

    def _bank(self, rate: int) -> Any:
        key = f"bank@{rate}"
        if key not in self._cache:
            from voxa.tse.bank import RirBank

            bank = RirBank(self.rir_bank, rate=rate)
            rows = bank.split(self.rir_split)
            if not rows:
                raise VoxaError(f"{self.rir_bank}: split {self.rir_split!r} holds no impulse responses")
            self._cache[key] = (bank, [r["id"] for r in rows])
        return self._cache[key]

    def _noise_files(self) -> list[str]:
        if "noise" not in self._cache:
            path = Path(self.noise)
            if path.is_dir():
                files = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in _AUDIO_EXT)
            elif path.is_file():
                from voxa.data.manifest import read_manifest

                files = [r.path for r in read_manifest(path)]
            else:
                raise VoxaError(f"{path}: noise folder or manifest not found")
            if not files:
                raise VoxaError(f"{path}: holds no noise recordings ({', '.join(_AUDIO_EXT)})")
            self._cache["noise"] = files
        return self._cache["noise"]

    def _noise(self, n: int, rate: int, rng: np.random.Generator) -> torch.Tensor:
        if self.noise is None:
            return torch.from_numpy(rng.standard_normal(n).astype(np.float32))
        from voxa.audio.io import load

        files = self._noise_files()
        path = files[int(rng.integers(len(files)))]
        key = f"noise@{rate}:{path}"
        if key not in self._cache:
            self._cache[key] = load(path, sample_rate=rate, mono=True)[0][0]
        z = self._cache[key]
        if z.numel() < n:  # loop a short recording rather than leave the tail clean
            z = z.repeat(math.ceil(n / max(1, z.numel())))
        start = int(rng.integers(0, z.numel() - n + 1))
        return z[start:start + n]

    def __call__(self, wav: torch.Tensor, rate: int, rng: np.random.Generator) -> torch.Tensor:
        """Augment one mono waveform ``[S]`` at ``rate`` Hz with draws from ``rng``; returns ``[S']``
        (``S' = S / speed``)."""
        x = wav.reshape(-1).float()
        if self.speed:
            f = self.speed[int(rng.integers(len(self.speed)))]
            if f != 1.0:
                from voxa.audio.resample import resample

                x = resample(x, rate, int(round(rate / f)))
        if self.rir_bank is not None and rng.random() < self.rir_prob:
            bank, ids = self._bank(rate)
            h = bank.load(ids[int(rng.integers(len(ids)))]).reshape(-1)
            x = _reverberate(x, h)
        if self.snr_db is not None and rng.random() < self.noise_prob:
            snr = rng.uniform(*self.snr_db)
            z = self._noise(x.numel(), rate, rng)
            px, pz = float(x.pow(2).mean()), float(z.pow(2).mean())
            if px > 0 and pz > 0:
                x = x + z * math.sqrt(px / (pz * 10 ** (snr / 10)))
        if self.gain_db is not None:
            x = x * 10 ** (rng.uniform(*self.gain_db) / 20)
        return x


def _reverberate(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``x * h`` cut to ``x``'s length from the response's direct-path peak (so the words do not move in
    time) and scaled back to ``x``'s RMS (level is the volume perturbation's business)."""
    size = x.numel() + h.numel() - 1
    nfft = 1 << (size - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x.double(), nfft) * torch.fft.rfft(h.double(), nfft), nfft)
    peak = int(h.abs().argmax())
    y = y[peak:peak + x.numel()].float()
    ry, rx = float(y.pow(2).mean().sqrt()), float(x.pow(2).mean().sqrt())
    return y * (rx / ry) if ry > 0 else y


class WaveformDataset(Dataset):
    """Utterances loaded as waveforms, augmented, and turned into features on the fly; items are
    ``(x [T, D], label)``.

    Args:
        records: the utterances (:class:`voxa.data.manifest.Record`).
        feature_cfg: the :class:`voxa.features.pipeline.FeatureConfig` of the features.
        labels: their class indices.
        augment: an :class:`Augment` (``None``: none).
        crop: ``(min_frames, max_frames)`` random crop of the features (as :class:`UtteranceDataset`).
        seed: seed of every draw; item ``i`` of epoch ``e`` uses ``(seed, e, i)``.
        cache_audio: keep decoded waveforms in memory (the augmentation is redrawn each time).

    Example:
        >>> aug = Augment(speed=(0.9, 1.0, 1.1), gain_db=(-6, 6))
        >>> ds = WaveformDataset(records, FeatureConfig(), labels, augment=aug)  # doctest: +SKIP
        >>> x, y = ds[0]                                                         # doctest: +SKIP
    """

    def __init__(self, records: Sequence[Any], feature_cfg: Any, labels: Sequence[int],
                 augment: Augment | None = None, crop: tuple[int, int] | None = None, seed: int = 0,
                 cache_audio: bool = True) -> None:
        if len(records) != len(labels):
            raise VoxaError(f"{len(records)} records but {len(labels)} labels")
        self.records, self.labels = list(records), [int(y) for y in labels]
        self.cfg, self.augment, self.crop = feature_cfg, augment, _check_crop(crop)
        self.seed, self.epoch, self.cache_audio = seed, 0, cache_audio
        self._audio: dict[str, tuple[torch.Tensor, int]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def waveform(self, index: int) -> tuple[torch.Tensor, int]:
        """The clean mono waveform ``[S]`` of item ``index`` and its rate."""
        from voxa.data.loading import load_record

        r = self.records[index]
        if r.id in self._audio:
            return self._audio[r.id]
        wav, rate = load_record(r, self.cfg.sample_rate)
        out = (wav[0], rate)
        if self.cache_audio:
            self._audio[r.id] = out
        return out

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from voxa.features.pipeline import extract

        wav, rate = self.waveform(index)
        if self.augment is not None:
            wav = self.augment(wav, rate, _rng(self.seed, self.epoch, index, stream=1))
        try:
            x = extract(wav, rate, self.cfg)
        except VoxaError as e:
            raise VoxaError(f"{self.records[index].path}: {e}") from None
        if self.crop is not None:
            x = crop_frames(x, self.crop, _rng(self.seed, self.epoch, index))
        return x, self.labels[index]

    def __getstate__(self) -> dict[str, Any]:
        # workers decode their own audio rather than receive the parent's cache by pickling
        d = dict(self.__dict__)
        d["_audio"] = {}
        return d
