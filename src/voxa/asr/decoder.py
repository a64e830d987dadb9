"""Viterbi beam search over a decoding graph with Kaldi's decoders (the ``kaldi-decoder`` wheel).

:class:`Decoder` scales the acoustic model's frame log-likelihoods (``acoustic_scale``, Kaldi's
``--acoustic-scale=0.1`` for GMMs: the graph's LM and transition costs stay unscaled), hands them to
``kaldi_decoder.FasterDecoder`` (best path) or ``LatticeSimpleDecoder`` (a lattice, for N-best lists)
through ``DecodableCtc`` (input label ``k`` reads column ``k - 1``, i.e. pdf ``k - 1``), and reads the
best path back: words, the pdf of every frame, and the costs. It times itself, so a decode reports
its real-time factor.

Example:
    >>> import torch
    >>> from voxa.asr.acoustic import AcousticModel
    >>> from voxa.asr.graph import build_graph
    >>> am = AcousticModel.init_flat(["SIL", "a", "b"], 1, torch.zeros(1), torch.ones(1))
    >>> am.means[am.pdfs_of("a")] = 3.0; am.means[am.pdfs_of("b")] = -3.0; am._cache = None
    >>> g = build_graph(am, {"A": [(("a",), 1.0)], "B": [(("b",), 1.0)]}, grammar="loop")
    >>> x = torch.cat([torch.zeros(5), torch.full((9,), 3.0), torch.full((9,), -3.0), torch.zeros(5)])
    >>> Decoder(g, DecoderConfig(acoustic_scale=1.0)).decode(am.log_likelihoods(x[:, None])).words
    ['A', 'B']
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from voxa.asr.graph import DecodingGraph
from voxa.errors import ConfigError, VoxaError


@dataclass
class DecodeResult:
    """One utterance's best path: ``words``, ``pdfs`` per frame (``[T]``, empty if the search failed),
    ``cost`` (graph + scaled acoustic), ``ok`` (a final state was reached), ``seconds`` spent, and
    ``nbest`` as ``[(words, cost), ...]`` when asked for."""

    words: list[str]
    pdfs: list[int]
    cost: float
    ok: bool
    seconds: float
    nbest: list[tuple[list[str], float]] = field(default_factory=list)


@dataclass
class DecoderConfig:
    """Search settings (Kaldi's ``decode.sh`` defaults): ``beam`` 13, ``max_active`` 7000,
    ``acoustic_scale`` 0.1, ``lattice_beam`` 6 (N-best only)."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200
    acoustic_scale: float = 0.1
    lattice_beam: float = 6.0

    def __post_init__(self) -> None:
        if not self.beam > 0 or not self.lattice_beam > 0:
            raise ConfigError(f"beam={self.beam} and lattice_beam={self.lattice_beam} must be positive")
        if not self.acoustic_scale > 0:
            raise ConfigError(f"acoustic_scale={self.acoustic_scale} must be positive")
        if self.max_active < 1 or self.min_active < 0:
            raise ConfigError("max_active must be >= 1 and min_active >= 0")


class Decoder:
    """Decodes frame log-likelihoods ``[T, P]`` with a :class:`DecodingGraph`."""

    def __init__(self, graph: DecodingGraph, config: DecoderConfig | None = None) -> None:
        self.graph = graph
        self.config = config or DecoderConfig()

    def _decodable(self, loglikes: torch.Tensor):
        import kaldi_decoder

        if loglikes.dim() != 2 or loglikes.shape[0] == 0:
            raise VoxaError(f"log-likelihoods of shape {tuple(loglikes.shape)}: expected [frames > 0, pdfs]")
        m = np.ascontiguousarray((loglikes.detach().to(torch.float32) * self.config.acoustic_scale).numpy())
        return kaldi_decoder.DecodableCtc(m)

    def _read(self, lattice) -> tuple[list[str], list[int], float]:
        import kaldifst

        ok, isyms, osyms, w = kaldifst.get_linear_symbol_sequence(lattice)
        words = [self.graph.words[o] for o in osyms if o > 0 and not self.graph.words[o].startswith("#")]
        cost = float(w.value1 + w.value2) if hasattr(w, "value1") else float(w.value)
        return words, [i - 1 for i in isyms], cost

    def decode(self, loglikes: torch.Tensor, nbest: int = 0) -> DecodeResult:
        """Best path (and, with ``nbest > 1``, the N best distinct word sequences from a lattice)."""
        import kaldi_decoder

        c = self.config
        t0 = time.perf_counter()
        dec_in = self._decodable(loglikes)
        if nbest > 1:
            import kaldifst

            opts = kaldi_decoder.LatticeSimpleDecoderConfig()
            opts.beam, opts.lattice_beam = c.beam, c.lattice_beam
            dec = kaldi_decoder.LatticeSimpleDecoder(self.graph.fst, opts)
            dec.decode(dec_in)
            ok, lat = dec.get_raw_lattice()
            # the raw lattice keeps every alignment: draw more paths than asked and keep the best of
            # each distinct word sequence (what determinising the lattice first would give)
            paths = kaldifst.lattice_to_nbest(lat, n=20 * nbest) if ok else []
            best_of: dict[tuple[str, ...], float] = {}
            for p in paths:
                words, _, cost = self._read(p)
                key = tuple(words)
                best_of[key] = min(cost, best_of.get(key, float("inf")))
            lst = sorted(([list(k), c] for k, c in best_of.items()), key=lambda x: x[1])[:nbest]
            lst = [(w, c) for w, c in lst]
            best_ok, best = dec.get_best_path() if hasattr(dec, "get_best_path") else (ok, lat)
        else:
            opts = kaldi_decoder.FasterDecoderOptions()
            opts.beam, opts.max_active, opts.min_active = c.beam, c.max_active, c.min_active
            dec = kaldi_decoder.FasterDecoder(self.graph.fst, opts)
            dec.decode(dec_in)
            lst = []
            best_ok = dec.reached_final()
            ok, best = dec.get_best_path()
        if not ok:
            return DecodeResult([], [], float("inf"), False, time.perf_counter() - t0, lst)
        words, pdfs, cost = self._read(best)
        return DecodeResult(words, pdfs, cost, bool(best_ok), time.perf_counter() - t0, lst)
