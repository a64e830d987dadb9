"""Speech pools and on-the-fly mixtures for distance-based target speech extraction.

A mixture takes K talkers (default 2) in one room-and-microphone group of an impulse-response bank,
convolves each talker's speech with its own response, scales each reverberant source to an RMS drawn
from -25 to -20 dB and sums them. A query distance d_q is drawn so that a target is present with
probability ``presence`` (near a talker) and otherwise lies at least ``r_spk`` from every talker.
The target is the sum of the reverberant sources with ``|d_k - d_q| <= r_spk``, zeros if none.

Every item is a pure function of ``(seed, epoch, index)``, so fixed sets are identical on every
run and training resumes on exactly the mixtures it would have seen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from voxa.audio.io import load, load_segment, save
from voxa.audio.resample import resample
from voxa.data.manifest import Record
from voxa.data.splits import split_by_speaker
from voxa.errors import ConfigError, VoxaError
from voxa.tse.bank import RirBank
from voxa.utils.atomic import write_text_atomic
from voxa.utils.jsonl import read_jsonl


@dataclass
class MixtureConfig:
    """How mixtures are drawn.

    Attributes:
        num_talkers: talkers per mixture (K).
        seconds: segment length.
        rate: working sample rate (speech and responses are resampled to it).
        rms_db: range of each reverberant source's RMS in dB (uniform).
        presence: probability that a target is present at the query distance.
        r_spk: half-width of the distance window around the query, metres.
        min_talker_gap: minimum distance difference between talkers (0: none, as in the paper).
        query_range: ``[lo, hi]`` metres for absent queries (``None``: the bank's distance range
            widened by ``r_spk``).
        queries_per_mixture: training items come in groups of this many consecutive indices that share
            one mixture under different queries (present ones aimed at different talkers where there
            are enough), so a batch holds the same input with different targets and a model that
            ignores the query cannot fit both (1: every item its own mixture, as in the paper).
    """

    num_talkers: int = 2
    seconds: float = 4.0
    rate: int = 16000
    rms_db: tuple[float, float] = (-25.0, -20.0)
    presence: float = 0.9
    r_spk: float = 0.5
    min_talker_gap: float = 0.0
    query_range: tuple[float, float] | None = None
    queries_per_mixture: int = 1

    def __post_init__(self) -> None:
        if self.num_talkers < 1:
            raise ConfigError("num_talkers must be >= 1")
        if not 0.0 <= self.presence <= 1.0:
            raise ConfigError(f"presence must be in [0, 1], got {self.presence}")
        if self.r_spk <= 0:
            raise ConfigError(f"r_spk must be positive, got {self.r_spk}")
        if self.queries_per_mixture < 1:
            raise ConfigError(f"queries_per_mixture must be >= 1, got {self.queries_per_mixture}")
        self.rms_db = tuple(self.rms_db)  # type: ignore[assignment]
        if self.query_range is not None:
            self.query_range = tuple(self.query_range)  # type: ignore[assignment]

    @property
    def samples(self) -> int:
        return int(round(self.seconds * self.rate))


def speech_pools(records: Sequence[Record], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                 seed: int = 0, min_seconds: float = 1.0) -> dict[str, list[Record]]:
    """Speaker-disjoint ``train``/``valid``/``test`` speech pools from any manifest.

    Utterances shorter than ``min_seconds`` (when their duration is known) are left out.
    """
    keep = [r for r in records if r.duration is None or r.duration >= min_seconds]
    if not keep:
        raise VoxaError("no utterance is long enough for a speech pool")
    parts = split_by_speaker(keep, fractions=fractions, seed=seed)
    return dict(zip(("train", "valid", "test"), parts))


class SpeechSource:
    """Random fixed-length segments of a pool's utterances at one rate, optionally held in memory."""

    def __init__(self, records: Sequence[Record], rate: int, preload: bool = False) -> None:
        if not records:
            raise VoxaError("empty speech pool")
        self.records = sorted(records, key=lambda r: r.id)
        self.rate = rate
        self._cache: dict[str, torch.Tensor] = {}
        if preload:
            for r in self.records:
                self._cache[r.id] = self._load_all(r)

    def _load_all(self, r: Record) -> torch.Tensor:
        wav, sr = load(r.path, mono=True)
        wav = wav[0]
        if r.start or r.duration:
            a = int(round(r.start * sr))
            b = None if r.duration is None else a + int(round(r.duration * sr))
            wav = wav[a:b]
        return resample(wav, sr, self.rate) if sr != self.rate else wav

    def segment(self, index: int, rng: np.random.Generator, samples: int) -> torch.Tensor:
        """``samples`` of utterance ``index`` from a random start (zero-padded if it is shorter)."""
        r = self.records[index]
        if r.id in self._cache:
            x = self._cache[r.id]
            start = int(rng.integers(0, max(1, x.numel() - samples + 1)))
            seg = x[start:start + samples]
        else:
            dur = r.duration
            seconds = samples / self.rate
            start_s = float(rng.uniform(0.0, max(0.0, dur - seconds))) if dur else 0.0
            length = min(seconds, dur - start_s) if dur else None
            wav, sr = load_segment(r.path, r.start + start_s, length, mono=True)
            seg = wav[0]
            if sr != self.rate:
                seg = resample(seg, sr, self.rate)
            seg = seg[:samples]
        if seg.numel() < samples:
            seg = torch.nn.functional.pad(seg, (0, samples - seg.numel()))
        return seg


def _convolve(x: torch.Tensor, h: torch.Tensor, n: int) -> torch.Tensor:
    """First ``n`` samples of ``x * h`` by FFT."""
    size = x.numel() + h.numel() - 1
    nfft = 1 << (size - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x.double(), nfft) * torch.fft.rfft(h.double(), nfft), nfft)
    return y[:n].float()


def draw_query(rng: np.random.Generator, distances: np.ndarray, present: bool, r_spk: float,
               lo: float, hi: float) -> tuple[float, bool]:
    """A query distance near a talker (present) or at least ``r_spk`` from all (absent).

    Falls back to a present query when the talkers leave no room for an absent one in [lo, hi].
    """
    if not present:
        # sample among the gaps: the allowed set is [lo, hi] minus the union of talker windows
        cuts = sorted((max(lo, d - r_spk), min(hi, d + r_spk)) for d in distances)
        free, cur = [], lo
        for a, b in cuts:
            if a > cur:
                free.append((cur, a))
            cur = max(cur, b)
        if cur < hi:
            free.append((cur, hi))
        free = [(a, b) for a, b in free if b - a > 1e-6]
        if free:
            lengths = np.array([b - a for a, b in free])
            k = int(rng.choice(len(free), p=lengths / lengths.sum()))
            q = float(rng.uniform(*free[k]))
            if np.all(np.abs(distances - q) > r_spk):
                return q, False
    k = int(rng.integers(len(distances)))
    q = float(distances[k] + rng.uniform(-r_spk, r_spk))
    return max(q, 0.0), True


def _spread_pick(rows: Sequence[dict[str, Any]], k: int, gap: float) -> list[dict[str, Any]] | None:
    """``k`` responses whose distances are pairwise at least ``gap`` apart, or None if the room has none.

    Taking the nearest response and then each next one at least ``gap`` further on finds the most
    responses any choice can hold, so None means no choice exists.
    """
    order = sorted(rows, key=lambda r: r["distance"])
    pick = [order[0]]
    for r in order[1:]:
        if r["distance"] - pick[-1]["distance"] >= gap:
            pick.append(r)
    return pick[:k] if len(pick) >= k else None


class MixtureDataset(Dataset):
    """Mixtures drawn on the fly from a bank split and a speech pool.

    Items are dicts: ``mix`` and ``target`` ``[samples]``, ``query`` (float), ``present`` (bool),
    ``distances`` ``[K]``, ``rir_ids``, ``utt_ids``.

    Args:
        bank: an :class:`~voxa.tse.bank.RirBank` (or its path).
        split: the bank split to draw responses from.
        speech: the speech pool's records (or a ready :class:`SpeechSource`).
        cfg: mixing settings.
        length: items per epoch.
        seed: base seed; item ``i`` of epoch ``e`` depends only on ``(seed, e, i)``.
        preload: hold the speech pool in memory.

    Attributes:
        group_names: the rooms (response groups) items are drawn from.
        skipped_groups: rooms of the split left out because no ``num_talkers`` of their responses are
            ``min_talker_gap`` apart.

    Example:
        >>> ds = MixtureDataset("exp/banks/D1", "train", records, MixtureConfig(rate=8000))  # doctest: +SKIP
        >>> item = ds[0]; item["mix"].shape                                                   # doctest: +SKIP
    """

    def __init__(self, bank: RirBank | str | os.PathLike, split: str,
                 speech: Sequence[Record] | SpeechSource, cfg: MixtureConfig, length: int = 10000,
                 seed: int = 0, preload: bool = False) -> None:
        self.bank = bank if isinstance(bank, RirBank) else RirBank(bank, rate=cfg.rate)
        if self.bank.rate != cfg.rate:
            self.bank = RirBank(self.bank.root, rate=cfg.rate)
        self.cfg = cfg
        self.groups = self.bank.groups(split)
        self.group_names = [g for g, rows in self.groups.items() if len(rows) >= cfg.num_talkers]
        if not self.group_names:
            raise VoxaError(f"{self.bank.root}: split {split!r} has no room with {cfg.num_talkers} responses")
        # a room whose responses cannot place the talkers min_talker_gap apart is left out, not drawn from
        # with the gap broken: a real bank (AIR) has rooms with only a few close distances
        wide = [g for g in self.group_names
                if _spread_pick(self.groups[g], cfg.num_talkers, cfg.min_talker_gap) is not None]
        self.skipped_groups = sorted(set(self.group_names) - set(wide))
        if not wide:
            raise VoxaError(f"{self.bank.root}: split {split!r} has no room with {cfg.num_talkers} responses "
                            f"at least min_talker_gap={cfg.min_talker_gap} m apart")
        self.group_names = wide
        self.speech = speech if isinstance(speech, SpeechSource) else SpeechSource(speech, cfg.rate, preload)
        self.length = length
        self.seed = seed
        self.epoch = 0
        self.split = split
        self.query_rule = "any"
        dist = np.array([r["distance"] for rows in self.groups.values() for r in rows])
        self.query_range = cfg.query_range or (max(0.0, float(dist.min()) - cfg.r_spk),
                                               float(dist.max()) + cfg.r_spk)

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_presence(self, presence: float) -> None:
        self.cfg.presence = presence

    def set_query_rule(self, rule: str) -> None:
        """``"any"`` (the paper: a present query is near a random talker) or ``"nearest"`` (a curriculum
        stage: present queries are near the talker closest to the microphone, so the network first learns
        features that tell near from far talkers without needing the query yet)."""
        if rule not in ("any", "nearest"):
            raise ConfigError(f"query rule must be 'any' or 'nearest', got {rule!r}")
        self.query_rule = rule

    def _pick_rirs(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        rows = self.groups[self.group_names[int(rng.integers(len(self.group_names)))]]
        k = self.cfg.num_talkers
        for _ in range(100):
            idx = rng.choice(len(rows), size=k, replace=False)
            pick = [rows[i] for i in idx]
            d = np.array([r["distance"] for r in pick])
            if k == 1 or self.cfg.min_talker_gap <= 0 or \
                    np.min(np.abs(d[:, None] - d[None, :]) + np.eye(k) * 1e9) >= self.cfg.min_talker_gap:
                return pick
        # rare in a room that admits the gap at all: the nearest-first pick, which keeps the gap (the same
        # responses every time, but a broken gap would be worse)
        return _spread_pick(rows, k, self.cfg.min_talker_gap)

    @property
    def group_size(self) -> int:
        """Consecutive indices that share one mixture (the trainer keeps them in one batch)."""
        return self.cfg.queries_per_mixture

    def __getitem__(self, index: int) -> dict[str, Any]:
        cfg = self.cfg
        q = cfg.queries_per_mixture if self.query_rule == "any" else 1
        mixture, j = (int(index) // q, int(index) % q) if q > 1 else (int(index), 0)
        rng = np.random.default_rng([self.seed, self.epoch, mixture])
        rows = self._pick_rirs(rng)
        n = cfg.samples
        utt_idx = rng.choice(len(self.speech.records), size=cfg.num_talkers,
                             replace=len(self.speech.records) < cfg.num_talkers)
        sources = []
        for row, u in zip(rows, utt_idx):
            s = self.speech.segment(int(u), rng, n)
            x = _convolve(s, self.bank.load(row["id"]), n)
            rms = x.pow(2).mean().sqrt().clamp(min=1e-8)
            level = 10 ** (rng.uniform(*cfg.rms_db) / 20.0)
            sources.append(x * (level / rms))
        src = torch.stack(sources)
        distances = np.array([r["distance"] for r in rows], dtype=np.float64)
        want_present = bool(rng.random() < cfg.presence)
        query, present = draw_query(rng, distances, want_present, cfg.r_spk, *self.query_range)
        if present and self.query_rule == "nearest":
            query = max(0.0, float(distances.min() + rng.uniform(-cfg.r_spk, cfg.r_spk)))
        if j > 0:
            # the j-th query of a shared mixture: its own draw, a present one aimed at talker
            # (first target + j) so that the group's targets differ
            first = int(np.argmin(np.abs(distances - query)))
            rng_j = np.random.default_rng([self.seed, self.epoch, mixture, j])
            if rng_j.random() < cfg.presence:
                k = (first + j) % len(distances)
                query = max(0.0, float(distances[k] + rng_j.uniform(-cfg.r_spk, cfg.r_spk)))
            else:
                query, _ = draw_query(rng_j, distances, False, cfg.r_spk, *self.query_range)
        inside = torch.from_numpy(np.abs(distances - query) <= cfg.r_spk + 1e-9)
        present = bool(inside.any())
        target = (src * inside[:, None].to(src.dtype)).sum(0)
        return {"mix": src.sum(0), "target": target, "query": float(query), "present": present,
                "sources": src, "distances": torch.from_numpy(distances).float(),
                "rir_ids": [r["id"] for r in rows],
                "utt_ids": [self.speech.records[int(u)].id for u in utt_idx]}


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch mixture items (all of one length)."""
    batch = {"mix": torch.stack([i["mix"] for i in items]),
             "target": torch.stack([i["target"] for i in items]),
             "query": torch.tensor([i["query"] for i in items], dtype=torch.float32),
             "present": torch.tensor([i["present"] for i in items]),
             "distances": torch.stack([i["distances"] for i in items]),
             "ids": [i.get("id") for i in items]}
    # on-the-fly items carry their sources; a fixed set's items do not
    if all("sources" in i for i in items):
        batch["sources"] = torch.stack([i["sources"] for i in items])
    return batch


def write_mixture_set(dataset: MixtureDataset, count: int, out: str | os.PathLike,
                      progress: bool = True) -> Path:
    """Write ``count`` mixtures as a fixed evaluation set.

    Layout: ``mix/<id>.wav``, ``target/<id>.wav`` (float WAV; zeros when absent), ``mixtures.jsonl``
    (id, paths, query, distances, presence, response and utterance ids) and ``set.json``. The
    same dataset settings and seed always give the same files. Resumes an interrupted write.
    """
    from tqdm import tqdm

    out = Path(out)
    (out / "mix").mkdir(parents=True, exist_ok=True)
    (out / "target").mkdir(parents=True, exist_ok=True)
    meta = {"count": count, "seed": dataset.seed, "split": dataset.split, "bank": str(dataset.bank.root),
            "bank_meta": dataset.bank.meta, "mixing": asdict(dataset.cfg),
            "speech": [r.id for r in dataset.speech.records]}
    meta_path = out / "set.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) != json.loads(json.dumps(meta)):
        raise VoxaError(f"{out}: holds a mixture set made with other settings; use a new directory")
    write_text_atomic(meta_path, json.dumps(meta, indent=2))
    rows = []
    for i in tqdm(range(count), desc="mixtures", unit="mix", disable=not progress):
        mid = f"mix{i:06d}"
        mp, tp = out / "mix" / f"{mid}.wav", out / "target" / f"{mid}.wav"
        item = dataset[i]
        if not (mp.exists() and tp.exists()):
            save(tp, item["target"], dataset.cfg.rate, subtype="FLOAT")
            save(mp, item["mix"], dataset.cfg.rate, subtype="FLOAT")
        rows.append({"id": mid, "mix": f"mix/{mid}.wav", "target": f"target/{mid}.wav",
                     "query": item["query"], "present": item["present"],
                     "distances": [float(d) for d in item["distances"]],
                     "rir_ids": item["rir_ids"], "utt_ids": item["utt_ids"], "rate": dataset.cfg.rate})
    write_text_atomic(out / "mixtures.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return out


class MixtureSet(Dataset):
    """A fixed mixture set written by :func:`write_mixture_set`, as a dataset of the same items."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        index = self.root / "mixtures.jsonl"
        if not index.is_file():
            raise VoxaError(f"{self.root}: not a mixture set (no mixtures.jsonl)")
        self.rows = read_jsonl(index)
        self.rate = int(self.rows[0]["rate"]) if self.rows else 16000

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        r = self.rows[index]
        mix, _ = load(self.root / r["mix"], expect_rate=self.rate)
        tgt, _ = load(self.root / r["target"], expect_rate=self.rate) if r["present"] else (None, None)
        target = tgt[0] if tgt is not None else torch.zeros_like(mix[0])
        return {"id": r["id"], "mix": mix[0], "target": target, "query": float(r["query"]),
                "present": bool(r["present"]), "distances": torch.tensor(r["distances"]),
                "rir_ids": r["rir_ids"], "utt_ids": r["utt_ids"]}


def plot_mixture_geometry(rows: Sequence[dict[str, Any]], r_spk: float, path: str | os.PathLike,
                          title: str = "") -> Path:
    """One line per mixture: talkers' distances (dots), the query (cross) with its +-r_spk window,
    green when a target is present, red when absent. Saved as PNG."""
    from voxa.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        color = "tab:green" if r["present"] else "tab:red"
        ax.axhspan(i - 0.3, i + 0.3, xmin=0, xmax=0, color=color)
        ax.plot([r["query"] - r_spk, r["query"] + r_spk], [i, i], color=color, lw=6, alpha=0.25,
                solid_capstyle="butt")
        ax.plot(r["query"], i, "x", color=color, ms=9, mew=2)
        ax.plot(r["distances"], [i] * len(r["distances"]), "o", color="k", ms=6)
    ax.set_yticks(range(len(rows)), [r.get("id", str(i)) for i, r in enumerate(rows)])
    ax.set_xlabel("distance from the microphone (m)")
    ax.set_title(title or f"talkers (dots), query (x) and its ±{r_spk} m window: green present, red absent")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)
