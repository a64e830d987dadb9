"""Voice-perturbed copies of utterances (speed, VTLP) and the filterbank warp they use."""

import numpy as np
import pytest
import soundfile as sf
import torch

from voxa.data.manifest import Record
from voxa.errors import ConfigError
from voxa.features.filterbanks import mel_filterbank, vtln_warp_freq
from voxa.features.perturb import VoicePerturbation, perturbed_features
from voxa.features.pipeline import FeatureConfig, extract


def test_vtln_warp_keeps_the_band_edges_and_scales_the_middle():
    f = torch.tensor([20.0, 1000.0, 3999.0])
    w = vtln_warp_freq(f, 1.1, 20.0, 4000.0)
    assert abs(float(w[0]) - 20.0) < 1e-6 and abs(float(w[1]) - 1000 / 1.1) < 1e-3
    assert abs(float(w[2]) - 3999.0) < 1.0


def test_a_warp_above_one_moves_the_filter_peaks_down():
    plain = mel_filterbank(23, 256, 8000).argmax(0)
    warped = mel_filterbank(23, 256, 8000, vtln_warp=1.15).argmax(0)
    assert (warped[8:16] < plain[8:16]).all()


def test_warp_of_one_gives_the_plain_features():
    x = torch.randn(8000) * 0.1
    a = extract(x, 8000, FeatureConfig(options={"vtln_warp": 1.0}))
    assert torch.equal(a, extract(x, 8000, FeatureConfig()))


def test_a_warp_outside_half_to_two_is_a_config_error():
    with pytest.raises(ConfigError, match="vtln_warp"):
        FeatureConfig(options={"vtln_warp": 3.0})


def test_copies_cycle_the_speed_factors_and_repeat_for_a_seed():
    vp = VoicePerturbation(copies=2, speed=(0.9, 1.1), vtlp=(0.9, 1.1), seed=3)
    d = vp.draws(4)
    assert [s for s, _ in d[0]] == [0.9, 1.1] and [s for s, _ in d[1]] == [1.1, 0.9]
    assert d == VoicePerturbation(copies=2, speed=(0.9, 1.1), vtlp=(0.9, 1.1), seed=3).draws(4)
    assert all(0.9 <= w <= 1.1 for row in d for _, w in row)


def test_perturbed_features_of_a_slower_copy_have_more_frames(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32), 8000)
    cfg = FeatureConfig(vad=False)
    vp = VoicePerturbation(copies=2, speed=(0.9, 1.1), vtlp=None)
    (copies,) = perturbed_features([Record(id="a", path=str(path))], cfg, vp, progress=False)
    clean = extract(torch.from_numpy(sf.read(path, dtype="float32")[0]), 8000, cfg)
    assert copies[0].shape[0] > clean.shape[0] > copies[1].shape[0]


@pytest.mark.parametrize("bad", [{"copies": -1}, {"speed": (3.0,)}, {"vtlp": (1.2, 0.9)}])
def test_bad_perturbation_settings_are_config_errors(bad):
    with pytest.raises(ConfigError, match="augment"):
        VoicePerturbation(**bad)


def test_vtlp_on_features_without_a_mel_filterbank_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="vtlp"):
        perturbed_features([Record(id="a", path="x.wav")], FeatureConfig(type="plp"),
                           VoicePerturbation(copies=1), progress=False)
