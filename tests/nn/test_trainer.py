import csv
import time

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from voxa.nn.trainer import EpochSampler, Trainer, TrainerConfig


class Line(Dataset):
    """y = 3x - 1 with noise; item i of epoch e depends only on (e, i)."""

    def __init__(self, n=64):
        self.n, self.epoch = n, 0

    def set_epoch(self, e):
        self.epoch = e

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        x = torch.randn(1, generator=g)
        return {"x": x, "y": 3 * x - 1 + 0.01 * torch.randn(1, generator=g)}


def collate(items):
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def loss_fn(model, b):
    return ((model(b["x"]) - b["y"]) ** 2).mean()


def valid_fn(model):
    x = torch.linspace(-2, 2, 50)[:, None]
    return float(((model(x) - (3 * x - 1)) ** 2).mean())


def _trainer(exp, **kw):
    torch.manual_seed(0)
    cfg = TrainerConfig(epochs=4, batch_size=8, lr=0.3, checkpoint_every=3, amp=False, progress=False, **kw)
    return Trainer(nn.Linear(1, 1), Line(), collate, loss_fn, valid_fn, exp, cfg)


def test_sampler_is_a_seeded_permutation_and_resumes():
    s = EpochSampler(10, seed=1)
    s.set(2, 0)
    full = list(s)
    s.set(2, 4)
    assert sorted(full) == list(range(10)) and list(s) == full[4:]


def test_sampler_keeps_groups_together_and_splits_them_across_ranks():
    orders = []
    for rank in (0, 1):
        s = EpochSampler(12, seed=3, rank=rank, world=2, group=3)
        s.set(1, 0)
        order = list(s)
        assert all(order[i] // 3 == order[i + 1] // 3 == order[i + 2] // 3 for i in range(0, len(order), 3))
        orders.append(order)
    assert sorted(orders[0] + orders[1]) == list(range(12))


def test_trainer_learns_and_writes_logs(tmp_path, png_plot):
    res = _trainer(tmp_path).fit()
    rows = list(csv.DictReader(open(tmp_path / "train_log.csv")))
    assert len(rows) == 4
    assert res["best_valid"] < 0.25 * float(rows[0]["valid_loss"])
    png_plot(tmp_path / "curves.png", (721, 445))
    assert (tmp_path / "best.pt").exists()


def test_new_stage_forgets_the_best_loss_but_keeps_the_learning_rate(tmp_path):
    tr = _trainer(tmp_path, lr_patience=0)
    tr.fit()
    lr = tr.opt.param_groups[0]["lr"]
    assert tr.best < 1.0
    tr.new_stage()
    tr.sched.step(100.0)  # a worse loss on the new task is not a plateau of the old one
    assert tr.best == float("inf") and tr.opt.param_groups[0]["lr"] == lr


def test_new_stage_takes_its_own_plateau_patience_and_checkpoints_it(tmp_path):
    tr = _trainer(tmp_path, lr_patience=0)
    tr.fit()
    tr.new_stage(patience=3)
    assert tr.sched.patience == 3
    st = torch.load(tr.save(), weights_only=True)
    assert st["sched"]["patience"] == 3


def test_resume_after_kill_is_exact(tmp_path):
    straight = _trainer(tmp_path / "a")
    straight.fit()

    killed = _trainer(tmp_path / "b")
    calls = {"n": 0}

    def dying(model, b):
        calls["n"] += 1
        if calls["n"] == 14:  # mid epoch 1, after the checkpoint at step 12
            raise KeyboardInterrupt
        return loss_fn(model, b)

    killed.loss_fn = dying
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    resumed = _trainer(tmp_path / "b")
    assert resumed.resume() and resumed.global_step == 12
    resumed.fit()
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)


def test_checkpoint_loads_without_unpickling_code(tmp_path):
    t = _trainer(tmp_path)
    t.save()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert "model" in state and state["global_step"] == 0


def _valid_with_figure(model):
    return {"loss": valid_fn(model), "figure": 1.0}


def _ddp_worker(rank, world, init, exp, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        cfg = TrainerConfig(epochs=2, batch_size=8, lr=0.1, checkpoint_every=0, amp=False, progress=False)
        t = Trainer(nn.Linear(1, 1), Line(), collate, loss_fn, _valid_with_figure, exp, cfg)
        c0 = time.process_time()
        t.fit()
        # [rank's own CPU seconds, the run's CPU seconds as that rank's trainer counts them, the sum of the
        # validation figure in that rank's history]
        used = torch.zeros(world, 3, dtype=torch.float64)
        used[rank] = torch.tensor([time.process_time() - c0, t.cpu_seconds,
                                   sum(h.get("figure", 0.0) for h in t.history)])
        dist.all_reduce(used)
        if rank == 0:
            torch.save({**{k: v.clone() for k, v in t.model.state_dict().items()}, "cpu": used}, out)
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_equal_one_process_with_the_global_batch(tmp_path):
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_ddp_worker, args=(2, init, str(tmp_path / "ddp"), str(tmp_path / "w.pt")), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "w.pt", weights_only=True)
    # the run's CPU time is both ranks', the same on each: more than rank 1 spent, at most what both did
    own, counted, figures = ddp.pop("cpu").unbind(1)
    assert counted[0] == counted[1] and own[1] < counted[1] <= own.sum()
    # validation runs on rank 0; its figures reach rank 1's history too (a schedule's hand-over reads them)
    assert figures.tolist() == [2.0, 2.0]
    torch.manual_seed(0)
    cfg = TrainerConfig(epochs=2, batch_size=16, lr=0.1, checkpoint_every=0, amp=False, progress=False)
    single = Trainer(nn.Linear(1, 1), Line(), collate, loss_fn, valid_fn, tmp_path / "one", cfg)
    single.fit()
    for k, v in single.model.state_dict().items():
        assert torch.allclose(v, ddp[k], atol=1e-6), k


def test_keep_snapshots_leaves_the_newest_epochs_weights(tmp_path):
    from voxa.nn.averaging import read_weights, snapshot_paths

    t = _trainer(tmp_path, keep_snapshots=2)
    t.fit()
    paths = snapshot_paths(tmp_path / "snapshots")
    assert [read_weights(p)[1]["step"] for p in paths] == [24, 32]
    sd, _ = read_weights(paths[-1])
    assert torch.equal(sd["weight"], t.model.state_dict()["weight"])
