"""SpecAugment masks and the sequence datasets of the neural recognisers."""

import pytest
import torch

from voxa.errors import ConfigError, VoxaError
from voxa.nn.sequence import IGNORE, SequenceDataset, collate_sequences, split_valid
from voxa.nn.specaugment import SpecAugment


def test_time_masks_stay_inside_each_utterance():
    sa = SpecAugment(time_masks=3, time_width=5, time_ratio=1.0)
    x = torch.ones(4, 30, 2)
    lengths = torch.tensor([30, 10, 5, 20])
    y = sa(x, lengths, torch.Generator().manual_seed(1))
    for i, n in enumerate(lengths.tolist()):
        assert (y[i, n:] == 1).all()
    assert (y == 0).any()


def test_frequency_masks_cover_whole_bands_of_every_frame():
    sa = SpecAugment(freq_masks=1, freq_width=4)
    y = sa(torch.ones(1, 12, 10), torch.tensor([12]), torch.Generator().manual_seed(0))
    masked = (y[0] == 0).all(0)
    assert masked.sum() <= 4 and ((y[0] == 0).any(0) == masked).all()


def test_inactive_specaugment_returns_the_input():
    x = torch.randn(2, 5, 3)
    assert SpecAugment()(x, torch.tensor([5, 4])) is x


def test_negative_settings_are_config_errors():
    with pytest.raises(ConfigError, match="specaugment.time_masks"):
        SpecAugment(time_masks=-1)


def test_frame_target_chunks_crop_frames_and_labels_together():
    x, y = torch.arange(100.0)[:, None], torch.arange(100)
    ds = SequenceDataset([x], [y], frame_targets=True, chunk=30, seed=2)
    a, b = ds[0]
    assert a.shape[0] == 30 and torch.equal(a[:, 0].long(), b)


def test_collate_pads_labels_with_the_ignore_index():
    b = collate_sequences([(torch.ones(3, 2), torch.tensor([4, 5])), (torch.ones(5, 2), torch.tensor([6]))])
    assert b["y"].tolist() == [[4, 5], [6, IGNORE]] and b["lengths"].tolist() == [3, 5]


def test_frame_targets_of_another_length_are_an_error():
    with pytest.raises(VoxaError, match="frame labels"):
        SequenceDataset([torch.ones(4, 2)], [torch.zeros(3)], frame_targets=True)


def test_split_valid_holds_out_at_least_one_and_is_seeded():
    fit, valid = split_valid(7, 0.05, seed=3)
    assert len(valid) == 1 and sorted(fit + valid) == list(range(7))
    assert split_valid(7, 0.05, seed=3) == (fit, valid)
