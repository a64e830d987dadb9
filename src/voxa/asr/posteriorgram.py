"""Phone posteriorgrams from a monophone acoustic model: the phonetic features of language ID.

Each frame's state likelihoods under a GMM-HMM acoustic model (:class:`voxa.asr.acoustic.AcousticModel`)
become a posterior over phones (flat state prior; the states of a phone are summed). Language ID on
these (a phone recogniser of one language applied to every language, as PPRLM does) is the lecture's
best input for neural LID: it describes *what was said* in one fixed phone inventory, which varies
less with the voice than the cepstra do.

Example:
    >>> import torch
    >>> from voxa.asr.acoustic import AcousticModel
    >>> am = AcousticModel.init_flat(["SIL", "a", "b"], 2, torch.zeros(2), torch.ones(2), silence_states=1)
    >>> phone_posteriorgram(am, torch.randn(5, 2)).exp().sum(1).allclose(torch.ones(5))
    True
"""

from __future__ import annotations

import torch

from voxa.errors import VoxaError


def phone_posteriorgram(am, feats: torch.Tensor, floor: float = 1e-4) -> torch.Tensor:
    """``[T, n_phones]`` log phone posteriors of frames ``feats [T, D]``.

    Args:
        am: a monophone :class:`voxa.asr.acoustic.AcousticModel`.
        feats: frames in the model's feature space (its own front end).
        floor: posteriors are floored at this before the log, so that a phone the frame rules out
            does not give the classifier an unbounded input.
    """
    if am.tree is not None:
        raise VoxaError("phone posteriorgrams need a monophone model (the mono system of voxa asr train); "
                        "a context-dependent model's pdfs have no single phone")
    ll = am.log_likelihoods(feats)                                           # [T, pdfs]
    post = torch.softmax(ll, dim=1)
    phones = am.pdf_phone().to(post.device)
    out = post.new_zeros(post.shape[0], len(am.phones)).index_add_(1, phones, post)
    return out.clamp_min(floor).log()


__all__ = ["phone_posteriorgram"]
