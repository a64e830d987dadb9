"""The three basic HMM problems, batched over padded utterances: likelihood, posteriors, best path.

Every function takes emission log-likelihoods ``log_b [B, T, S]`` (from an emission model here, or a
neural network's log-likelihoods), the valid lengths ``[B]`` and the model's log initial ``[S]``,
transition ``[S, S]`` and optional final ``[S]`` probabilities. Frames at or past an utterance's
length are ignored: a padded batch gives exactly what each utterance gives alone.

The recursions step over time and are vectorised over utterances and states. The forward and
backward passes run as one ``[B, S] x [S, S]`` matrix product per frame on per-frame normalised
probabilities (emissions shifted by their per-frame maximum, float64), which is the log-space
recursion with its logsumexp over predecessors factored as ``m + log(sum_i exp(x_i - m) A_ij)``.
That factoring loses a path only when it is more than ~700 nats below the best one at the same
frame; such losses are detected exactly afterwards (a state left impossible that a possible state
leads to) and those utterances are recomputed with the plain logsumexp recursion, so the results
always equal the log-space ones. Viterbi is max-plus in float64; over a mostly impossible
transition matrix (a phone loop) it maxes over each state's finite predecessors only, plus one dense
block for the states with many (bitwise the dense result). With few states on CPU the frame loops
run in numpy, whose per-call overhead is a third of torch's.

Example:
    >>> import math, torch
    >>> from voxa.hmm.topology import Topology
    >>> topo = Topology.left_to_right(3)
    >>> log_b = torch.randn(2, 10, 3).log_softmax(-1)
    >>> lengths = torch.tensor([10, 7])
    >>> loglik, gamma, xi = posteriors(log_b, lengths, topo.log_pi, topo.log_A)
    >>> gamma.shape, xi.shape
    (torch.Size([2, 10, 3]), torch.Size([2, 3, 3]))
    >>> score, paths = viterbi(log_b, lengths, topo.log_pi, topo.log_A)
    >>> paths[1, 7:].tolist()
    [-1, -1, -1]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from voxa.errors import VoxaError

_F64 = torch.float64
_NUMPY_MAX_STATES = 8  # recursions over at most this many states run their frame loop in numpy
_SPARSE_VITERBI = True  # max over the finite predecessors only when most transitions are impossible
_BACKPOINTER_ELEMENTS = 1 << 22  # a Viterbi batch this small backtraces from all backpointers at once


# ------------------------------------------------------------------------------------------- checks
def _prepare(log_b, lengths, log_pi, log_A, log_final, dtype=_F64, fill=True):
    """Validate shapes; returns ``lb`` (padded frames zeroed; ``fill=False``: ``log_b`` as given),
    lengths, mask and the parameters."""
    if not isinstance(log_b, torch.Tensor) or log_b.dim() != 3:
        shape = tuple(log_b.shape) if isinstance(log_b, torch.Tensor) else type(log_b).__name__
        raise VoxaError(f"log_b: expected a [B, T, S] tensor, got {shape}")
    if not log_b.is_floating_point():
        raise VoxaError(f"log_b: expected floating point log-likelihoods, got {log_b.dtype}")
    B, T, S = log_b.shape
    lengths = torch.as_tensor(lengths, device=log_b.device)
    if lengths.dim() != 1 or lengths.shape[0] != B or lengths.is_floating_point():
        raise VoxaError(f"lengths: expected [{B}] integers (one per utterance), got "
                        f"{tuple(lengths.shape)} {lengths.dtype}")
    lengths = lengths.long()
    if B and (int(lengths.min()) < 1 or int(lengths.max()) > T):
        raise VoxaError(f"lengths: each must be in 1..{T} (the padded length), got "
                        f"{int(lengths.min())}..{int(lengths.max())}")
    dev = log_b.device
    lpi = torch.as_tensor(log_pi, device=dev).to(dtype)
    lA = torch.as_tensor(log_A, device=dev).to(dtype)
    if tuple(lpi.shape) != (S,) or tuple(lA.shape) != (S, S):
        raise VoxaError(f"log_pi/log_A: expected [{S}] and [{S}, {S}] for {S} states, got "
                        f"{tuple(lpi.shape)} and {tuple(lA.shape)}")
    lfin = None
    if log_final is not None:
        lfin = torch.as_tensor(log_final, device=dev).to(dtype)
        if tuple(lfin.shape) != (S,):
            raise VoxaError(f"log_final: expected [{S}], got {tuple(lfin.shape)}")
    mask = torch.arange(T, device=dev)[None, :] < lengths[:, None]
    if not fill:
        return log_b, lengths, mask, lpi, lA, lfin
    # Padded frames may hold anything (NaN included); zeros keep every later product finite.
    if B * T and int(lengths.min()) == T:  # nothing padded
        lb = log_b.to(dtype)
    else:
        lb = torch.where(mask[..., None], log_b.to(dtype), torch.zeros((), dtype=dtype, device=dev))
    return lb, lengths, mask, lpi, lA, lfin


def _last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x[b, lengths[b] - 1]`` of ``x [B, T, S]``."""
    return x.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, x.shape[2]))[:, 0]


def _lse(x: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.logsumexp(x, dim)


# ------------------------------------------------------------------------------------- fast passes
def _shifted(lb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``E = exp(lb - mx)`` and the per-frame maximum ``mx [B, T]`` (0 where every state is -inf)."""
    B, T, S = lb.shape
    mx = lb.amax(-1)
    mx = torch.where(torch.isfinite(mx), mx, torch.zeros_like(mx))
    # stored time-major ([T, B, S] memory, a [B, T, S] view): the frame loops read it frame by frame
    Et = torch.sub(lb.transpose(0, 1), mx.T[..., None], out=torch.empty(T, B, S, dtype=lb.dtype,
                                                                         device=lb.device))
    return Et.exp_().transpose(0, 1), mx


def _small(x: torch.Tensor) -> bool:
    """Run a recursion's per-frame loop in numpy: CPU tensors with few states, where each frame's
    work is a handful of tiny operations and numpy's per-call overhead is a third of torch's."""
    return x.device.type == "cpu" and x.shape[-1] <= _NUMPY_MAX_STATES


def _np_forward(a, A, Et, ah, c, ones):
    for t in range(Et.shape[0]):
        if t:
            a = np.multiply(np.dot(ah[t - 1], A, out=a), Et[t], out=a)
        np.dot(a, ones, out=c[t])
        np.divide(a, c[t], out=ah[t])


def _np_backward(Et, AT, binit, done, bh, d, ones, wait_from):
    v = np.empty_like(bh[0])
    for t in range(Et.shape[0] - 2, -1, -1):
        np.dot(np.multiply(Et[t + 1], bh[t + 1], out=v), AT, out=bh[t])
        np.dot(bh[t], ones, out=d[t])
        np.divide(bh[t], d[t], out=bh[t])
        if t >= wait_from:
            np.copyto(bh[t], binit, where=done[t])


def _fast_forward(E, mx, lpi, lA):
    """Normalised alphas ``[B, T, S]`` and ``log alpha`` (float64)."""
    B, T, S = E.shape
    A = lA.exp()
    if _small(E):
        Et, An = np.ascontiguousarray(E.transpose(0, 1).numpy()), A.numpy()  # [T, B, S]
        ah = np.empty((T, B, S))
        c = np.empty((T, B, 1))
        ones = np.ones((S, 1))
        a = lpi.exp().numpy() * Et[0]
        with np.errstate(all="ignore"):  # as torch: a frame that lost every path gives NaN, detected later
            _np_forward(a, An, Et, ah, c, ones)
        ahat = torch.from_numpy(ah).transpose(0, 1)
        return ahat, (torch.from_numpy(c[:, :, 0]).T.log() + mx).cumsum(1)
    Et = E.transpose(0, 1).contiguous()  # [T, B, S]: each frame's rows contiguous for the product
    ahat = torch.empty(T, B, S, dtype=_F64, device=E.device)
    logc = []
    a = lpi.exp() * Et[0]
    for t in range(T):
        if t:
            a = torch.mm(a, A).mul_(Et[t])
        c = a.sum(1, keepdim=True)
        a = torch.div(a, c, out=ahat[t])
        logc.append(c)
    ahat = ahat.transpose(0, 1)
    return ahat, (torch.cat(logc, 1).log() + mx).cumsum(1)  # log of what each frame's alphas were divided by


def _fast_backward(E, mx, lengths, lA, lfin):
    B, T, S = E.shape
    AT = lA.exp().T.contiguous()
    f = lfin.exp() if lfin is not None else torch.ones(S, dtype=_F64, device=E.device)
    binit = (f / f.sum()).expand(B, S)
    done = (torch.arange(T, device=E.device)[:, None] >= (lengths - 1)[None, :])[..., None]  # [T, B, 1]
    wait_from = int(lengths.min()) - 1  # frames at or past this hold a finished utterance somewhere
    if _small(E):
        Et = np.ascontiguousarray(E.transpose(0, 1).numpy())
        ATn, bi, dn = AT.numpy(), binit.numpy(), done.numpy()
        bh = np.empty((T, B, S))
        d = np.ones((T, B, 1))
        ones = np.ones((S, 1))
        bh[T - 1] = bi
        with np.errstate(all="ignore"):
            _np_backward(Et, ATn, bi, dn, bh, d, ones, wait_from)
        bhat = torch.from_numpy(bh).transpose(0, 1)
        logd = torch.from_numpy(d[:, :, 0]).T
    else:
        Et = E.transpose(0, 1).contiguous()
        bhat = torch.empty(T, B, S, dtype=_F64, device=E.device)
        bhat[T - 1] = binit
        logd = [torch.ones(B, 1, dtype=_F64, device=E.device)] * T
        b = binit
        for t in range(T - 2, -1, -1):
            v = torch.mm(Et[t + 1] * b, AT)
            d = v.sum(1, keepdim=True)
            if t >= wait_from:
                b = torch.where(done[t], binit, v.div_(d))
                bhat[t] = b
            else:
                b = torch.div(v, d, out=bhat[t])
            logd[t] = d
        bhat = bhat.transpose(0, 1)
        logd = torch.cat(logd, 1)
    inc = logd.log()
    inc[:, :-1] += mx[:, 1:]
    inc = torch.where(done[:, :, 0].T, torch.zeros_like(inc), inc)
    scale = inc.flip(1).cumsum(1).flip(1) + f.sum().log()
    return bhat, scale


def _lost_forward(fin, lb, mask, lpi, lA):
    """Utterances ``[B]`` whose fast forward lost a path (an impossible state a possible one reaches).

    ``fin [B, T, S]``: where the fast alphas are positive (NaN, a frame that lost every path, is
    not). Reachability is computed only for the frames that hold an impossible state with a finite
    emission (typically just a few), not for the whole batch.
    """
    lost = torch.zeros(fin.shape[0], dtype=torch.bool, device=fin.device)
    b, t = torch.nonzero(~fin.all(2), as_tuple=True)  # the frames holding an impossible state
    if not b.numel():
        return lost
    cand = (~fin[b, t]) & (lb[b, t] > -math.inf) & mask[b, t, None]
    prev = fin[b, (t - 1).clamp_min(0)].to(_F64)
    reach = (prev @ (lA > -math.inf).to(_F64)) > 0
    reach = torch.where((t == 0)[:, None], (lpi > -math.inf)[None], reach)
    return lost.index_fill_(0, b[(cand & reach).any(1)], True)


def _lost_backward(fin, lb, mask, lengths, lA, lfin):
    """As :func:`_lost_forward`, ``fin``: where the fast betas are positive."""
    T = lb.shape[1]
    lost = torch.zeros(fin.shape[0], dtype=torch.bool, device=fin.device)
    b, t = torch.nonzero(~fin.all(2), as_tuple=True)
    if not b.numel():
        return lost
    cand = (~fin[b, t]) & mask[b, t, None]
    tn = (t + 1).clamp_max(T - 1)
    nxt = (fin[b, tn] & (lb[b, tn] > -math.inf)).to(_F64)
    reach = (nxt @ (lA > -math.inf).to(_F64).T) > 0
    end = (lfin > -math.inf) if lfin is not None else torch.ones_like(fin[0, 0])
    reach = torch.where((t == lengths[b] - 1)[:, None], end.expand_as(reach), reach)
    return lost.index_fill_(0, b[(cand & reach).any(1)], True)


# ------------------------------------------------------------------------------------ exact passes
def _log_forward(lb, lpi, lA):
    B, T, S = lb.shape
    la = torch.empty_like(lb)
    a = lpi + lb[:, 0]
    la[:, 0] = a
    for t in range(1, T):
        a = _lse(a[:, :, None] + lA, 1) + lb[:, t]
        la[:, t] = a
    return la


def _log_backward(lb, lengths, lA, lfin):
    B, T, S = lb.shape
    init = (lfin if lfin is not None else torch.zeros(S, dtype=lb.dtype, device=lb.device)).expand(B, S)
    lbeta = torch.empty_like(lb)
    lbeta[:, T - 1] = init
    b = init
    for t in range(T - 2, -1, -1):
        v = _lse(lA[None] + (lb[:, t + 1] + b)[:, None, :], 2)
        b = torch.where((t >= lengths - 1)[:, None], init, v)
        lbeta[:, t] = b
    return lbeta


# ------------------------------------------------------------------------------------------ public
def _forward(lb, lengths, mask, lpi, lA, lfin, need_la=True):
    """``(loglik, log alpha or None, lost, fast-pass tensors, log alpha of the lost utterances)``;
    ``need_la=False``: no ``[B, T, S]`` log alphas (the lost utterances' still come back)."""
    E, mx = _shifted(lb)
    ahat, scale = _fast_forward(E, mx, lpi, lA)
    fin = ahat > 0
    end = _last(ahat, lengths).log() + _last(scale[..., None], lengths)
    loglik = _lse(end + (lfin if lfin is not None else 0.0), 1)
    lost = _lost_forward(fin, lb, mask, lpi, lA) | torch.isnan(loglik)
    la = ahat.log() + scale[..., None] if need_la else None
    la_lost = None
    if bool(lost.any()):
        la_lost = _log_forward(lb[lost], lpi, lA)
        end = _last(la_lost, lengths[lost]) + (lfin if lfin is not None else 0.0)
        loglik = loglik.clone()
        loglik[lost] = _lse(end, 1)
        if la is not None:
            la[lost] = la_lost
    return loglik, la, lost, (E, mx, ahat, scale), la_lost


def _loglik(log_b, lengths, log_pi, log_A, log_final=None) -> torch.Tensor:
    """The log-likelihoods ``[B]`` of :func:`forward` without its ``[B, T, S]`` log alphas."""
    lb, lengths, mask, lpi, lA, lfin = _prepare(log_b, lengths, log_pi, log_A, log_final)
    return _forward(lb, lengths, mask, lpi, lA, lfin, need_la=False)[0]


def forward(log_b: torch.Tensor, lengths: torch.Tensor, log_pi: torch.Tensor, log_A: torch.Tensor,
            log_final: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward algorithm: the log-likelihood of each utterance and the forward log probabilities.

    Args:
        log_b: ``[B, T, S]`` emission log-likelihoods (float32 or float64); frames at or past an
            utterance's length are ignored.
        lengths: ``[B]`` integer valid lengths, each in ``1..T``.
        log_pi: ``[S]`` log initial probabilities.
        log_A: ``[S, S]`` log transition probabilities (row: from, column: to).
        log_final: Optional ``[S]`` log final weights (``None``: an utterance may end anywhere).

    Returns:
        ``(loglik [B], log_alpha [B, T, S])``, float64; ``log_alpha`` is ``-inf`` on padded frames.

    Raises:
        VoxaError: On shapes that do not fit together or lengths outside ``1..T``.
    """
    lb, lengths, mask, lpi, lA, lfin = _prepare(log_b, lengths, log_pi, log_A, log_final)
    loglik, la, _, _, _ = _forward(lb, lengths, mask, lpi, lA, lfin)
    return loglik, la.masked_fill(~mask[..., None], -math.inf)


def _backward(lb, lengths, mask, lA, lfin, E=None, mx=None, need_lbeta=True):
    if E is None:
        E, mx = _shifted(lb)
    bhat, scale = _fast_backward(E, mx, lengths, lA, lfin)
    lost = _lost_backward(bhat > 0, lb, mask, lengths, lA, lfin)
    lbeta = bhat.log() + scale[..., None] if need_lbeta else None
    lbeta_lost = None
    if bool(lost.any()):
        lbeta_lost = _log_backward(lb[lost], lengths[lost], lA, lfin)
        if lbeta is not None:
            lbeta[lost] = lbeta_lost
    return lbeta, lost, (bhat, scale), lbeta_lost


def backward(log_b: torch.Tensor, lengths: torch.Tensor, log_pi: torch.Tensor, log_A: torch.Tensor,
             log_final: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward algorithm. Arguments as :func:`forward`.

    Returns:
        ``(loglik [B], log_beta [B, T, S])``, float64, where ``log_beta[b, t, i]`` is the log
        probability of frames ``t+1 .. len-1`` (and the end) given state ``i`` at ``t``; ``-inf`` on
        padded frames. ``loglik`` is computed from the betas (equal to :func:`forward`'s).
    """
    lb, lengths, mask, lpi, lA, lfin = _prepare(log_b, lengths, log_pi, log_A, log_final)
    lbeta, _, _, _ = _backward(lb, lengths, mask, lA, lfin)
    loglik = _lse(lpi + lb[:, 0] + lbeta[:, 0], 1)
    return loglik, lbeta.masked_fill(~mask[..., None], -math.inf)


def posteriors(log_b: torch.Tensor, lengths: torch.Tensor, log_pi: torch.Tensor, log_A: torch.Tensor,
               log_final: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward-backward: state posteriors and expected transition counts (the E-step of Baum-Welch).

    Arguments as :func:`forward`.

    Returns:
        ``(loglik [B], gamma [B, T, S], xi_sum [B, S, S])``, float64: ``gamma[b, t, i]`` is
        ``P(state i at t | utterance b)`` (0 on padded frames) and ``xi_sum[b, i, j]`` the expected
        number of ``i -> j`` transitions in utterance ``b``, summed over its frames.
    """
    lb, lengths, mask, lpi, lA, lfin = _prepare(log_b, lengths, log_pi, log_A, log_final)
    loglik, _, lost_f, (E, mx, ahat, ascale), la_lost = _forward(lb, lengths, mask, lpi, lA, lfin, False)
    _, lost_b, (bhat, bscale), lbeta_lost = _backward(lb, lengths, mask, lA, lfin, E, mx, False)
    lost = lost_f | lost_b
    B, T, S = lb.shape
    # gamma = exp(log alpha + log beta - loglik) = ahat * bhat * exp(scales - loglik): one product
    # and a per-frame factor. Where that factor is huge (the normalised vectors nearly disjoint, so
    # their product could lose digits) or a path was lost, the log-space formula instead.
    lw = ascale + bscale - loglik[:, None]
    valid = mask & torch.isfinite(loglik)[:, None]
    risky = bool((valid & ~(lw < 600.0)).any())
    if risky or bool(lost.any()):
        la = ahat.log() + ascale[..., None]
        lbeta = bhat.log() + bscale[..., None]
        if la_lost is not None:
            la[lost_f] = la_lost
        if lbeta_lost is not None:
            lbeta[lost_b] = lbeta_lost
        gamma = (la + lbeta - loglik[:, None, None]).exp()
    else:
        gamma = torch.mul(ahat, bhat, out=torch.empty(B, T, S, dtype=_F64, device=lb.device))
        gamma.mul_(torch.where(valid, lw, torch.zeros_like(lw)).exp()[..., None])
    gamma = torch.where(valid[..., None], gamma, torch.zeros((), dtype=_F64, device=gamma.device))
    # xi_t(i, j) = alpha_{t-1}(i) A_ij b_t(j) beta_t(j) / P: the normalised vectors times one scalar
    # per frame, so the sum over frames is one batched [S, T] x [T, S] product.
    logw = ascale[:, :-1] + mx[:, 1:] + bscale[:, 1:] - loglik[:, None]
    w = torch.where(mask[:, 1:], logw.exp(), torch.zeros_like(logw))
    w = torch.nan_to_num(w, nan=0.0, posinf=0.0)
    xi = torch.bmm(ahat[:, :-1].transpose(1, 2), E[:, 1:] * bhat[:, 1:] * w[..., None]) * lA.exp()
    if bool(lost.any()):
        for b in torch.nonzero(lost).flatten().tolist():
            n = int(lengths[b])
            if n < 2 or not math.isfinite(float(loglik[b])):
                xi[b] = 0.0
                continue
            x = la[b, :n - 1, :, None] + lA + (lb[b, 1:n] + lbeta[b, 1:n])[:, None, :]
            xi[b] = (_lse(x, 0) - loglik[b]).exp()
    return loglik, gamma, xi


def viterbi(log_b: torch.Tensor, lengths: torch.Tensor, log_pi: torch.Tensor, log_A: torch.Tensor,
            log_final: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Viterbi algorithm: the best state path of each utterance and its log score.

    Arguments as :func:`forward`. The max-plus recursion runs in float64 (on CPU its reduction is
    as fast as float32's, and long utterances keep their precision).

    Returns:
        ``(score [B] float64, paths [B, T] int64)``; ``paths`` is ``-1`` at and past each length.
        Ties go to the lowest state index.
    """
    # Padded frames are never read: each utterance's scores stay frozen past its length.
    lb, lengths, mask, lpi, lA, lfin = _prepare(log_b, lengths, log_pi, log_A, log_final, fill=False)
    B, T, S = lb.shape
    wait_from = int(lengths.min())
    n = lengths.cpu().numpy()
    lAn = lA.cpu().numpy()
    if _small(lb):
        D = np.empty((T, S, B))
        lbt = np.ascontiguousarray(lb.permute(1, 2, 0).to(_F64).numpy())
        with np.errstate(invalid="ignore"):
            _np_viterbi(D, lbt, lpi.numpy(), lAn, (~mask.T).numpy()[:, None, :], wait_from)
        delta = torch.from_numpy(D[T - 1]).T
    else:
        deltas = _torch_viterbi(lb, mask, lpi, lA, wait_from)
        delta = deltas[T - 1].T
        D = deltas.cpu().numpy()
    # D: [T, S, B] best scores
    end = delta + (lfin if lfin is not None else 0.0)
    score, last = end.max(1)
    if B * T * S * S <= _BACKPOINTER_ELEMENTS:
        path = _backtrace_vectorised(np.ascontiguousarray(D.transpose(0, 2, 1)), lAn, n,
                                     last.cpu().numpy())
    else:
        path = _backtrace(D, lAn, n, last.cpu().numpy())
    return score.to(lb.device), torch.from_numpy(path).to(lb.device)


def _np_viterbi(D, lbt, lpi, lA, frozen, wait_from):
    """Max-plus recursion over few states in numpy, state-major (``D``, ``lbt``: ``[T, S, B]``): each
    frame gathers the ``S * S`` candidates as rows, then ``S - 1`` row-block maxima."""
    T, S, B = D.shape
    np.add(lpi[:, None], lbt[0], out=D[0])
    rep = np.repeat(np.arange(S), S)  # candidate i * S + j is delta_i + log_A[i, j]
    w = lA.reshape(-1, 1)
    cand = np.empty((S * S, B))
    blocks = [cand[i * S:(i + 1) * S] for i in range(S)]
    for t in range(1, T):
        prev, new = D[t - 1], D[t]
        np.take(prev, rep, axis=0, out=cand)
        cand += w
        if S > 1:
            np.maximum(blocks[0], blocks[1], out=new)
            for i in range(2, S):
                np.maximum(new, blocks[i], out=new)
        else:
            new[...] = cand
        new += lbt[t]
        if t >= wait_from:
            np.copyto(new, prev, where=frozen[t])


def _sparse_plan(lA: torch.Tensor, max_sparse: int = 4):
    """How to run the max over predecessors of a mostly impossible transition matrix, or ``None``.

    Every destination state gathers its own score and those of its few (``<= max_sparse``) other
    finite predecessors, ``[S, K]`` indices and weights (``-inf`` padding); the states with more
    (a phone loop's entries) take a dense max over the sources that reach any of them (its exits),
    one ``[|J|, |I|]`` block. Both see exactly the candidates ``delta_i + log_A[i, j]`` the dense max
    sees, less the impossible ones, so the maxima are bitwise the same.
    """
    S = lA.shape[0]
    if S < 16:
        return None
    fin = lA > -math.inf
    off = fin & ~torch.eye(S, dtype=torch.bool, device=lA.device)
    indeg = off.sum(0)
    dense = indeg > max_sparse
    J = torch.nonzero(dense).flatten()
    I = torch.nonzero(off[:, dense].any(1)).flatten()
    K = 1 + int(indeg[~dense].max()) if bool((~dense).any()) else 1
    if S * K + I.numel() * J.numel() > S * S // 4:
        return None
    lAn, denn = lA.cpu().numpy(), dense.cpu().numpy()
    idx = np.repeat(np.arange(S)[:, None], K, 1)
    w = np.full((S, K), -math.inf)
    w[:, 0] = np.diagonal(lAn)
    cols = np.nonzero(~denn)[0]
    sub = off.cpu().numpy().T[cols]  # [sparse destinations, sources]
    r, c = np.nonzero(sub)  # grouped by destination, sources ascending
    counts = sub.sum(1)
    pos = np.arange(r.size) - np.repeat(np.cumsum(counts) - counts, counts)
    idx[cols[r], 1 + pos] = c
    w[cols[r], 1 + pos] = lAn[c, cols[r]]
    idx = torch.from_numpy(idx).to(lA.device)
    w = torch.from_numpy(w).to(lA.device, lA.dtype)
    block = lA[I][:, J].T.contiguous()  # [|J|, |I|]
    return idx.flatten(), w, I, J, block


def _torch_viterbi(lb, mask, lpi, lA, wait_from):
    """Best scores ``[T, S, B]``; the recursion runs state-major (``[S, B]`` per frame), so gathering
    states copies whole rows and each max reduces over rows of contiguous utterances."""
    B, T, S = lb.shape
    dev = lb.device
    lbt = torch.empty(T, S, B, dtype=_F64, device=dev).copy_(lb.permute(1, 2, 0))
    deltas = torch.empty(T, S, B, dtype=_F64, device=dev)
    dv, lv = deltas.unbind(0), lbt.unbind(0)  # per-frame views made once
    active = mask.T[:, None, :]  # [T, 1, B]
    torch.add(lpi[:, None], lv[0], out=dv[0])
    plan = _sparse_plan(lA) if _SPARSE_VITERBI else None
    if plan is None:
        lA3 = lA[:, :, None]
        buf = torch.empty(S, S, B, dtype=_F64, device=dev)
        for t in range(1, T):
            # Only the best scores here; the argmax is taken for the one chosen state per frame
            # during the backtrace, which is S times less work than keeping every backpointer.
            torch.amax(torch.add(dv[t - 1][:, None, :], lA3, out=buf), 0, out=dv[t]).add_(lv[t])
            if t >= wait_from:
                torch.where(active[t], dv[t], dv[t - 1], out=dv[t])
        return deltas
    idx, w, I, J, block = plan
    K, nI, nJ = w.shape[1], I.numel(), J.numel()
    tied = nJ and bool((block == block[:1]).all())  # every column of the block the same
    if tied:  # the block's sources are gathered with the sparse candidates, one max over them
        idx = torch.cat([idx, I])
        w = torch.cat([w.flatten(), block[0]])
    else:
        w = w.flatten()
    w = w[:, None]
    gbuf = torch.empty(idx.numel(), B, dtype=_F64, device=dev)
    gk = [gbuf[k:S * K:K] for k in range(K)]  # candidate k of every state, [S, B] each
    gt = gbuf[S * K:]
    jbuf = torch.empty(nJ, B, dtype=_F64, device=dev)
    bbuf = torch.empty(nJ, nI, B, dtype=_F64, device=dev)
    block = block[:, :, None]
    step = int(J[1] - J[0]) if nJ > 1 else 1
    as_slice = nJ > 0 and step > 0 and bool((J == J[0] + step * torch.arange(nJ, device=dev)).all())
    if as_slice:
        jv = deltas[:, int(J[0])::step][:, :nJ].unbind(0)
    for t in range(1, T):
        prev, new = dv[t - 1], dv[t]
        torch.index_select(prev, 0, idx, out=gbuf).add_(w)
        if K > 1:
            torch.maximum(gk[0], gk[1], out=new)
            for k in range(2, K):
                torch.maximum(new, gk[k], out=new)
        else:
            new.copy_(gk[0])
        if nJ:
            if tied:
                blk = gt.amax(0)
            else:
                blk = torch.add(prev.index_select(0, I)[None], block, out=bbuf).amax(1)
            if as_slice:
                torch.maximum(jv[t], blk, out=jv[t])
            else:
                new.index_copy_(0, J, torch.maximum(new.index_select(0, J, out=jbuf), blk, out=jbuf))
        new.add_(lv[t])
        if t >= wait_from:
            torch.where(active[t], new, prev, out=new)
    return deltas


def _backtrace(D, lA, n, cur):
    """Best paths ``[B, T]`` (-1 past each length) from the state-major best scores ``D [T, S, B]``."""
    T, S, B = D.shape
    lAT = np.ascontiguousarray(lA.T)
    path = np.full((T, B), -1, dtype=np.int64)
    ragged = bool((n != T).any())
    for t in range(T - 1, -1, -1):
        if ragged:
            live = t <= n - 1
            path[t, live] = cur[live]
        else:
            path[t] = cur
        if t:
            prev = (D[t - 1] + lAT[cur].T).argmax(0)
            cur = np.where(live, prev, cur) if ragged else prev
    return np.ascontiguousarray(path.T)


def _best_predecessors(D, lA):
    """``argmax_i D[..., i] + lA[i, j]`` (lowest ``i`` on ties) for every ``j``: ``[..., S]``."""
    S = lA.shape[0]
    if S > _NUMPY_MAX_STATES:
        return (D[..., :, None] + lA).argmax(-2)
    best = D[..., 0:1] + lA[0]
    idx = np.zeros(best.shape, dtype=np.int64)
    for i in range(1, S):
        cand = D[..., i:i + 1] + lA[i]
        better = cand > best
        idx[better] = i
        np.maximum(best, cand, out=best)
    return idx


def _backtrace_vectorised(D, lA, n, cur):
    """:func:`_backtrace` with every frame's backpointers from one ``[T-1, B, S, S]`` argmax, so the
    per-frame work is one lookup; frames past a length point each state to itself."""
    T, B, S = D.shape
    base = np.arange(B) * S
    path = np.empty((T, B), dtype=np.int64)
    path[T - 1] = cur + base  # flat indices b * S + state while chasing the pointers
    if T > 1:
        bp = _best_predecessors(D[:-1], lA)  # [T-1, B, S]: the best predecessor of each state
        bp[np.arange(1, T)[:, None] > (n - 1)[None, :]] = np.arange(S)
        bp = (bp + base[:, None]).reshape(T - 1, B * S)
        for t in range(T - 1, 0, -1):
            path[t - 1] = bp[t - 1][path[t]]
    path -= base
    path = np.ascontiguousarray(path.T)
    path[np.arange(T)[None, :] > (n - 1)[:, None]] = -1
    return path
