"""Neural classifiers on CPU: training-step time and embedding throughput, voxa against plain references.

Two architectures, each as ``voxa.nn.models`` builds it and as a straightforward reference written out
below with plain ``torch.nn`` layers (no masking of padded frames, nothing else):

* the x-vector (voxa's default sizes: TDNN 256 wide, 768 statistics dims, 128-dim embedding); the
  reference is an ``nn.Conv1d`` stack (ReLU, BatchNorm1d) with mean/std pooling,
* the thin ResNet-34 (``build_model("resnet-sap", 40, 100, backbone="resnet34", width=32)``); the
  reference is a torchvision-style BasicBlock ResNet-34 with the same strides, self-attentive pooling
  and embedding.

Both sides have the same parameter count (checked) and see the same random 40-dim features, a batch
of 32 x 200 frames (all full length, so voxa's masks change nothing but cost their share). Reported:
the median training step (forward, cross-entropy, backward, Adam) and the embedding extraction
(``embed`` in eval mode without gradients) as utterances per second and real-time factor at 100
frames/s (seconds of compute per second of audio). The last line is the geometric mean over the four
timings of reference time / voxa time (``> 1``: voxa is faster).

SpeechBrain's and WeSpeaker's own x-vector and ResNet-34 are not the references because neither installs
here without replacing the project's torch with an incompatible version; the written-out references
are the same architectures without the toolkits' data plumbing.

    OMP_NUM_THREADS=1 python benchmarks/nn.py [--repeats 2] [--batch 32] [--frames 200]

Example:
    >>> ref = RefXVector(40, 10, 16, 24, 8)
    >>> ref.embed(torch.randn(2, 50, 40)).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

FRAME_RATE = 100.0


# ---------------------------------------------------------------------------------------- references
class RefXVector(nn.Module):
    """The x-vector as a plain Conv1d stack: TDNN layers (conv, ReLU, BN), mean+std pooling over all
    frames, embedding affine, ReLU+BN, second affine, ReLU+BN, classifier (Kaldi's layout)."""

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 256, stats_dim: int = 768,
                 emb_dim: int = 128, contexts=(5, 3, 3, 1, 1), dilations=(1, 2, 3, 1, 1)) -> None:
        super().__init__()
        dims = [input_dim] + [hidden] * (len(contexts) - 1) + [stats_dim]
        layers: list[nn.Module] = []
        for i, (k, d) in enumerate(zip(contexts, dilations)):
            layers += [nn.Conv1d(dims[i], dims[i + 1], k, dilation=d, padding=d * (k - 1) // 2), nn.ReLU(),
                       nn.BatchNorm1d(dims[i + 1])]
        self.frames = nn.Sequential(*layers)
        self.embedding = nn.Linear(2 * stats_dim, emb_dim)
        self.post = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(emb_dim), nn.Linear(emb_dim, emb_dim), nn.ReLU(),
                                  nn.BatchNorm1d(emb_dim))
        self.out = nn.Linear(emb_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frames(x.transpose(1, 2))
        return self.embedding(torch.cat([h.mean(-1), h.std(-1, unbiased=False)], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.post(self.embed(x)))


class _Block(nn.Module):
    """torchvision's BasicBlock (3x3, BN, ReLU, 3x3, BN, + shortcut, ReLU)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class RefResNet34(nn.Module):
    """A thin ResNet-34 over the spectrogram image ``[B, 1, F, T]``: a 3x3 stem, stages of (3, 4, 6, 3)
    BasicBlocks of ``width * 2**i`` channels, stride 2 (frequency and time) from the second stage on;
    then self-attentive pooling over the time axis, embedding affine, ReLU+BN, classifier."""

    def __init__(self, input_dim: int, num_classes: int, width: int = 32, att_hidden: int = 128,
                 emb_dim: int = 128, layers=(3, 4, 6, 3)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks, cin, f = [], width, input_dim
        for i, n in enumerate(layers):
            stride = 1 if i == 0 else 2
            for j in range(n):
                blocks.append(_Block(cin, width * 2 ** i, stride if j == 0 else 1))
                cin = width * 2 ** i
            f = -(-f // stride)
        self.blocks = nn.Sequential(*blocks)
        d = cin * f
        self.score = nn.Sequential(nn.Linear(d, att_hidden), nn.Tanh(), nn.Linear(att_hidden, 1))
        self.embedding = nn.Linear(d, emb_dim)
        self.post = nn.Sequential(nn.ReLU(), nn.BatchNorm1d(emb_dim))
        self.out = nn.Linear(emb_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x.transpose(1, 2)[:, None]))
        b, c, f, t = y.shape
        h = y.reshape(b, c * f, t).transpose(1, 2)
        w = torch.softmax(self.score(h).squeeze(-1), dim=1)
        return self.embedding((w[:, :, None] * h).sum(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.post(self.embed(x)))


# ---------------------------------------------------------------------------------------- timing
def _steps(model: nn.Module, call, embed, x: torch.Tensor, y: torch.Tensor) -> tuple:
    """The two timed operations of one model: a training step and an embedding extraction."""
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def train_step() -> None:
        model.train()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(call(x), y).backward()
        opt.step()

    def extract() -> None:
        model.eval()
        with torch.inference_mode():
            embed(x)

    return train_step, extract


def _timed(fns: list, repeats: int) -> list[float]:
    """Median seconds of each of ``fns``, run alternately (after one warm-up each: allocator, oneDNN
    primitive caches), so a change in what else the machine runs hits both sides alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return [statistics.median(ts) for ts in times]


def main(argv: list[str] | None = None) -> float:
    from voxa.nn.models import build_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="timed repeats after one warm-up")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--classes", type=int, default=100)
    args = ap.parse_args(argv)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.frames, 40, generator=g)
    y = torch.randint(0, args.classes, (args.batch,), generator=g)
    n = torch.full((args.batch,), args.frames, dtype=torch.long)
    torch.manual_seed(0)
    pairs = {
        "x-vector": (build_model("xvector", 40, args.classes),
                     RefXVector(40, args.classes)),
        "ResNet-34 (w32, SAP)": (build_model("resnet-sap", 40, args.classes, backbone="resnet34", width=32),
                                 RefResNet34(40, args.classes, width=32)),
    }
    print(f"torch {torch.__version__}, torch.get_num_threads() = {torch.get_num_threads()}, "
          f"batch {args.batch} x {args.frames} frames x 40 dims, {args.repeats} repeats (median)")
    head = (f"{'model':<22}{'impl':<11}{'params':>11}{'train step s':>14}{'embed s':>10}{'utt/s':>9}"
            f"{'RTF':>9}")
    print(head)
    print("-" * len(head))
    ratios = []
    for name, (voxa_model, ref) in pairs.items():
        pv, pr = (sum(p.numel() for p in m.parameters()) for m in (voxa_model, ref))
        if pv != pr:
            raise SystemExit(f"{name}: voxa has {pv} parameters, the reference {pr}: not the same network")
        tv, ev = _steps(voxa_model, lambda t, m=voxa_model: m(t, n), lambda t, m=voxa_model: m.embed(t, n),
                        x, y)
        tr, er = _steps(ref, ref, ref.embed, x, y)
        train_v, train_r = _timed([tv, tr], args.repeats)
        emb_v, emb_r = _timed([ev, er], args.repeats)
        audio_s = args.batch * args.frames / FRAME_RATE
        for impl, p, t_train, t_emb in (("voxa", pv, train_v, emb_v), ("reference", pr, train_r, emb_r)):
            print(f"{name:<22}{impl:<11}{p:>11,}{t_train:>14.3f}{t_emb:>10.3f}{args.batch / t_emb:>9.1f}"
                  f"{t_emb / audio_s:>9.4f}")
        ratios += [train_r / train_v, emb_r / emb_v]
    speedup = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"speedup vs reference: {speedup:.2f}")
    return speedup


if __name__ == "__main__":
    main()
