"""The few plotting helpers every task shares. Figures are written atomically as PNG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from voxa.utils.atomic import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save and close a figure, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def plot_spectrogram_and_mfcc(waveform: torch.Tensor, sample_rate: int, path: str | os.PathLike,
                              title: str = "") -> Path:
    """Waveform, log power spectrogram and 39-dim MFCCs of one utterance, stacked, as a PNG."""
    from voxa.features import cmvn, mfcc, spectrogram

    x = waveform.reshape(-1).float()
    spec = spectrogram(x, sample_rate).T.numpy()
    # per-coefficient normalisation, else C0 (log energy) swamps the colour scale
    ceps = cmvn(mfcc(x, sample_rate, deltas=2), norm_vars=True).T.numpy()
    hop = 0.01
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True,
                             gridspec_kw={"height_ratios": [1, 2, 2]})
    t = np.arange(x.numel()) / sample_rate
    axes[0].plot(t, x.numpy(), lw=0.5)
    axes[0].set_ylabel("amplitude")
    axes[0].set_title(title or "utterance")
    extent = [0, spec.shape[1] * hop, 0, sample_rate / 2000]
    im = axes[1].imshow(spec, origin="lower", aspect="auto", extent=extent, cmap="magma")
    axes[1].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes[1], label="log power")
    im = axes[2].imshow(ceps, origin="lower", aspect="auto", cmap="coolwarm",
                        extent=[0, ceps.shape[1] * hop, 0, ceps.shape[0]])
    axes[2].set_ylabel("MFCC 13 + Δ + ΔΔ (CMVN)")
    axes[2].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[2], label="normalised value")
    axes[0].set_xlim(0, x.numel() / sample_rate)
    return save_figure(fig, path)
