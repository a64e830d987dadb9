"""Listen, Attend and Spell (Chan et al., 2016): a pyramidal BLSTM listener and an attention speller.

The listener is a BLSTM followed by ``listener_layers`` pyramidal BLSTM layers; each pyramidal layer
concatenates pairs of consecutive frames, halving the frame rate (``T' = ceil(T / 2**listener_layers)``).
The speller is an LSTM that reads the previous character and the previous context vector, attends over
the listener's frames (location-aware attention, Chorowski et al. 2015, or plain content attention) and
predicts the next character from its state and the new context.

Token ids: ``pad_id`` (0), ``sos_id`` (1) and ``eos_id`` (2) by default (:data:`PAD_ID`,
:data:`SOS_ID`, :data:`EOS_ID`, spelled :data:`SPECIALS`); characters take the other ids (3 ..
``vocab_size - 1`` by default). Targets are character ids only, without ``<s>``/``</s>``; the model never
predicts pad or ``<s>`` (their log-probability is ``-inf`` in the loss and in decoding). ``cfg.vocab``
may spell every id (``list(SPECIALS) + characters``), so that a saved model carries its symbols.

Every method takes ``x [B, T, input_dim]`` with ``lengths [B]``; padding never changes the outputs of an
utterance (packed sequences in the listener, masked attention in the speller). The model is a
:class:`~voxa.nn.saving.SavedModule`: ``model.save(path)`` and ``voxa.load(path)`` round-trip it.

Example:
    >>> import torch
    >>> cfg = LASConfig(input_dim=8, vocab_size=6, listener_hidden=8, listener_layers=2,
    ...                 speller_hidden=16, embed_dim=8, attention_dim=8)
    >>> model = ListenAttendSpell(cfg).eval()
    >>> x, n = torch.randn(2, 21, 8), torch.tensor([21, 13])
    >>> h, n2 = model.listen(x, n)
    >>> tuple(h.shape), n2.tolist()
    ((2, 6, 16), [6, 4])
    >>> y, m = torch.tensor([[3, 4, 5], [5, 3, 0]]), torch.tensor([3, 2])
    >>> model(x, n, y, m).shape
    torch.Size([2, 4, 6])
    >>> model.loss(x, n, y, m).dim()
    0
    >>> hyps = model.beam_search(x[0], beam=3, max_len=4)
    >>> len(hyps), all(len(ids) <= 4 for ids, _ in hyps)
    (3, True)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from voxa.errors import ConfigError, VoxaError
from voxa.nn.layers import LSTMEncoder, lengths_to_mask
from voxa.nn.saving import SavedModule
from voxa.nn.sequence import InputNormalisation
from voxa.utils.serialization import register

__all__ = ["ATTENTIONS", "EOS_ID", "PAD_ID", "SOS_ID", "SPECIALS", "LASConfig", "LMScorer",
           "ListenAttendSpell", "char_lm_scorer", "las_loss", "plot_attention"]

#: default special token ids; characters take the ids from 3 on
PAD_ID, SOS_ID, EOS_ID = 0, 1, 2
#: the symbols of ids 0, 1, 2 under the default ids: the first entries of a ``vocab``
SPECIALS = ("<pad>", "<s>", "</s>")
#: speller attention kinds
ATTENTIONS = ("location", "content")
#: a character LM for shallow fusion: the ids emitted so far (no ``<s>``) -> natural-log probabilities
#: ``[vocab_size]`` of the next token, ``</s>`` at ``eos_id`` included
LMScorer = Callable[[tuple[int, ...]], torch.Tensor]


@dataclass
class LASConfig:
    """Listen, Attend and Spell sizes and training settings.

    Attributes:
        input_dim: Feature dims of the input frames.
        vocab_size: Output tokens: characters plus the three special ids.
        listener_hidden: BLSTM units per direction in every listener layer (the listener's output has
            twice as many dims).
        listener_layers: Pyramidal BLSTM layers after the first plain one; each halves the frame rate.
        speller_hidden: Units of each speller LSTM layer.
        speller_layers: Stacked speller LSTM layers.
        embed_dim: Character embedding dims.
        attention: ``location`` (location-aware: adds a convolution over the previous step's attention
            weights) or ``content``.
        attention_dim: Hidden dims of the additive attention.
        location_channels: Filters of the location convolution.
        location_kernel: Width of the location convolution in listener frames (odd).
        dropout: Dropout between listener layers and on the speller's inputs and output layer.
        label_smoothing: Probability mass spread evenly over the predictable tokens in the loss.
        sampling_prob: Scheduled sampling: the chance, per utterance and step in training, of feeding
            a token sampled from the model's previous output distribution instead of the ground truth.
        pad_id: Padding id of the targets (never predicted).
        sos_id: Start-of-sequence id, the speller's first input (never predicted).
        eos_id: End-of-sequence id, the speller's last output.
        vocab: The symbol of each id (``vocab_size`` of them; ``list(SPECIALS) + characters`` under the
            default ids), or empty.

    The published LAS sizes are ``listener_hidden=256``, ``listener_layers=3``, ``speller_hidden=512``,
    ``speller_layers=2``.
    """

    input_dim: int = 40
    vocab_size: int = 32
    listener_hidden: int = 128
    listener_layers: int = 3
    speller_hidden: int = 256
    speller_layers: int = 1
    embed_dim: int = 64
    attention: str = "location"
    attention_dim: int = 128
    location_channels: int = 10
    location_kernel: int = 15
    dropout: float = 0.0
    label_smoothing: float = 0.1
    sampling_prob: float = 0.0
    pad_id: int = PAD_ID
    sos_id: int = SOS_ID
    eos_id: int = EOS_ID
    vocab: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for k in ("input_dim", "listener_hidden", "speller_hidden", "speller_layers", "embed_dim",
                  "attention_dim", "location_channels"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k} must be at least 1, got {getattr(self, k)}")
        if self.listener_layers < 0:
            raise ConfigError(f"listener_layers must be 0 or more, got {self.listener_layers}")
        if self.attention not in ATTENTIONS:
            raise ConfigError(f"unknown attention {self.attention!r}; choose one of: {', '.join(ATTENTIONS)}")
        if self.location_kernel < 1 or self.location_kernel % 2 == 0:
            raise ConfigError(f"location_kernel must be a positive odd number of frames, "
                              f"got {self.location_kernel}")
        for k in ("dropout", "label_smoothing"):
            if not 0.0 <= getattr(self, k) < 1.0:
                raise ConfigError(f"{k} must be in [0, 1), got {getattr(self, k)}")
        if not 0.0 <= self.sampling_prob <= 1.0:
            raise ConfigError(f"sampling_prob must be in [0, 1], got {self.sampling_prob}")
        if self.vocab_size < 4:
            raise ConfigError(f"vocab_size must be at least 4 (pad, sos, eos and a character), "
                              f"got {self.vocab_size}")
        for k in ("pad_id", "sos_id", "eos_id"):
            if not 0 <= getattr(self, k) < self.vocab_size:
                raise ConfigError(f"{k} must be in [0, vocab_size={self.vocab_size}), got {getattr(self, k)}")
        if len({self.pad_id, self.sos_id, self.eos_id}) != 3:
            raise ConfigError(f"pad_id, sos_id and eos_id must differ, got {self.pad_id}, {self.sos_id}, "
                              f"{self.eos_id}")
        if self.vocab and len(self.vocab) != self.vocab_size:
            raise ConfigError(f"vocab has {len(self.vocab)} symbols but vocab_size is {self.vocab_size}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ConfigError("vocab has repeated symbols")


class _Attention(nn.Module):
    """Additive attention ``w^T tanh(W s + V h + U (F * a_prev) + b)`` (the ``U F`` term only when
    location-aware) over masked listener frames."""

    def __init__(self, enc_dim: int, query_dim: int, att_dim: int, location: bool, channels: int,
                 kernel: int) -> None:
        super().__init__()
        self.enc = nn.Linear(enc_dim, att_dim)
        self.query = nn.Linear(query_dim, att_dim, bias=False)
        self.conv = nn.Conv1d(1, channels, kernel, padding=kernel // 2, bias=False) if location else None
        self.loc = nn.Linear(channels, att_dim, bias=False) if location else None
        self.score = nn.Linear(att_dim, 1, bias=False)

    def forward(self, query: torch.Tensor, enc: torch.Tensor, proj: torch.Tensor, mask: torch.Tensor,
                prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``query [N, Q]``, ``enc [N, T, E]``, ``proj = self.enc(enc)``, ``mask [N, T]``, ``prev [N, T]``
        -> ``(context [N, E], weights [N, T])``."""
        e = proj + self.query(query)[:, None, :]
        if self.conv is not None:
            # prev is 0 on padded frames, so the convolution sees what it sees on the utterance alone
            e = e + self.loc(self.conv(prev[:, None, :]).transpose(1, 2))
        e = self.score(torch.tanh(e)).squeeze(-1).masked_fill(~mask, float("-inf"))
        w = torch.softmax(e, dim=-1)
        return torch.bmm(w[:, None, :], enc).squeeze(1), w


def _decoder_io(targets: Any, target_lengths: Any, c: LASConfig, device: torch.device | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Speller inputs ``<s> y`` and outputs ``y </s>``, both ``[B, U + 1]`` and pad beyond."""
    t = torch.as_tensor(targets, dtype=torch.long, device=device)
    if t.dim() != 2:
        raise VoxaError(f"targets must be [B, U] token ids, got shape {tuple(t.shape)}")
    tl = torch.as_tensor(target_lengths, dtype=torch.long, device=device).reshape(-1)
    B, U = t.shape
    if tl.numel() != B or bool((tl < 0).any()) or bool((tl > U).any()):
        raise VoxaError(f"target_lengths must give 0..{U} tokens for each of the {B} utterances, "
                        f"got {tl.tolist()}")
    valid = lengths_to_mask(tl, U)
    v = t[valid]
    if bool(((v < 0) | (v >= c.vocab_size) | (v == c.pad_id) | (v == c.sos_id) | (v == c.eos_id)).any()):
        raise VoxaError(f"targets must be character ids in [0, {c.vocab_size}) other than pad/sos/eos "
                        f"({c.pad_id}, {c.sos_id}, {c.eos_id})")
    t = t.masked_fill(~valid, c.pad_id)
    gold = F.pad(t, (0, 1), value=c.pad_id).scatter(1, tl[:, None], c.eos_id)
    inp = torch.cat([t.new_full((B, 1), c.sos_id), t], dim=1)
    return inp, gold


# the speller's recurrent state: (h [L, N, S], c [L, N, S], context [N, 2H], attention [N, T'])
_State = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
# what every speller step attends to: (listener frames [N, T', 2H], their projection [N, T', A], mask)
_Memory = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@register("voxa.nn.ListenAttendSpell")
class ListenAttendSpell(InputNormalisation, SavedModule):
    """Listen, Attend and Spell: character sequences from frames, by attention.

    Decoding (:meth:`greedy`, :meth:`beam_search`) runs in whatever mode the model is in: call
    ``.eval()`` first so that dropout is off.

    Args:
        cfg: Sizes and settings (defaults: :class:`LASConfig`).

    Shapes:
        ``x [B, T, input_dim]``, ``lengths [B]``, ``targets [B, U]`` (character ids, anything beyond
        ``target_lengths [B]`` ignored) -> logits ``[B, U + 1, vocab_size]`` (the last valid step of
        each row predicts ``</s>``).

    Example:
        >>> m = ListenAttendSpell(LASConfig(input_dim=4, vocab_size=5, listener_hidden=4, listener_layers=1,
        ...                                 speller_hidden=8, embed_dim=4, attention_dim=4)).eval()
        >>> x, n = torch.randn(3, 9, 4), torch.tensor([9, 6, 1])
        >>> [len(ids) <= 3 for ids in m.greedy(x, n, max_len=3)]
        [True, True, True]
        >>> w = m.attention(x[1, :6], [3, 4])
        >>> tuple(w.shape), torch.allclose(w.sum(1), torch.ones(3))
        ((3, 3), True)
    """

    config_class = LASConfig

    def __init__(self, cfg: LASConfig | None = None) -> None:
        super().__init__()
        self.cfg = c = cfg or LASConfig()
        H, S = c.listener_hidden, c.speller_hidden
        self._init_normalisation(c.input_dim)
        self.first = LSTMEncoder(c.input_dim, H, layers=1, bidirectional=True)
        self.pyramid = nn.ModuleList(LSTMEncoder(4 * H, H, layers=1, bidirectional=True)
                                     for _ in range(c.listener_layers))
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.cells = nn.ModuleList(nn.LSTMCell(c.embed_dim + 2 * H if i == 0 else S, S)
                                   for i in range(c.speller_layers))
        self.attend = _Attention(2 * H, S, c.attention_dim, c.attention == "location", c.location_channels,
                                 c.location_kernel)
        self.mlp = nn.Linear(S + 2 * H, S)
        self.out = nn.Linear(S, c.vocab_size)
        self.drop = nn.Dropout(c.dropout)
        banned = torch.zeros(c.vocab_size, dtype=torch.bool)
        banned[[c.pad_id, c.sos_id]] = True
        self.register_buffer("banned", banned, persistent=False)

    # ------------------------------------------------------------------------------------- listener
    @property
    def time_stride(self) -> int:
        """Input frames per listener frame (``2 ** listener_layers``)."""
        return 2 ** self.cfg.listener_layers

    def listen(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The listener's frames.

        An odd frame count entering a pyramidal layer gets a zero frame appended (the value a padded
        frame has in a batch), so no frame is dropped and ``lengths' = ceil(lengths / 2**listener_layers)``.

        Args:
            x: Frames ``[B, T, input_dim]``.
            lengths: Valid frames per utterance ``[B]`` (each at least 1).

        Returns:
            ``(h [B, ceil(T / 2**L), 2 * listener_hidden], lengths' [B])``; padded frames of ``h`` are 0.

        Raises:
            VoxaError: For an input that is not ``[B, T, input_dim]`` or a length outside ``1..T``.
        """
        if x.dim() != 3 or x.shape[2] != self.cfg.input_dim:
            raise VoxaError(f"LAS input must be [B, T, {self.cfg.input_dim}], got {tuple(x.shape)}")
        n = torch.as_tensor(lengths, dtype=torch.long, device=x.device).reshape(-1)
        if n.numel() != x.shape[0] or bool((n < 1).any()) or bool((n > x.shape[1]).any()):
            raise VoxaError(f"lengths must give 1..{x.shape[1]} frames for each of the {x.shape[0]} "
                            f"utterances, got {n.tolist()}")
        h, n = self.first(self.normalise(x), n)
        for layer in self.pyramid:
            h = self.drop(h)
            if h.shape[1] % 2:
                h = F.pad(h, (0, 0, 0, 1))
            b, t, d = h.shape
            h, n = layer(h.reshape(b, t // 2, 2 * d), torch.div(n + 1, 2, rounding_mode="floor"))
        return h, n

    # ------------------------------------------------------------------------------------- speller
    def _start(self, enc: torch.Tensor, n: torch.Tensor) -> tuple[_Memory, _State]:
        mask = lengths_to_mask(n, enc.shape[1])
        N, L, S = enc.shape[0], self.cfg.speller_layers, self.cfg.speller_hidden
        # uniform previous weights, so the location term of the first step carries where the frames are
        att = mask.to(enc.dtype) / n[:, None].to(enc.dtype)
        zeros = enc.new_zeros(L, N, S)
        return (enc, self.attend.enc(enc), mask), (zeros, zeros, enc.new_zeros(N, enc.shape[2]), att)

    def _step(self, y: torch.Tensor, state: _State, memory: _Memory) -> tuple[torch.Tensor, _State]:
        """One speller step for ``N`` rows at once: previous tokens ``y [N]`` -> logits ``[N, V]``."""
        h, c, ctx, att = state
        enc, proj, mask = memory
        inp = torch.cat([self.drop(self.embed(y)), ctx], dim=-1)
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            hi, ci = cell(inp, (h[i], c[i]))
            hs.append(hi)
            cs.append(ci)
            inp = self.drop(hi)
        s = hs[-1]
        ctx, att = self.attend(s, enc, proj, mask, att)
        logits = self.out(self.drop(torch.tanh(self.mlp(torch.cat([s, ctx], dim=-1)))))
        return logits, (torch.stack(hs), torch.stack(cs), ctx, att)

    def _log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits.masked_fill(self.banned, float("-inf")), dim=-1)

    def _teacher_forced(self, x: torch.Tensor, lengths: torch.Tensor, targets: Any, target_lengths: Any
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inp, gold = _decoder_io(targets, target_lengths, self.cfg, x.device)
        memory, state = self._start(*self.listen(x, lengths))
        sample = self.training and self.cfg.sampling_prob > 0
        logits, atts = [], []
        for i in range(inp.shape[1]):
            y = inp[:, i]
            if sample and i > 0:
                with torch.no_grad():
                    probs = torch.softmax(self._log_probs(logits[-1].detach().float()), dim=-1)
                    own = torch.multinomial(probs, 1).squeeze(1)
                    pick = torch.rand(y.shape[0], device=y.device) < self.cfg.sampling_prob
                # only rows still inside their target take the model's own token; the rest stay pad
                y = torch.where(pick & (y != self.cfg.pad_id), own, y)
            out, state = self._step(y, state, memory)
            logits.append(out)
            atts.append(state[3])
        return torch.stack(logits, 1), torch.stack(atts, 1), gold

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                target_lengths: torch.Tensor) -> torch.Tensor:
        """Logits under teacher forcing (with scheduled sampling in training when ``sampling_prob > 0``).

        Args:
            x: Frames ``[B, T, input_dim]``.
            lengths: Valid frames ``[B]``.
            targets: Character ids ``[B, U]`` without ``<s>``/``</s>``.
            target_lengths: Valid ids per row ``[B]``.

        Returns:
            ``[B, U + 1, vocab_size]`` raw logits: step ``u`` predicts ``targets[:, u]``, step
            ``target_lengths`` predicts ``</s>``; steps beyond are meaningless. The pad and ``<s>``
            logits are not masked here (:meth:`loss` and decoding mask them).
        """
        return self._teacher_forced(x, lengths, targets, target_lengths)[0]

    def loss(self, x: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor) -> torch.Tensor:
        """Label-smoothed cross-entropy, the mean over the batch's output tokens (characters and each
        row's ``</s>``; pad excluded).

        The smoothing mass goes evenly to the predictable tokens (all but pad and ``<s>``).

        Example:
            >>> m = ListenAttendSpell(LASConfig(input_dim=3, vocab_size=5, listener_hidden=2,
            ...                                 listener_layers=1, speller_hidden=4, embed_dim=2,
            ...                                 attention="content", attention_dim=2))
            >>> m.loss(torch.randn(1, 6, 3), torch.tensor([6]), torch.tensor([[3, 4]]), torch.tensor([2])) > 0
            tensor(True)
        """
        return las_loss(self(x, lengths, targets, target_lengths), targets, target_lengths, self.cfg)

    # ------------------------------------------------------------------------------------- decoding
    def _max_len(self, n: torch.Tensor, max_len: int | None) -> torch.Tensor:
        if max_len is not None:
            if max_len < 0:
                raise ConfigError(f"max_len must be 0 or more, got {max_len}")
            return torch.full_like(n, int(max_len))
        # two characters per listener frame (and some) is beyond any speaking rate the strides give
        return 2 * n + 10

    @torch.no_grad()
    def greedy(self, x: torch.Tensor, lengths: torch.Tensor, max_len: int | None = None) -> list[list[int]]:
        """The most likely next token at each step, for a batch at once.

        Args:
            x: Frames ``[B, T, input_dim]``.
            lengths: Valid frames ``[B]``.
            max_len: Most characters per output; by default ``2 * T'_b + 10`` (``T'_b`` the utterance's
                listener frames). An output that reaches it ends there.

        Returns:
            One list of character ids per utterance, without ``</s>``.
        """
        c = self.cfg
        enc, n = self.listen(x, lengths)
        memory, state = self._start(enc, n)
        limit = self._max_len(n, max_len)
        y = n.new_full((x.shape[0],), c.sos_id)
        done = torch.zeros_like(n, dtype=torch.bool)
        steps = []
        for i in range(int(limit.max()) + 1):
            logits, state = self._step(y, state, memory)
            y = logits.masked_fill(self.banned, float("-inf")).argmax(-1)
            y = torch.where(limit <= i, c.eos_id, y)
            steps.append(y)
            done |= y == c.eos_id
            if bool(done.all()):
                break
        out = []
        for row in torch.stack(steps, 1).tolist():
            out.append(row[:row.index(c.eos_id)] if c.eos_id in row else row)
        return out

    @torch.no_grad()
    def beam_search(self, x: torch.Tensor, lengths: int | torch.Tensor | None = None, beam: int = 5,
                    max_len: int | None = None, length_norm: bool | float = True,
                    lm: LMScorer | None = None, lm_weight: float = 0.0) -> list[tuple[list[int], float]]:
        """The n-best outputs of one utterance by beam search, optionally fused with a character LM.

        Each step scores every live hypothesis in one batched speller step; a hypothesis's score is the
        sum of ``log P_las(token) + lm_weight * log P_lm(token)`` over its tokens and its ``</s>``.
        Of all extensions of the live hypotheses the best ``beam`` are kept; those ending in ``</s>``
        finish, the others live on (so ``beam=1`` is :meth:`greedy`). The search stops when none is
        live, at ``max_len`` (every live hypothesis is then ended), or once ``beam`` have finished and
        the best live one, ended at no further cost, would not rank among them. That bound is exact
        without length normalisation (log-probabilities only lower a score); with it, it is the usual
        heuristic.

        Args:
            x: Frames of one utterance ``[T, input_dim]``.
            lengths: Its valid frames (default ``T``).
            beam: Hypotheses kept per step (and returned at most).
            max_len: Most characters per output (default ``2 * T' + 10``).
            length_norm: Rank finished hypotheses by ``score / (len + 1) ** alpha`` (``len`` characters,
                plus ``</s>``): ``True`` is ``alpha = 1``, a float is ``alpha``, ``False`` (or 0) ranks by
                the plain score.
            lm: Shallow fusion with a character LM: ``lm(prefix_ids) -> [vocab_size]`` natural-log
                probabilities of the next token (``</s>`` at ``eos_id``) after the character ids
                ``prefix_ids`` (a tuple, without ``<s>``); see :func:`char_lm_scorer`. It is called once
                per distinct live prefix and step.
            lm_weight: The LM's weight (0: the LM is not consulted).

        Returns:
            ``(character ids without </s>, score)`` pairs, best first; the score is length-normalised
            when ``length_norm`` is on.

        Raises:
            ConfigError: For ``beam < 1``, a negative ``lm_weight``, ``max_len`` or ``length_norm``.
            VoxaError: For an input that is not ``[T, input_dim]`` or an LM output that is not
                ``[vocab_size]``.
        """
        c = self.cfg
        if beam < 1:
            raise ConfigError(f"beam must be at least 1, got {beam}")
        if lm_weight < 0:
            raise ConfigError(f"lm_weight must be 0 or more, got {lm_weight}")
        alpha = 1.0 if length_norm is True else float(length_norm or 0.0)
        if alpha < 0:
            raise ConfigError(f"length_norm must be True, False or an exponent >= 0, got {length_norm}")
        if x.dim() != 2:
            raise VoxaError(f"beam_search takes one utterance [T, {c.input_dim}], got {tuple(x.shape)}")
        t = x.shape[0] if lengths is None else int(torch.as_tensor(lengths).reshape(-1)[0])
        enc, n = self.listen(x[None, :t], torch.tensor([t], device=x.device))
        memory, state = self._start(enc, n)
        limit = int(self._max_len(n, max_len)[0])
        use_lm = lm is not None and lm_weight != 0
        lm_cache: dict[tuple[int, ...], torch.Tensor] = {}
        V = c.vocab_size

        def final(h: tuple[tuple[int, ...], float]) -> float:
            return h[1] / (len(h[0]) + 1) ** alpha if alpha else h[1]

        prefixes: list[tuple[int, ...]] = [()]
        scores = enc.new_zeros(1)
        y = n.new_full((1,), c.sos_id)
        finished: list[tuple[tuple[int, ...], float]] = []
        for step in range(limit + 1):
            N = len(prefixes)
            mem = tuple(m.expand(N, *m.shape[1:]) for m in memory)
            logits, state = self._step(y, state, mem)
            lp = self._log_probs(logits)
            if use_lm:
                lp = lp + lm_weight * self._lm_scores(lm, prefixes, lm_cache, lp)
            total = scores[:, None] + lp
            if step == limit:
                finished += [(p, float(s)) for p, s in zip(prefixes, total[:, c.eos_id].tolist())]
                break
            top, idx = total.reshape(-1).topk(min(beam, total.numel()))
            parent, tok = torch.div(idx, V, rounding_mode="floor"), idx % V
            keep = []
            for r, (s, p, k) in enumerate(zip(top.tolist(), parent.tolist(), tok.tolist())):
                if s == float("-inf"):
                    break
                if k == c.eos_id:
                    finished.append((prefixes[p], s))
                else:
                    keep.append(r)
            if not keep:
                break
            sel = torch.tensor(keep, device=idx.device)
            par = parent[sel]
            prefixes = [prefixes[p] + (k,) for p, k in zip(par.tolist(), tok[sel].tolist())]
            scores, y = top[sel], tok[sel]
            if len(finished) >= beam:
                best = max(final(h) for h in zip(prefixes, scores.tolist()))
                if best <= sorted((final(h) for h in finished), reverse=True)[beam - 1]:
                    break
            h, cc, ctx, att = state
            state = (h[:, par], cc[:, par], ctx[par], att[par])

        ranked = sorted(((list(p), final((p, s))) for p, s in finished), key=lambda h: -h[1])
        return ranked[:beam]

    def _lm_scores(self, lm: LMScorer, prefixes: list[tuple[int, ...]],
                   cache: dict[tuple[int, ...], torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        rows = []
        for p in prefixes:
            if p not in cache:
                v = torch.as_tensor(lm(p), dtype=like.dtype, device=like.device).reshape(-1)
                if v.numel() != self.cfg.vocab_size:
                    raise VoxaError(f"the LM gave {v.numel()} log-probabilities; the model has "
                                    f"{self.cfg.vocab_size} tokens")
                cache[p] = v
            rows.append(cache[p])
        return torch.stack(rows)

    @torch.no_grad()
    def attention(self, x: torch.Tensor, targets: Any, lengths: Any = None, target_lengths: Any = None
                  ) -> torch.Tensor:
        """The speller's attention weights under teacher forcing, in eval mode (for plotting).

        Args:
            x: One utterance ``[T, input_dim]``, or a batch ``[B, T, input_dim]`` (then ``lengths`` and
                ``target_lengths`` are needed).
            targets: Its character ids ``[U]`` (a batch: ``[B, U]``).
            lengths: A batch's valid frames ``[B]``.
            target_lengths: A batch's valid ids ``[B]``.

        Returns:
            ``[U + 1, T']`` (a batch: ``[B, U + 1, T']``): row ``u`` is where the step that emits output
            token ``u`` (the last, ``</s>``) looks. Rows sum to 1 over an utterance's listener frames;
            padded frames and steps are 0.
        """
        single = x.dim() == 2
        if single:
            targets = torch.as_tensor(targets, dtype=torch.long).reshape(1, -1)
            x, lengths, target_lengths = x[None], [x.shape[0]], [targets.shape[1]]
        if lengths is None or target_lengths is None:
            raise VoxaError("a batch's attention needs lengths and target_lengths")
        lengths = torch.as_tensor(lengths, device=x.device)
        was_training = self.training
        self.eval()
        try:
            _, att, gold = self._teacher_forced(x, lengths, targets, target_lengths)
        finally:
            self.train(was_training)
        att = att * (gold != self.cfg.pad_id)[..., None].to(att.dtype)
        return att[0] if single else att


def las_loss(logits: torch.Tensor, targets: Any, target_lengths: Any, cfg: LASConfig) -> torch.Tensor:
    """Label-smoothed cross-entropy of :meth:`ListenAttendSpell.forward`'s logits, the mean over the
    batch's output tokens (characters and each row's ``</s>``; pad excluded).

    The smoothing mass (``cfg.label_smoothing``) goes evenly to the predictable tokens (all but pad and
    ``<s>``, whose log-probability is ``-inf``).

    Args:
        logits: ``[B, U + 1, vocab_size]``.
        targets: The character ids ``[B, U]`` the logits were computed for (anything past
            ``target_lengths`` is ignored).
        target_lengths: ``[B]``.
        cfg: The model's config (its special ids and smoothing).

    Example:
        >>> cfg = LASConfig(vocab_size=5, label_smoothing=0.0)
        >>> logits = torch.zeros(1, 3, 5)  # uniform over the 3 predictable tokens
        >>> round(float(las_loss(logits, torch.tensor([[3, 4]]), torch.tensor([2]), cfg)), 4)
        1.0986
    """
    _, gold = _decoder_io(targets, target_lengths, cfg, logits.device)
    if tuple(logits.shape[:2]) != tuple(gold.shape) or logits.shape[2] != cfg.vocab_size:
        raise VoxaError(f"logits of shape {tuple(logits.shape)} for targets of shape {tuple(gold.shape)} "
                        f"(plus </s>) and {cfg.vocab_size} tokens")
    banned = torch.zeros(cfg.vocab_size, dtype=torch.bool, device=logits.device)
    banned[[cfg.pad_id, cfg.sos_id]] = True
    logp = torch.log_softmax(logits.float().masked_fill(banned, float("-inf")), dim=-1)
    keep = gold != cfg.pad_id
    # gather at a predictable id on padded steps, so no -inf enters the sum (or its gradient)
    nll = -logp.gather(-1, gold.masked_fill(~keep, cfg.eos_id)[..., None]).squeeze(-1)
    eps = cfg.label_smoothing
    per_token = (1 - eps) * nll - eps * logp[..., ~banned].mean(-1) if eps > 0 else nll
    return torch.where(keep, per_token, 0.0).sum() / keep.sum().clamp(min=1)


# ----------------------------------------------------------------------------------------- LM and plots
def char_lm_scorer(ngram_lm: Any, id_to_token: Sequence[str | None] | Mapping[int, str] | None = None,
                   eos_id: int | LASConfig | ListenAttendSpell = EOS_ID,
                   special_ids: Sequence[int] | None = None, oov_logprob: float = -30.0) -> LMScorer:
    """A :data:`LMScorer` for :meth:`ListenAttendSpell.beam_search` from a character n-gram model.

    The model is a :class:`voxa.asr.lm.NgramLM` fitted on character sequences (``NgramLM.fit([list(w)
    for w in texts], order=..)``, a space being a token like any other). Its log10 probabilities become
    natural logs; a character the LM does not know gets ``oov_logprob`` rather than ``-inf``, so that
    fusion penalises it instead of forbidding it. Results are cached by the ``order - 1`` last tokens.

    Args:
        ngram_lm: The character LM (anything with ``logprob(token, context)`` in log10 and ``order``).
        id_to_token: The model's tokens by id (a list, or ``{id: token}``); by default the ``vocab`` of
            the model given as ``eos_id``.
        eos_id: The id scored as the LM's ``</s>``, or the LAS model (or its config) whose ``eos_id``,
            pad/sos ids and ``vocab`` to use.
        special_ids: Ids never predicted, scored ``-inf`` (default: pad and ``<s>``).
        oov_logprob: Natural-log probability of a character outside the LM's vocabulary.

    Returns:
        ``lm(prefix_ids) -> [V]`` natural-log probabilities of the next token.

    Raises:
        VoxaError: Without tokens (no ``id_to_token`` and a model without ``vocab``).

    Example:
        >>> from voxa.asr.lm import NgramLM
        >>> lm = NgramLM.fit([list("abc"), list("abd")], order=3, smoothing="witten-bell")
        >>> score = char_lm_scorer(lm, ["<pad>", "<s>", "</s>", "a", "b", "c", "d"], eos_id=2)
        >>> p = score((3, 4)).exp()  # after "a b"
        >>> round(float(p.sum()), 4), bool(p[5] > p[3])
        (1.0, True)
    """
    from voxa.asr.lm import BOS, EOS

    cfg = eos_id.cfg if isinstance(eos_id, ListenAttendSpell) else eos_id
    if isinstance(cfg, LASConfig):
        eos_id = cfg.eos_id
        if special_ids is None:
            special_ids = (cfg.pad_id, cfg.sos_id)
        if id_to_token is None:
            id_to_token = cfg.vocab
    if not id_to_token:
        raise VoxaError("char_lm_scorer needs the model's tokens (id_to_token, or a model with a vocab)")
    if special_ids is None:
        special_ids = (PAD_ID, SOS_ID)
    if isinstance(id_to_token, Mapping):
        size = max(id_to_token) + 1
        tokens: list[str | None] = [id_to_token.get(i) for i in range(size)]
    else:
        tokens = list(id_to_token)
    skip = set(special_ids)
    ctx_len = max(int(getattr(ngram_lm, "order", 1)) - 1, 0)
    ln10 = math.log(10.0)
    cache: dict[tuple[str, ...], torch.Tensor] = {}

    def score(prefix_ids: tuple[int, ...]) -> torch.Tensor:
        hist = (BOS,) + tuple(str(tokens[i]) for i in prefix_ids)
        key = hist[len(hist) - ctx_len:] if ctx_len else ()
        if key not in cache:
            out = torch.full((len(tokens),), float("-inf"))
            for i, tok in enumerate(tokens):
                if i == eos_id:
                    lp = ngram_lm.logprob(EOS, key)
                elif i in skip or tok is None:
                    continue
                else:
                    lp = ngram_lm.logprob(tok, key)
                out[i] = lp * ln10 if lp != float("-inf") else oov_logprob
            cache[key] = out
        return cache[key]

    return score


def plot_attention(weights: Any, path: str | os.PathLike, tokens: Sequence[str] | None = None,
                   title: str | None = None) -> Path:
    """The speller's attention matrix as a PNG: output tokens (rows) over listener frames (columns).

    (:func:`voxa.nn.figures.plot_attention` is the pooling attention of a classifier; this one draws
    :meth:`ListenAttendSpell.attention`.)

    Args:
        weights: ``[U + 1, T']`` attention weights (a tensor or array).
        path: The PNG to write (atomically).
        tokens: Labels of the rows: ``U + 1`` of them, or ``U`` (then ``</s>`` labels the last).
        title: The figure's title.

    Returns:
        ``path``.

    Raises:
        VoxaError: For weights that are not a matrix or a wrong number of token labels.

    Example:
        >>> import tempfile
        >>> p = plot_attention(torch.eye(3), os.path.join(tempfile.mkdtemp(), "att.png"), tokens="ab")
        >>> p.name
        'att.png'
    """
    from voxa.plots import plt, save_figure

    w = weights.detach().float().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights)
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2 or 0 in w.shape:
        raise VoxaError(f"attention weights must be a [tokens, frames] matrix, got shape {w.shape}")
    rows, frames = w.shape
    labels = None
    if tokens is not None:
        labels = [str(t) for t in tokens]
        if len(labels) == rows - 1:
            labels.append("</s>")
        if len(labels) != rows:
            raise VoxaError(f"{len(labels)} token labels for {rows} rows of attention weights")
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(w, origin="upper", aspect="auto", cmap="viridis", interpolation="nearest",
                   vmin=0.0, vmax=max(float(w.max()), 1e-12))
    if labels is not None:
        ax.set_yticks(range(rows))
        ax.set_yticklabels(labels, fontsize=8 if rows <= 40 else 5)
    ax.set_xlabel("listener frame")
    ax.set_ylabel("output token")
    fig.colorbar(im, ax=ax, label="attention weight")
    ax.set_title(title or f"attention: {rows} output steps over {frames} listener frames")
    return save_figure(fig, path)
