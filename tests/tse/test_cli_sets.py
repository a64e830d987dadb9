import json

import numpy as np
import soundfile as sf

from voxa.cli.main import main


def test_simulate_mixtures_and_score(tmp_path, png_plot):
    rng = np.random.default_rng(0)
    recs = []
    for s in range(10):
        p = tmp_path / "wav" / f"s{s}.wav"
        p.parent.mkdir(exist_ok=True)
        sf.write(p, (rng.standard_normal(8000) * 0.1).astype(np.float32), 8000)
        recs.append(json.dumps({"id": f"s{s}", "path": str(p), "speaker": f"spk{s}", "duration": 1.0}))
    (tmp_path / "m.jsonl").write_text("\n".join(recs) + "\n")
    assert main(["tse", "simulate", "--preset", "D1", "--size", "60", "--rate", "8000", "--quiet",
                 "--out", str(tmp_path / "bank")]) == 0
    assert main(["tse", "mixtures", "--bank", str(tmp_path / "bank"), "--speech", str(tmp_path / "m.jsonl"),
                 "--count", "6", "--rate", "8000", "--seconds", "0.5", "--presence", "0.5",
                 "--split", "train", "--pool", "train", "--out", str(tmp_path / "set")]) == 0
    png_plot(tmp_path / "set" / "geometry.png", (877, 461))
    rows = [json.loads(x) for x in (tmp_path / "set" / "mixtures.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    est = tmp_path / "est"
    est.mkdir()
    for r in rows:  # a zero output: iSDR at its floor for absent targets
        sf.write(est / f"{r['id']}.wav", np.zeros(4000, dtype=np.float32), 8000, subtype="FLOAT")
    assert main(["tse", "score", "--ref", str(tmp_path / "set"), "--est", str(est), "--no-pesq"]) == 0
    res = json.loads((est / "results.json").read_text())
    assert {"sdr", "sdri", "pesq", "isdr"} <= set(res)
    assert res["n_present"] + res["n_absent"] == 6


def test_score_missing_estimate_is_an_error(tmp_path, capsys):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "mixtures.jsonl").write_text(json.dumps(
        {"id": "mix000000", "mix": "mix/mix000000.wav", "target": "target/mix000000.wav", "query": 1.0,
         "present": False, "distances": [1.0, 2.0], "rir_ids": [], "utt_ids": [], "rate": 8000}) + "\n")
    (tmp_path / "set" / "mix").mkdir()
    sf.write(tmp_path / "set" / "mix" / "mix000000.wav", np.zeros(100, dtype=np.float32), 8000)
    rc = main(["tse", "score", "--ref", str(tmp_path / "set"), "--est", str(tmp_path / "none")])
    assert rc == 1 and "estimate missing" in capsys.readouterr().err
