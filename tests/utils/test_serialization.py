"""safetensors + JSON-header model files: round trip, errors, atomic writes, no pickle."""

from __future__ import annotations

import json

import pytest
import torch

import voxa
from voxa.errors import VoxaError
from voxa.utils.serialization import load_model, save_model


def test_round_trip(tmp_path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    tensors = {"a": base, "b": base[:, 1], "i": torch.tensor([1, 2], dtype=torch.int64)}
    header = {"class": "Demo", "config": {"k": 3, "name": "x", "tol": 1e-4}}
    path = save_model(tmp_path / "sub" / "m.safetensors", tensors, header)
    got, h = load_model(path, expected_class="Demo")
    assert set(got) == set(tensors)
    for k, v in tensors.items():
        assert torch.equal(got[k], v) and got[k].dtype == v.dtype
    assert h["config"] == header["config"] and h["class"] == "Demo"
    assert h["voxa_version"] == voxa.__version__
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]  # no temporaries left
    assert b"pickle" not in path.read_bytes()


def test_header_is_json_under_voxa_key(tmp_path) -> None:
    from safetensors import safe_open

    path = save_model(tmp_path / "m.safetensors", {"x": torch.ones(1)}, {"class": "C"})
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["voxa"])["class"] == "C"


def test_errors(tmp_path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(VoxaError, match="no such"):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all")
    with pytest.raises(VoxaError, match="not a readable"):
        load_model(bad)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.ones(1)}, str(plain))
    with pytest.raises(VoxaError, match="without a voxa header"):
        load_model(plain)
    corrupt = tmp_path / "corrupt.safetensors"
    save_file({"x": torch.ones(1)}, str(corrupt), metadata={"voxa": "{oops"})
    with pytest.raises(VoxaError, match="corrupt"):
        load_model(corrupt)
    ok = save_model(tmp_path / "ok.safetensors", {"x": torch.ones(1)}, {"class": "A"})
    with pytest.raises(VoxaError, match="expected 'B'"):
        load_model(ok, expected_class="B")
    with pytest.raises(VoxaError, match="JSON"):
        save_model(tmp_path / "j.safetensors", {"x": torch.ones(1)}, {"class": object()})
    with pytest.raises(VoxaError, match="not a torch.Tensor"):
        save_model(tmp_path / "t.safetensors", {"x": [1.0]}, {"class": "A"})  # type: ignore[dict-item]
    assert not (tmp_path / "j.safetensors").exists()
