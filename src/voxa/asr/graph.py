"""Decoding graphs with OpenFst (the ``kaldifst`` wheel): H ∘ det(min(L ∘ G)).

- **G**, the grammar, as a word acceptor: an n-gram LM from an ARPA file (converted by ``kaldilm``,
  Kaldi's ``arpa2fst``, backoff arcs on the disambiguation symbol ``#0``), a free word loop
  (dictionary only: every word equally likely after every word), isolated words (one word per
  utterance), or a finite grammar (a list of allowed word sequences).
- **L**, the lexicon, from phones to words with pronunciation probabilities and optional silence at
  word boundaries (probability ``sil_prob``, Kaldi's ``make_lexicon_fst.py``); pronunciations that are
  a prefix of another or shared by several words get disambiguation symbols ``#1, #2, ...`` so that
  ``L ∘ G`` can be determinised (Kaldi's ``add_lex_disambig.pl``).
- ``L ∘ G`` is composed, determinised and minimised (weight-pushed by OpenFst's minimisation); the
  disambiguation symbols are then removed.
- **H**, the HMMs, from pdf sequences to phones: each phone a left-to-right chain of its states with
  self-loops, transition probabilities as arc weights. ``H`` is composed last, with its self-loops
  already in (Kaldi adds them after determinising ``H ∘ C ∘ L ∘ G``; for monophone H the graph stays
  small enough without that step).

Input labels of the final graph are ``pdf + 1`` (0 is epsilon), the convention of
``kaldi_decoder.DecodableCtc``; output labels are word ids.

Example:
    >>> import torch
    >>> from voxa.asr.acoustic import AcousticModel
    >>> am = AcousticModel.init_flat(["SIL", "n", "o", "y", "e", "s"], 2, torch.zeros(2), torch.ones(2))
    >>> lex = {"no": [(("n", "o"), 1.0)], "yes": [(("y", "e", "s"), 1.0)]}
    >>> g = build_graph(am, lex, grammar="loop")
    >>> g.words[1:3], g.fst.num_states > 0
    (['no', 'yes'], True)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxa.asr.acoustic import AcousticModel
from voxa.asr.lexicon import pron_options
from voxa.errors import ConfigError, VoxaError

log = logging.getLogger(__name__)


def _cost(p: float) -> float:
    return -math.log(p) if p > 0 else float("inf")


def _compile(lines: list[str]):
    import kaldifst

    return kaldifst.compile("\n".join(lines) + "\n", acceptor=False)


@dataclass
class DecodingGraph:
    """A compiled graph and its symbol tables.

    Attributes:
        fst: the ``kaldifst.StdVectorFst`` (input ``pdf + 1``, output word ids).
        words: word symbols by id (``words[0] == "<eps>"``).
        phones: the acoustic model's phones.
        kind: what G was (``arpa``, ``loop``, ``isolated``, ``grammar``).
    """

    fst: Any
    words: list[str]
    phones: list[str]
    kind: str

    def write(self, folder: str | os.PathLike) -> Path:
        """``HLG.fst`` and ``words.txt`` into ``folder`` (atomically)."""
        from voxa.utils.atomic import atomic_path, write_text_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "HLG.fst") as tmp:
            self.fst.write(str(tmp))
        write_text_atomic(folder / "words.txt", "".join(f"{w} {i}\n" for i, w in enumerate(self.words)))
        write_text_atomic(folder / "phones.txt", "".join(f"{p}\n" for p in self.phones))
        return folder


def _word_table(words: Sequence[str]) -> dict[str, int]:
    table = {"<eps>": 0}
    for w in words:
        if w in ("<eps>", "#0", "<s>", "</s>"):
            continue
        table.setdefault(w, len(table))
    return table


def lexicon_fst(am: AcousticModel, prons: Any, words: Sequence[str], word_ids: Mapping[str, int],
                sil_prob: float = 0.5) -> tuple[Any, int, int]:
    """L: phones (ids ``1..``, the acoustic model's order) to words, with optional silence.

    Returns ``(L, first_disambig, num_disambig)``: phone-side labels ``first_disambig + k`` are ``#k``
    for ``k < num_disambig`` (``#0`` passes G's backoff symbol through).
    """
    phone_id = {p: i + 1 for i, p in enumerate(am.phones)}
    entries = [(w, ph, p) for w in words for ph, p in pron_options(prons, w)]
    for w, ph, _ in entries:
        missing = [x for x in ph if x not in phone_id]
        if missing:
            raise VoxaError(f"lexicon: {w!r} uses phone(s) the acoustic model lacks: {', '.join(missing)}")
    # disambiguation: a pronunciation that is a prefix of another, or shared, gets #k appended
    count: dict[tuple[str, ...], int] = {}
    for _, ph, _ in entries:
        count[ph] = count.get(ph, 0) + 1
    prefixes = {ph[:k] for _, ph, _ in entries for k in range(1, len(ph))}
    first_dis = len(am.phones) + 1
    next_k: dict[tuple[str, ...], int] = {}
    max_k = 0
    lines: list[str] = []
    use_sil = am.silence in phone_id and sil_prob > 0
    start, loop, sil = 0, 1, 2
    nstate = 3
    if use_sil:
        lines.append(f"{start} {loop} 0 0 {_cost(1 - sil_prob)}")
        lines.append(f"{start} {loop} {phone_id[am.silence]} 0 {_cost(sil_prob)}")
        lines.append(f"{sil} {loop} {phone_id[am.silence]} 0 0")
    else:
        lines.append(f"{start} {loop} 0 0 0")
    wdis = word_ids.get("#0")
    for w, ph, p in entries:
        labels = [phone_id[x] for x in ph]
        if count[ph] > 1 or ph in prefixes:
            k = next_k.get(ph, 0) + 1
            next_k[ph] = k
            max_k = max(max_k, k)
            labels.append(first_dis + k)
        cur = loop
        for j, lab in enumerate(labels):
            olab = word_ids[w] if j == 0 else 0
            wcost = _cost(p) if j == 0 else 0.0
            if j == len(labels) - 1:
                if use_sil:
                    lines.append(f"{cur} {loop} {lab} {olab} {wcost + _cost(1 - sil_prob)}")
                    lines.append(f"{cur} {sil} {lab} {olab} {wcost + _cost(sil_prob)}")
                else:
                    lines.append(f"{cur} {loop} {lab} {olab} {wcost}")
            else:
                lines.append(f"{cur} {nstate} {lab} {olab} {wcost}")
                cur = nstate
                nstate += 1
    if wdis is not None:
        lines.append(f"{loop} {loop} {first_dis} {wdis} 0")
    lines.append(f"{loop} 0")
    fst = _compile(lines)
    return fst, first_dis, max_k + 1


def loop_grammar(word_ids: Mapping[str, int]) -> Any:
    """G for free word sequences (each word ``1/V`` after every word), the "no LM" case."""
    ids = [i for w, i in word_ids.items() if w not in ("<eps>", "#0", "<s>", "</s>")]
    c = math.log(len(ids))
    lines = [f"0 0 {i} {i} {c}" for i in ids] + ["0 0"]
    return _compile(lines)


def isolated_grammar(word_ids: Mapping[str, int]) -> Any:
    """G for exactly one word per utterance, each ``1/V``."""
    ids = [i for w, i in word_ids.items() if w not in ("<eps>", "#0", "<s>", "</s>")]
    c = math.log(len(ids))
    lines = [f"0 1 {i} {i} {c}" for i in ids] + ["1 0"]
    return _compile(lines)


def finite_grammar(sentences: Sequence[Sequence[str]], word_ids: Mapping[str, int]) -> Any:
    """G accepting exactly the listed word sequences, equally likely (a prefix tree)."""
    import kaldifst

    sents = sorted({tuple(s) for s in sentences})
    if not sents:
        raise ConfigError("a finite grammar needs at least one sentence")
    lines, trie, n = [], {(): 0}, 1
    for s in sents:
        for k in range(len(s)):
            key = s[:k + 1]
            if key not in trie:
                trie[key] = n
                c = 0.0
                lines.append(f"{trie[s[:k]]} {n} {word_ids[s[k]]} {word_ids[s[k]]} {c}")
                n += 1
        lines.append(f"{trie[s]} {math.log(len(sents))}")
    # uniform over sentences: the cost sits on the final weights, pushed to the front by minimise
    fst = _compile(lines)
    fst = kaldifst.determinize(fst)
    kaldifst.minimize(fst)
    return fst


def arpa_grammar(arpa: str | os.PathLike, word_ids: Mapping[str, int]) -> Any:
    """G from an ARPA n-gram file via ``kaldilm.arpa2fst`` (backoff arcs on ``#0``); words of the LM
    that are not in ``word_ids`` (the lexicon) are dropped with a warning."""
    import tempfile

    import kaldilm

    arpa = Path(arpa)
    if not arpa.is_file():
        raise VoxaError(f"{arpa}: no such language model file")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "words.txt"
        table.write_text("".join(f"{w} {i}\n" for w, i in word_ids.items()))
        try:
            text = kaldilm.arpa2fst(input_arpa=str(arpa), disambig_symbol="#0",
                                    read_symbol_table=str(table), max_order=-1)
        except Exception as e:  # kaldilm raises RuntimeError with Kaldi's message
            raise VoxaError(f"{arpa}: cannot be read as an ARPA language model ({e})") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return _compile(lines)


def hmm_fst(am: AcousticModel, first_disambig: int, self_loop_scale: float = 0.1) -> Any:
    """H: pdf sequences (labels ``pdf + 1``) to phones (``1..``), self-loops included; passes
    epsilons only (disambiguation symbols are removed from ``L ∘ G`` before composition).

    ``self_loop_scale`` multiplies the self-loop and leave costs (Kaldi's ``--self-loop-scale=0.1`` in
    ``mkgraph.sh``): with the acoustic scale 0.1 it keeps durations weighed as much as the acoustics,
    where unscaled they would count ten times as much."""
    lines: list[str] = []
    n = 1
    for pi, p in enumerate(am.phones):
        n = _phone_chain(lines, am, am.pdfs_of(p), pi + 1, n, self_loop_scale)
    lines.append("0 0")
    return _compile(lines)


def _phone_chain(lines: list[str], am: AcousticModel, pdfs: Sequence[int], olabel: int, n: int,
                 scale: float) -> int:
    """Append one phone's left-to-right chain from and back to state 0 (the first arc outputs
    ``olabel``); returns the next free state."""
    ls = am.log_self.double()
    prev = 0
    for k, q in enumerate(pdfs):
        enter = 0.0 if k == 0 else scale * _cost(1.0 - math.exp(float(ls[pdfs[k - 1]])))
        lines.append(f"{prev} {n} {q + 1} {olabel if k == 0 else 0} {enter}")
        lines.append(f"{n} {n} {q + 1} 0 {-scale * float(ls[q])}")
        prev = n
        n += 1
    lines.append(f"{prev} 0 0 0 {scale * _cost(1.0 - math.exp(float(ls[pdfs[-1]])))}")
    return n


def context_hmm_fst(am: AcousticModel, windows: list[list[int]], self_loop_scale: float = 0.1) -> Any:
    """H for a context-dependent model: input label ``i`` of ``C ∘ L ∘ G`` is the phone window
    ``windows[i]`` (``[left, centre, right]``, ``0`` at an utterance edge; a disambiguation symbol is
    ``[-k]``, epsilon ``[]``); each window becomes the chain of its tied states' pdfs (``pdf + 1``).
    Disambiguation windows map from epsilon, so they vanish from the final graph."""
    lines: list[str] = []
    n = 1
    for i, w in enumerate(windows):
        if i == 0 or not w:
            continue
        if len(w) != 3 or w[1] <= 0:
            lines.append(f"0 0 0 {i} 0")
            continue
        left, centre, right = (max(int(v), 0) for v in w)
        pdfs = [am.cd_pdf(left, centre, s, right) for s in range(am.n_states[centre - 1])]
        n = _phone_chain(lines, am, pdfs, i, n, self_loop_scale)
    lines.append("0 0")
    return _compile(lines)


def _remove_disambig(fst: Any, first: int) -> Any:
    """Replace input labels ``>= first`` by epsilon (text round trip: the graphs are small)."""
    out = []
    for ln in fst.to_str(show_weight_one=True).splitlines():
        f = ln.split()
        if len(f) >= 4 and int(f[2]) >= first:
            f[2] = "0"
        out.append(" ".join(f))
    return _compile(out)


def build_graph(am: AcousticModel, prons: Any, grammar: str = "loop", arpa: str | os.PathLike | None = None,
                sentences: Sequence[Sequence[str]] | None = None, words: Sequence[str] | None = None,
                sil_prob: float = 0.5, self_loop_scale: float = 0.1) -> DecodingGraph:
    """The decoding graph ``H ∘ det(min(L ∘ G))``.

    Args:
        am: the acoustic model.
        prons: the lexicon (a :class:`voxa.asr.lexicon.Lexicon` or ``{word: [(phones, prob)]}``).
        grammar: ``arpa`` (needs ``arpa``), ``loop`` (free word sequences), ``isolated`` (one word)
            or ``grammar`` (exactly ``sentences``).
        words: the vocabulary (default: every word of the lexicon, or of ``sentences``).
        sil_prob: probability of optional silence at each word boundary.
        self_loop_scale: scale of the HMM transition costs (Kaldi's 0.1; see :func:`hmm_fst`).
    """
    import kaldifst

    if grammar not in ("arpa", "loop", "isolated", "grammar"):
        raise ConfigError(f"grammar={grammar!r}: choose arpa, loop, isolated or grammar")
    if words is None:
        if grammar == "grammar" and sentences:
            words = sorted({w for s in sentences for w in s})
        elif hasattr(prons, "words"):
            words = sorted(prons.words)
        else:
            words = sorted(prons)
    words = [w for w in words if w not in ("<eps>", "#0", "<s>", "</s>")]
    table = _word_table(words)
    table["#0"] = len(table)
    table["<s>"] = len(table)
    table["</s>"] = len(table)
    if grammar == "arpa":
        if arpa is None:
            raise ConfigError("grammar='arpa' needs an ARPA file (arpa=...)")
        g = arpa_grammar(arpa, table)
    elif grammar == "loop":
        g = loop_grammar(table)
    elif grammar == "isolated":
        g = isolated_grammar(table)
    else:
        g = finite_grammar(sentences or [], table)
    lex, first_dis, n_dis = lexicon_fst(am, prons, words, table, sil_prob)
    kaldifst.arcsort(lex, sort_type="olabel")
    kaldifst.arcsort(g, sort_type="ilabel")
    lg = kaldifst.compose(lex, g)
    lg = kaldifst.determinize(lg)
    kaldifst.minimize(lg)
    if am.context_dependent:
        # Kaldi's C: phone windows (left, centre, right) on the input of C ∘ L ∘ G
        clg, windows = kaldifst.compose_context(list(range(first_dis, first_dis + n_dis)), 3, 1, lg)
        lg = clg
        h = context_hmm_fst(am, windows, self_loop_scale)
    else:
        lg = _remove_disambig(lg, first_dis)
        kaldifst.rmepsilon(lg)
        h = hmm_fst(am, first_dis, self_loop_scale)
    kaldifst.arcsort(h, sort_type="olabel")
    kaldifst.arcsort(lg, sort_type="ilabel")
    hlg = kaldifst.compose(h, lg)
    kaldifst.connect(hlg)
    kaldifst.arcsort(hlg, sort_type="ilabel")
    if hlg.num_states == 0:
        raise VoxaError("the decoding graph is empty: no word sequence of the grammar is in the lexicon")
    names = [""] * len(table)
    for w, i in table.items():
        names[i] = w
    log.info("decoding graph (%s): %d states", grammar, hlg.num_states)
    return DecodingGraph(hlg, names, list(am.phones), grammar)
