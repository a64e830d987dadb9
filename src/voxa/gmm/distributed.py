"""All-reduce and broadcast helpers so EM scales out over ``torch.distributed`` ranks.

Each rank passes its own shard of the frames to :meth:`GaussianMixture.fit`; the sufficient
statistics (and frame counts, log-likelihood sums, global moments) are summed across ranks after
every pass, and rank 0's initial model is broadcast, so every rank ends with the same model as one
process on all the data. Outside an initialised process group (or with one rank) every helper is a
no-op.

Example:
    >>> import torch
    >>> t = torch.ones(3, dtype=torch.float64)
    >>> all_reduce_sum_(t)  # single process: unchanged
    tensor([1., 1., 1.], dtype=torch.float64)
"""

from __future__ import annotations

import torch


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def _comm_device(t: torch.Tensor) -> torch.device:
    """Device the backend can reduce on: NCCL needs CUDA tensors, gloo takes CPU (and CUDA)."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl" and t.device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return t.device


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks, in place; returns ``t``."""
    if not is_distributed():
        return t
    import torch.distributed as dist

    dev = _comm_device(t)
    if dev == t.device:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    else:
        buf = t.to(dev)
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        t.copy_(buf)
    return t


def broadcast_(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Overwrite ``t`` on every rank with rank ``src``'s values, in place; returns ``t``."""
    if not is_distributed():
        return t
    import torch.distributed as dist

    dev = _comm_device(t)
    if dev == t.device:
        dist.broadcast(t, src=src)
    else:
        buf = t.to(dev)
        dist.broadcast(buf, src=src)
        t.copy_(buf)
    return t


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1).

    NCCL when CUDA is present, else gloo. Returns whether this process is now one of several ranks.
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        import atexit

        atexit.register(_shutdown)
    return is_distributed()


def _shutdown() -> None:
    """Leave the process group together: a rank whose gloo threads are torn down by interpreter exit
    while its peer still talks to it aborts (SIGABRT, 'terminate called without an active exception')."""
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.barrier()
        finally:
            dist.destroy_process_group()
