"""Utterance vectors on disk: ids, float vectors and labels in one safetensors file."""

import numpy as np
import pytest
import torch

from voxa.errors import VoxaError
from voxa.utils.serialization import save_model
from voxa.utils.vectors import load_vectors, save_vectors


def test_round_trip(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    labels = {"u1": {"speaker": "ann", "language": "en"}, "u3": {"emotion": "calm"}}
    path = save_vectors(tmp_path / "sub" / "v.safetensors", ["u1", "u2", "u3"], X, labels=labels)
    ids, Y, got = load_vectors(path)
    assert ids == ["u1", "u2", "u3"]
    assert Y.dtype == np.float64 and Y.shape == (3, 4)
    np.testing.assert_allclose(Y, X, rtol=1e-6)  # stored as float32
    assert got == labels


def test_round_trip_from_a_tensor_without_labels(tmp_path):
    path = save_vectors(tmp_path / "v.safetensors", ["b", "a"], torch.ones(2, 3, requires_grad=True))
    ids, Y, labels = load_vectors(path)
    assert ids == ["b", "a"] and labels == {} and (Y == 1).all()


def test_duplicate_ids_are_an_error(tmp_path):
    with pytest.raises(VoxaError, match="duplicate"):
        save_vectors(tmp_path / "v.safetensors", ["a", "a"], np.zeros((2, 3)))
    assert not (tmp_path / "v.safetensors").exists()


@pytest.mark.parametrize("shape", [(3, 4), (2,), (2, 3, 1)])
def test_shape_mismatch_is_an_error(tmp_path, shape):
    with pytest.raises(VoxaError, match="expected \\[2, dim\\]"):
        save_vectors(tmp_path / "v.safetensors", ["a", "b"], np.zeros(shape))


def test_loading_another_model_file_is_an_error(tmp_path):
    path = save_model(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, {"class": "GaussianMixture"})
    with pytest.raises(VoxaError):
        load_vectors(path)


def test_loading_a_vectors_class_file_without_ids_is_an_error(tmp_path):
    path = save_model(tmp_path / "m.safetensors", {"vectors": torch.zeros(2, 2)}, {"class": "voxa.Vectors"})
    with pytest.raises(VoxaError, match="not a vectors file"):
        load_vectors(path)


def test_ids_and_vectors_disagreeing_in_number_is_an_error(tmp_path):
    path = save_model(tmp_path / "m.safetensors", {"vectors": torch.zeros(3, 2)},
                      {"class": "voxa.Vectors", "ids": ["a", "b"]})
    with pytest.raises(VoxaError, match="3 vectors but 2 ids"):
        load_vectors(path)


def test_loading_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(VoxaError):
        load_vectors(tmp_path / "absent.safetensors")
