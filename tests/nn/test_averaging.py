import pytest
import torch
import torch.nn as nn

from voxa.errors import VoxaError
from voxa.nn.averaging import (
    average_state_dicts,
    average_weights,
    read_weights,
    save_snapshot,
    snapshot_paths,
)


def test_float_entries_are_averaged_and_counters_taken_from_the_last():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(1)}
    b = {"w": torch.tensor([1.0, 4.0]), "n": torch.tensor(7)}
    c = {"w": torch.tensor([2.0, 0.0]), "n": torch.tensor(9)}
    out = average_state_dicts([a, b, c])
    assert torch.allclose(out["w"], torch.tensor([1.0, 2.0])) and int(out["n"]) == 9
    assert out["w"].dtype == torch.float32


def test_weights_of_different_models_are_refused():
    with pytest.raises(VoxaError, match="different models"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])
    with pytest.raises(VoxaError, match="no weights"):
        average_state_dicts([])


def test_snapshots_keep_only_the_newest_and_round_trip_with_their_step(tmp_path):
    m = nn.Linear(2, 1)
    for step in (100, 200, 300, 400):
        with torch.no_grad():
            m.weight.fill_(step)
        save_snapshot(tmp_path, m, step, keep=2, cpu_hours=0.5)
    paths = snapshot_paths(tmp_path)
    assert [p.name for p in paths] == ["step-00000300.safetensors", "step-00000400.safetensors"]
    sd, info = read_weights(paths[-1])
    assert info == {"step": 400, "cpu_hours": 0.5} and float(sd["weight"][0, 0]) == 400.0
    avg, infos = average_weights(paths)
    assert float(avg["weight"][0, 0]) == 350.0 and [i["step"] for i in infos] == [300, 400]


def test_a_missing_or_unreadable_file_is_a_voxa_error(tmp_path):
    with pytest.raises(VoxaError, match="not found"):
        read_weights(tmp_path / "none.safetensors")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(VoxaError, match="bad.pt: unreadable"):
        read_weights(tmp_path / "bad.pt")


def test_newest_snapshots_refuses_a_run_with_too_few(tmp_path):
    from voxa.nn.averaging import newest_snapshots

    save_snapshot(tmp_path / "snapshots", nn.Linear(2, 1), 100, keep=5)
    assert [p.name for p in newest_snapshots(tmp_path, 1)] == ["step-00000100.safetensors"]
    with pytest.raises(VoxaError, match="1 snapshots, fewer than 2"):
        newest_snapshots(tmp_path, 2)
