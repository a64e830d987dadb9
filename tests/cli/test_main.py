import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from voxa.cli.main import main


def _corpus(root, n=3):
    rec = root / "recordings"
    rec.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for spk in ("ann", "bob"):
        for d in range(2):
            for t in range(n):
                x = np.concatenate([rng.standard_normal(800) * 1e-4, rng.standard_normal(3200) * 0.2])
                sf.write(rec / f"{d}_{spk}_{t}.wav", x.astype(np.float32), 8000)
    return root


def test_features_compute_from_prepared_data(tmp_path, capsys):
    root = _corpus(tmp_path / "fsdd")
    assert main(["data", "prepare", "fsdd", str(root), str(tmp_path / "data")]) == 0
    assert main(["features", "compute", "--type", "mfcc", "--deltas", "2", "--cmvn",
                 str(tmp_path / "data"), str(tmp_path / "feats")]) == 0
    scp = (tmp_path / "feats" / "feats.scp").read_text().splitlines()
    assert len(scp) == 12
    from voxa.features.store import FeatureReader

    r = FeatureReader(tmp_path / "feats")
    assert r[r.keys()[0]].shape[1] == 39


def test_features_compute_kaldi_dir_input_and_voxa_format(tmp_path):
    root = _corpus(tmp_path / "fsdd", n=1)
    main(["data", "prepare", "fsdd", str(root), str(tmp_path / "data")])
    (tmp_path / "data" / "manifest.jsonl").unlink()  # leave only the Kaldi files
    assert main(["features", "compute", "--type", "plp", "--format", "voxa",
                 str(tmp_path / "data"), str(tmp_path / "feats")]) == 0
    from voxa.features.store import FeatureReader

    r = FeatureReader(tmp_path / "feats")
    assert r.kind == "voxa" and len(r) == 4 and r[r.keys()[0]].shape[0] > 0


def test_bad_input_is_one_line_and_nonzero(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text('{"id": "a", "path": "x.wav"}\nnot json\n')
    rc = main(["features", "compute", str(tmp_path / "m.jsonl"), str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err.startswith("voxa: error:") and "m.jsonl:2" in err and "\n" not in err


def test_missing_audio_names_the_file(tmp_path, capsys):
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "path": str(tmp_path / "gone.wav")}) + "\n")
    rc = main(["features", "compute", str(tmp_path / "m.jsonl"), str(tmp_path / "out")])
    assert rc == 1 and "gone.wav" in capsys.readouterr().err
    assert not (tmp_path / "out" / "feats.scp").exists()


def test_console_script_exits_nonzero_on_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "voxa.cli.main", "data", "prepare", "nocorpus",
                        str(tmp_path), str(tmp_path / "o")], capture_output=True, text=True)
    assert p.returncode != 0 and "nocorpus" in p.stderr


@pytest.mark.slow
def test_demo_on_synthetic_data(tmp_path, monkeypatch, png_plot):
    monkeypatch.setenv("VOXA_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv("VOXA_ASTERISK", str(tmp_path / "absent"))
    monkeypatch.chdir(tmp_path)
    import voxa.tasks.demo as demo

    monkeypatch.setattr(demo, "find_data_root", lambda explicit=None: None)
    summary = demo.run_demo(tmp_path / "exp", quick=True)
    assert "synthesised" in summary["corpus"]["source"]
    assert summary["corpus"]["speakers"] == 6
    assert 0.0 <= summary["digit_recognition"]["wer"] < 50.0  # synthetic digits: chance is 90 %
    png_plot(tmp_path / "exp" / "spectrogram_mfcc.png", (937, 840))
    from voxa.tasks.tse import DEFAULT_MODEL

    if DEFAULT_MODEL.exists():  # the extraction stage runs with the model voxa ships
        ex = summary["extraction"]
        assert len(ex["true_distances"]) == 2 and ex["estimated_distances"]
        out = tmp_path / "exp" / "extraction"
        assert len(list(out.glob("extracted_at_*m.wav"))) == 2 and (out / "mixture.wav").exists()
        png_plot(out / "sweep.png", (732, 470))
