"""Word n-gram language models of any order: interpolated modified Kneser-Ney and Witten-Bell, ARPA I/O.

Each sentence is padded as ``<s> w1 ... wn </s>``; ``<s>`` is context only (``-99`` in ARPA), ``</s>`` is
predicted. Training counts are plain Python dicts over token tuples: meant for the small texts of
recipes (up to a few million words), not web-scale corpora.

* ``"kneser-ney"``: interpolated modified Kneser-Ney (Chen & Goodman 1998). Per order, three discounts
  ``D1, D2, D3+`` from the count-of-counts ``n1..n4`` (``Y = n1 / (n1 + 2 n2)``, ``Dk = k - (k + 1) Y
  n(k+1) / nk``); the highest order uses counts, lower orders continuation counts (the number of distinct
  left neighbours), except n-grams starting with ``<s>``, which have no left neighbour and keep their
  counts (as SRILM and KenLM do). The unigrams interpolate with the uniform distribution over the
  vocabulary.
* ``"witten-bell"``: interpolated Witten-Bell, ``P(w|h) = (c(hw) + T(h) P(w|h')) / (c(h) + T(h))`` with
  ``T(h)`` the number of distinct words seen after ``h``.

An interpolated model is stored, exactly, as a backoff model (what ARPA holds): a seen n-gram keeps its
interpolated probability and each context the interpolation weight of its lower order as backoff
weight. Probabilities are log10, as in ARPA files. Perplexity follows SRILM's ``ngram -ppl``: ``</s>``
is scored, out-of-vocabulary words are counted apart and not scored (unless the model has ``<unk>``).

Example:
    >>> lm = NgramLM.fit(["a b a", "b a b"], order=2, smoothing="witten-bell")
    >>> round(10 ** lm.logprob("b", ["a"]), 4)  # (2 + 2 * 4/11) / (3 + 2)
    0.5455
    >>> sorted(lm.perplexity(["a b"]))
    ['logprob', 'oovs', 'ppl', 'ppl1', 'sentences', 'words']
"""

from __future__ import annotations

import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from voxa.errors import VoxaError
from voxa.utils.atomic import atomic_path, write_text_atomic

__all__ = ["BOS", "EOS", "UNK", "LmError", "NgramLM", "arpa_to_fst_text", "read_sentences"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_NEG_INF_LOG = -99.0  # ARPA's "log10(0)", given to <s>

Ngram = tuple[str, ...]


class LmError(VoxaError):
    """A language model file is malformed, or a model cannot be trained or used as asked."""


def _tokens(s: str | Sequence[str]) -> list[str]:
    toks = s.split() if isinstance(s, str) else list(s)
    if toks and toks[0] == BOS:
        toks = toks[1:]
    if toks and toks[-1] == EOS:
        toks = toks[:-1]
    return toks


def _mkn_discounts(values: Iterable[int]) -> tuple[float, float, float]:
    coc = defaultdict(int)
    for v in values:
        if v <= 4:
            coc[v] += 1
    n1, n2, n3, n4 = (coc[i] for i in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
    d1 = 1 - 2 * y * n2 / n1 if n1 else y
    d2 = 2 - 3 * y * n3 / n2 if n2 else d1
    d3 = 3 - 4 * y * n4 / n3 if n3 else d2
    # tiny corpora give count-of-counts for which the estimates leave (0, k): keep them inside so that
    # every seen n-gram keeps some probability and every context leaves some to its lower order
    return tuple(min(max(d, 0.1), k - 0.1) for k, d in zip((1, 2, 3), (d1, d2, d3)))


class NgramLM:
    """A backoff n-gram model: ``probs[k][ngram]`` and ``bows[k][ngram]`` in log10, ``k = 1..order``.

    Build one with :meth:`fit` or :meth:`read_arpa`.
    """

    def __init__(self, probs: list[dict[Ngram, float]], bows: list[dict[Ngram, float]]) -> None:
        if len(probs) != len(bows) or not probs:
            raise LmError("a model needs probabilities and backoff weights for orders 1..n")
        self.probs = probs
        self.bows = bows
        self.order = len(probs)
        self.vocab = frozenset(g[0] for g in probs[0] if g[0] not in (BOS, EOS))
        self.has_unk = UNK in self.vocab

    # --- training -------------------------------------------------------------------------------

    @classmethod
    def fit(cls, sentences: Iterable[str] | Iterable[Sequence[str]], order: int = 3,
            smoothing: str = "kneser-ney",
            discounts: Mapping[int, Sequence[float]] | Sequence[float] | None = None,
            vocab: Iterable[str] | None = None, unk: bool = False) -> NgramLM:
        """Train on sentences (strings split on whitespace, or token lists).

        Args:
            sentences: training text, one sentence each; a leading ``<s>``/trailing ``</s>`` is ignored.
            order: n-gram order (1 or more).
            smoothing: ``"kneser-ney"`` (interpolated modified) or ``"witten-bell"`` (interpolated).
            discounts: Kneser-Ney only: ``(D1, D2, D3+)`` for every order, or ``{order: (D1, D2, D3+)}``
                for some; each ``Dk`` in ``(0, k]``. By default estimated from count-of-counts.
            vocab: the vocabulary; by default the training words. Training words outside it are
                out-of-vocabulary: n-grams holding one are not counted (SRILM ``-vocab``).
            unk: add ``<unk>``: out-of-vocabulary words, in training and when scoring, become ``<unk>``.

        Returns:
            The model.

        Raises:
            LmError: for a bad order, smoothing or discounts, or no training words.
        """
        if not isinstance(order, int) or order < 1:
            raise LmError(f"order must be an integer >= 1, got {order!r}")
        if smoothing not in ("kneser-ney", "witten-bell"):
            raise LmError(f"smoothing must be 'kneser-ney' or 'witten-bell', got {smoothing!r}")
        disc = cls._check_discounts(discounts, order)
        sents = [_tokens(s) for s in sentences]
        V = set(vocab) if vocab is not None else {w for s in sents for w in s}
        V -= {BOS, EOS}
        if unk:
            V.add(UNK)
        oov = "\x00oov"  # never a real word: marks an OOV position
        mark = UNK if unk else oov

        counts: list[dict[Ngram, int]] = [defaultdict(int) for _ in range(order)]
        for s in sents:
            padded = [BOS] + [w if w in V else mark for w in s] + [EOS]
            for i in range(1, len(padded)):
                for k in range(1, min(order, i + 1) + 1):
                    counts[k - 1][tuple(padded[i - k + 1:i + 1])] += 1
        if not counts[0]:
            raise LmError("no training text: every sentence is empty")

        if smoothing == "kneser-ney":
            # continuation counts, taken before OOV n-grams are dropped so that a word seen only after
            # OOVs still counts as seen
            left: list[dict[Ngram, int]] = [defaultdict(int) for _ in range(order)]
            for k in range(2, order + 1):
                for g in counts[k - 1]:
                    left[k - 2][g[1:]] += 1
            adj = [{g: (c if (k == order - 1 or g[0] == BOS) else left[k][g]) for g, c in counts[k].items()}
                   for k in range(order)]
        else:
            adj = counts
        adj = [{g: c for g, c in a.items() if oov not in g and c > 0} for a in adj]

        vp = sorted(V | {EOS})
        lin_p: list[dict[Ngram, float]] = [dict() for _ in range(order)]
        lin_b: list[dict[Ngram, float]] = [dict() for _ in range(order)]

        def lower(w: str, h: Ngram) -> float:
            # the interpolated lower-order probability, read from the backoff tables built so far
            bw = 1.0
            for s in range(len(h) + 1):
                g = h[s:] + (w,)
                p = lin_p[len(g) - 1].get(g)
                if p is not None:
                    return bw * p
                bw *= lin_b[len(g) - 2].get(h[s:], 1.0) if len(g) > 1 else 1.0
            raise AssertionError(w)

        for k in range(1, order + 1):
            by_ctx: dict[Ngram, dict[str, int]] = defaultdict(dict)
            for g, c in adj[k - 1].items():
                by_ctx[g[:-1]][g[-1]] = c
            if smoothing == "kneser-ney":
                d = disc.get(k) or _mkn_discounts(adj[k - 1].values())
            for h, nexts in by_ctx.items():
                total = sum(nexts.values())
                if smoothing == "kneser-ney":
                    def dk(c: int, d=d) -> float:
                        return d[min(c, 3) - 1]
                    gamma = sum(dk(c) for c in nexts.values()) / total
                    seen = {w: (c - dk(c)) / total for w, c in nexts.items()}
                else:
                    t = len(nexts)
                    gamma = t / (total + t)
                    seen = {w: c / (total + t) for w, c in nexts.items()}
                if k == 1:
                    for w in vp:
                        lin_p[0][(w,)] = seen.get(w, 0.0) + gamma / len(vp)
                else:
                    for w, p in seen.items():
                        lin_p[k - 1][h + (w,)] = p + gamma * lower(w, h[1:])
                    lin_b[k - 2][h] = gamma
        lin_p[0][(BOS,)] = 0.0

        probs = [{g: (math.log10(p) if p > 0 else _NEG_INF_LOG) for g, p in t.items()} for t in lin_p]
        bows = [{g: math.log10(b) for g, b in t.items()} for t in lin_b]
        return cls(probs, bows)

    @staticmethod
    def _check_discounts(discounts, order: int) -> dict[int, tuple[float, float, float]]:
        if discounts is None:
            return {}
        if isinstance(discounts, Mapping):
            items = dict(discounts)
        else:
            items = dict.fromkeys(range(1, order + 1), discounts)
        out = {}
        for k, d in items.items():
            d = tuple(float(x) for x in d)
            if len(d) != 3 or not all(0 < x <= i for i, x in zip((1, 2, 3), d)):
                raise LmError(f"discounts of order {k} must be (D1, D2, D3+) with 0 < Dk <= k, got {d}")
            out[int(k)] = d
        return out

    # --- scoring --------------------------------------------------------------------------------

    def _map(self, w: str) -> str:
        return UNK if self.has_unk and w not in self.vocab and w not in (BOS, EOS) else w

    def logprob(self, word: str, context: Sequence[str] = ()) -> float:
        """log10 P(word | context); ``context`` are the preceding words (may start with ``<s>``).

        Returns ``-inf`` for a word outside the vocabulary of a model without ``<unk>``.

        Example:
            >>> lm = NgramLM.fit(["a b"], order=1, smoothing="witten-bell")
            >>> round(10 ** lm.logprob("</s>"), 4)
            0.3333
        """
        if word == BOS:
            raise LmError("<s> is never predicted: it is only context")
        w = self._map(word)
        ctx = tuple(self._map(c) for c in context)[max(0, len(context) - self.order + 1):] \
            if self.order > 1 else ()
        bow = 0.0
        for s in range(len(ctx) + 1):
            g = ctx[s:] + (w,)
            p = self.probs[len(g) - 1].get(g)
            if p is not None:
                return p + bow
            if len(g) > 1:
                bow += self.bows[len(g) - 2].get(ctx[s:], 0.0)
        return -math.inf

    def perplexity(self, sentences: Iterable[str] | Iterable[Sequence[str]]) -> dict:
        """SRILM ``ngram -ppl`` on sentences.

        Returns:
            ``{"ppl", "ppl1", "logprob", "words", "sentences", "oovs"}``: ``logprob`` is the log10 total
            over the scored words and the ``</s>`` of each sentence; ``words`` counts every word, OOVs
            included; ``ppl = 10 ** (-logprob / (words - oovs + sentences))`` and ``ppl1`` the same
            without the ``</s>`` in the denominator.

        Example:
            >>> lm = NgramLM.fit(["a b"], order=1, smoothing="witten-bell")
            >>> r = lm.perplexity(["a zzz"])
            >>> r["words"], r["oovs"], round(r["ppl"], 4)
            (2, 1, 3.0)
        """
        lp, words, oovs, n = 0.0, 0, 0, 0
        for s in sentences:
            toks = _tokens(s)
            n += 1
            words += len(toks)
            hist = [BOS]
            for w in toks + [EOS]:
                p = self.logprob(w, hist) if (w in self.vocab or w == EOS or self.has_unk) else -math.inf
                if p == -math.inf:
                    oovs += 1
                else:
                    lp += p
                hist.append(w)
        if n == 0:
            raise LmError("no sentences to compute a perplexity on")
        denom = words - oovs + n
        ppl = 10 ** (-lp / denom)
        ppl1 = 10 ** (-lp / (words - oovs)) if words > oovs else math.inf
        return {"ppl": ppl, "ppl1": ppl1, "logprob": lp, "words": words, "sentences": n, "oovs": oovs}

    # --- ARPA -----------------------------------------------------------------------------------

    def write_arpa(self, path: str | os.PathLike) -> None:
        """Write the model as an ARPA file (atomically); reading it back gives the same probabilities."""
        out = ["", "\\data\\"]
        out += [f"ngram {k + 1}={len(t)}" for k, t in enumerate(self.probs)]
        for k, table in enumerate(self.probs):
            out += ["", f"\\{k + 1}-grams:"]
            bows = self.bows[k] if k < self.order - 1 else {}
            for g in sorted(table):
                line = f"{table[g]:.10f}\t{' '.join(g)}"
                if g in bows:
                    line += f"\t{bows[g]:.10f}"
                out.append(line)
        out += ["", "\\end\\", ""]
        write_text_atomic(path, "\n".join(out))

    @classmethod
    def read_arpa(cls, path: str | os.PathLike) -> NgramLM:
        """Read an ARPA backoff model.

        Raises:
            LmError: one line naming ``file:line`` for a bad header, an entry with the wrong number of
                fields or a non-number, a section whose size disagrees with the header, or a missing file.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise LmError(f"{path}: cannot read the ARPA file ({e.__class__.__name__}: {e})") from None
        lines = text.splitlines()
        i = 0
        while i < len(lines) and lines[i].strip() != "\\data\\":
            i += 1
        if i == len(lines):
            raise LmError(f"{path}:1: not an ARPA file (no \\data\\ line)")
        header: dict[int, tuple[int, int]] = {}
        i += 1
        while i < len(lines) and not lines[i].strip().startswith("\\"):
            ln = lines[i].strip()
            if ln:
                m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", ln)
                if not m:
                    raise LmError(f"{path}:{i + 1}: expected 'ngram N=COUNT' in the header, got {ln!r}")
                header[int(m.group(1))] = (int(m.group(2)), i + 1)
            i += 1
        order = max(header, default=0)
        if order < 1 or sorted(header) != list(range(1, order + 1)):
            raise LmError(f"{path}:{i + 1}: the header must list ngram 1..N counts, "
                          f"got orders {sorted(header)}")
        probs: list[dict[Ngram, float]] = [dict() for _ in range(order)]
        bows: list[dict[Ngram, float]] = [dict() for _ in range(order)]
        k = 0
        ended = False
        while i < len(lines):
            ln = lines[i].strip()
            i += 1
            if not ln:
                continue
            if ln.startswith("\\"):
                if ln == "\\end\\":
                    ended = True
                    break
                m = re.fullmatch(r"\\(\d+)-grams:", ln)
                if not m or int(m.group(1)) not in header:
                    raise LmError(f"{path}:{i}: unexpected section {ln!r}")
                k = int(m.group(1))
                continue
            if k == 0:
                raise LmError(f"{path}:{i}: n-gram entry before any \\N-grams: section")
            f = ln.split()
            if len(f) not in (k + 1, k + 2):
                raise LmError(f"{path}:{i}: a {k}-gram entry has {k + 1} or {k + 2} fields, got {len(f)}")
            try:
                p = float(f[0])
                b = float(f[k + 1]) if len(f) == k + 2 else None
            except ValueError:
                raise LmError(f"{path}:{i}: not a number in {ln!r}") from None
            if math.isnan(p) or (b is not None and math.isnan(b)):
                raise LmError(f"{path}:{i}: not a number in {ln!r}")
            g = tuple(f[1:k + 1])
            probs[k - 1][g] = p
            # some toolkits write a (meaningless) backoff weight on highest-order entries: ignore it
            if b is not None and k < order:
                bows[k - 1][g] = b
        if not ended:
            raise LmError(f"{path}:{len(lines)}: no \\end\\ line (truncated file?)")
        for n, (count, line_no) in header.items():
            if len(probs[n - 1]) != count:
                raise LmError(f"{path}:{line_no}: the header says ngram {n}={count} but the "
                              f"\\{n}-grams: section has {len(probs[n - 1])} entries")
        return cls(probs, bows)


def read_sentences(path: str | os.PathLike, kaldi_text: bool = False) -> list[list[str]]:
    """Sentences of a text file, one a line (blank lines skipped); with ``kaldi_text`` the first field of
    each line is an utterance id (Kaldi ``data/text``) and is dropped.

    Raises:
        LmError: when the file cannot be read.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "text"
        >>> _ = p.write_text("utt1 hello world\\nutt2\\n")
        >>> read_sentences(p, kaldi_text=True)
        [['hello', 'world'], []]
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LmError(f"{path}: cannot read the text ({e.__class__.__name__}: {e})") from None
    out = []
    for ln in lines:
        f = ln.split()
        if kaldi_text:
            if f:
                out.append(f[1:])
        elif f:
            out.append(f)
    return out


def arpa_to_fst_text(arpa_path: str | os.PathLike, words_txt_path: str | os.PathLike,
                     disambig_symbol: str = "#0") -> str:
    """The grammar FST G of an ARPA model in OpenFst text form (integer labels), through ``kaldilm``.

    ``<s>``/``</s>`` become epsilons and backoff arcs carry ``disambig_symbol`` on the input side, as for
    Kaldi's ``G.fst``. If ``words_txt_path`` exists it is the symbol table to use (it must hold every
    word of the model and ``disambig_symbol``); otherwise the table kaldilm generates is written there.

    Raises:
        LmError: when kaldilm is missing or rejects the file.
    """
    try:
        import kaldilm
    except ImportError:
        raise LmError("kaldilm is not installed (pip install kaldilm)") from None
    arpa_path, words_txt_path = Path(arpa_path), Path(words_txt_path)
    if not arpa_path.is_file():
        raise LmError(f"{arpa_path}: no such ARPA file")
    try:
        if words_txt_path.is_file():
            return kaldilm.arpa2fst(input_arpa=str(arpa_path), disambig_symbol=disambig_symbol,
                                    read_symbol_table=str(words_txt_path), max_arpa_warnings=0)
        with atomic_path(words_txt_path) as tmp:
            return kaldilm.arpa2fst(input_arpa=str(arpa_path), disambig_symbol=disambig_symbol,
                                    write_symbol_table=str(tmp), max_arpa_warnings=0)
    except RuntimeError as e:
        why = (str(e).strip().splitlines() or [e.__class__.__name__])[-1]
        raise LmError(f"{arpa_path}: kaldilm could not convert it ({why})") from None
