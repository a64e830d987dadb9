import os

import pytest
import torch

import voxa.utils.threads as th


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(th, "_cache", None)
    for var in th._ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(th, "usable_cores", lambda: 4)
    monkeypatch.setattr(th, "_STARTUP_THREADS", torch.get_num_threads())


def test_a_quiet_machine_gives_every_core(monkeypatch):
    # a process started seconds ago has barely moved the load average: the sample decides
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.1, 0.0))
    monkeypatch.setattr(th, "others_busy", lambda interval=0.1: 0.1)
    assert th.free_cores() == 4
    monkeypatch.setattr(th, "_cache", None)
    monkeypatch.setattr(th, "others_busy", lambda interval=0.1: 1.0)
    assert th.free_cores() == 3


@pytest.mark.parametrize("busy,free", [(0.0, 4), (0.4, 4), (0.6, 3), (1.0, 3), (2.2, 2), (3.9, 1),
                                       (9.0, 1)])
def test_busy_cores_of_other_processes_are_left_alone(monkeypatch, busy, free):
    monkeypatch.setattr(os, "getloadavg", lambda: (busy + 2.0, 1.0, 1.0))  # load counts us too
    monkeypatch.setattr(th, "others_busy", lambda interval=0.1: busy)
    assert th.free_cores() == free


def test_load_average_stands_in_where_proc_is_unreadable(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.2, 1.0, 1.0))
    monkeypatch.setattr(th, "others_busy", lambda interval=0.1: None)
    assert th.free_cores() == 3


def test_the_measurement_is_cached(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 1.0, 1.0))
    monkeypatch.setattr(th, "others_busy", lambda interval=0.1: calls.append(1) or 1.0)
    assert th.free_cores() == th.free_cores() == 3
    assert len(calls) == 1


def test_others_busy_excludes_this_process():
    # our own spinning is subtracted: a busy loop here must not read as another process's load
    import threading
    import time

    stop = time.perf_counter() + 0.3

    def spin():
        while time.perf_counter() < stop:
            pass

    t = threading.Thread(target=spin)
    t.start()
    busy = th.others_busy(0.2)
    t.join()
    if busy is None:
        pytest.skip("no /proc on this platform")
    assert busy >= 0.0
    assert busy < os.cpu_count()


def test_user_choice_wins(monkeypatch):
    monkeypatch.setattr(th, "free_cores", lambda interval=0.1: 1)
    assert th.auto_threads() == 1
    monkeypatch.setenv("VOXA_NUM_THREADS", "3")
    assert th.user_threads() == 3 and th.auto_threads() == 3
    monkeypatch.delenv("VOXA_NUM_THREADS")
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    try:
        torch.set_num_threads(other)  # the user's call after voxa was imported
        assert th.user_threads() == other and th.auto_threads() == other
    finally:
        torch.set_num_threads(before)
    assert th.user_threads() is None


def test_numeric_threads_sets_and_restores(monkeypatch):
    monkeypatch.setattr(th, "free_cores", lambda interval=0.1: 1)
    before = torch.get_num_threads()
    with th.numeric_threads() as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with th.numeric_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before


def test_fit_and_compute_features_use_it(monkeypatch, tmp_path):
    import numpy as np
    import soundfile as sf

    from voxa.data.manifest import Record
    from voxa.features.pipeline import FeatureConfig, compute_features
    from voxa.gmm import GaussianMixture

    seen = []
    real = th.numeric_threads

    def spy(n=None):
        seen.append(n)
        return real(n)

    monkeypatch.setattr("voxa.gmm.mixture.numeric_threads", spy)
    GaussianMixture(2, max_iter=1, random_state=0).fit(torch.randn(200, 2))
    assert seen == [None]
    cfg = FeatureConfig()
    monkeypatch.setattr("voxa.features.pipeline.numeric_threads", spy)
    sf.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    compute_features([Record(id="a", path=str(tmp_path / "a.wav"))], cfg, tmp_path / "f",
                     progress=False)
    assert seen == [None, None]


def test_gmm_scoring_and_map_run_on_the_free_cores(monkeypatch):
    from voxa.gmm import GaussianMixture, llr_many

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.delenv("VOXA_NUM_THREADS", raising=False)
    monkeypatch.setattr(th, "_STARTUP_THREADS", torch.get_num_threads())
    monkeypatch.setattr(th, "free_cores", lambda interval=0.1: 1)
    seen = []
    real_mm = torch.Tensor.__matmul__

    def spy(a, b):
        seen.append(torch.get_num_threads())
        return real_mm(a, b)

    ubm = GaussianMixture(2, max_iter=1, random_state=0).fit(torch.randn(200, 2))
    spk = ubm.map_adapt(torch.randn(50, 2))
    monkeypatch.setattr(torch.Tensor, "__matmul__", spy)
    llr_many([spk], ubm, torch.randn(30, 2))
    assert seen and set(seen) == {1}


def test_a_nested_block_keeps_the_outer_choice_without_sampling_again(monkeypatch):
    calls = []
    monkeypatch.setattr(th, "auto_threads", lambda: calls.append(1) or 1)
    with th.numeric_threads() as outer:
        with th.numeric_threads() as inner:
            assert inner == outer == 1
    assert len(calls) == 1
