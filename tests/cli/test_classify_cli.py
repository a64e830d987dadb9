"""CLI groups lid, ivector and backend: argument errors and an i-vector -> PLDA chain end to end."""

import numpy as np
import pytest
import soundfile as sf

import voxa
from voxa.cli.main import main
from voxa.data.manifest import Record, write_manifest
from voxa.utils.vectors import load_vectors, save_vectors

_SR = 8000
_TINY = ["--set", "gmm.n_components=4", "--set", "gmm.max_iter=3", "--set", "ivector.rank=3",
         "--set", "ivector.n_iter=2", "--set", "features.vad=false"]
# each synthetic talker alternates every 100 ms between two noise bands of its own
_BANDS = [((200, 500), (1500, 1900)), ((600, 900), (2500, 3000)),
          ((300, 700), (3000, 3500)), ((1000, 1400), (2000, 2400))]


def _band_noise(rng, n, lo, hi):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / _SR)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n)
    return x / (np.abs(x).max() + 1e-9)


def _err(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("voxa: error:") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 talkers x 5 one-second utterances; manifests of all, the enrolment and the test part."""
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    recs = []
    for s, bands in enumerate(_BANDS):
        for u in range(5):
            n = _SR
            a, b = (_band_noise(rng, n, lo, hi) for lo, hi in bands)
            x = 0.3 * np.where((np.arange(n) // 800) % 2 == 0, a, b)
            path = root / f"spk{s}_{u}.wav"
            sf.write(path, x.astype(np.float32), _SR)
            recs.append(Record(id=f"spk{s}-{u}", path=str(path), speaker=f"spk{s}", language="xx"))
    write_manifest(root / "all.jsonl", recs)
    write_manifest(root / "enroll.jsonl", [r for r in recs if int(r.id[-1]) < 2])
    write_manifest(root / "test.jsonl", [r for r in recs if int(r.id[-1]) >= 2])
    return root


@pytest.fixture(scope="module")
def vectors(corpus):
    """'voxa ivector train' then 'extract' on all utterances, split into enrolment and test files.

    (Extracting another manifest with the same --exp fails today: see
    test_ivector_extract_of_other_data_than_the_training_set.)
    """
    exp = corpus / "iv"
    assert main(["ivector", "train", str(corpus / "all.jsonl"), "--exp", str(exp), *_TINY]) == 0
    assert main(["ivector", "extract", str(corpus / "all.jsonl"), "--exp", str(exp),
                 "-o", str(corpus / "all.safetensors")]) == 0
    ids, X, labels = load_vectors(corpus / "all.safetensors")
    for part, keep in (("enroll", lambda u: int(u[-1]) < 2), ("test", lambda u: int(u[-1]) >= 2)):
        rows = [i for i, u in enumerate(ids) if keep(u)]
        save_vectors(corpus / f"{part}.safetensors", [ids[i] for i in rows], X[rows],
                     labels={ids[i]: labels[ids[i]] for i in rows})
    return exp, corpus / "enroll.safetensors", corpus / "test.safetensors"


def test_lid_evaluate_without_data_is_an_error(tmp_path, capsys):
    rc = main(["lid", "evaluate", "--exp", str(tmp_path / "exp")])
    assert rc == 1
    assert "--train and --test" in _err(capsys)


def test_lid_evaluate_with_only_train_is_an_error(corpus, tmp_path, capsys):
    rc = main(["lid", "evaluate", "--train", str(corpus / "all.jsonl"), "--exp", str(tmp_path / "exp")])
    assert rc == 1
    _err(capsys)


def test_lid_evaluate_with_data_and_train_is_an_error(corpus, tmp_path, capsys):
    m = str(corpus / "all.jsonl")
    rc = main(["lid", "evaluate", "--data", m, "--train", m, "--test", m, "--exp", str(tmp_path / "exp")])
    assert rc == 1
    assert "either --data" in _err(capsys)


def test_lid_evaluate_bad_duration_is_an_error(corpus, tmp_path, capsys):
    m = str(corpus / "all.jsonl")
    rc = main(["lid", "evaluate", "--train", m, "--test", m, "--durations", "long", "--exp",
               str(tmp_path / "exp")])
    assert rc == 1
    assert "'long'" in _err(capsys)


def test_ivector_extract_without_a_trained_extractor_is_an_error(corpus, tmp_path, capsys):
    (tmp_path / "exp").mkdir()
    rc = main(["ivector", "extract", str(corpus / "all.jsonl"), "--exp", str(tmp_path / "exp"),
               "-o", str(tmp_path / "iv.safetensors")])
    assert rc == 1
    assert "tv.safetensors" in _err(capsys)
    assert not (tmp_path / "iv.safetensors").exists()


def test_ivector_train_writes_the_extractor_and_its_config(vectors):
    exp, _, _ = vectors
    assert (exp / "tv.safetensors").stat().st_size > 0
    assert '"rank": 3' in (exp / "config.json").read_text()


def test_ivector_extract_writes_vectors_with_labels(vectors):
    exp, _, _ = vectors
    ids, X, labels = load_vectors(exp.parent / "all.safetensors")
    assert ids == [f"spk{s}-{u}" for s in range(4) for u in range(5)]
    assert X.shape == (20, 3) and np.isfinite(X).all()
    assert labels["spk0-2"] == {"speaker": "spk0", "language": "xx"}


def test_ivector_extract_of_other_data_than_the_training_set(vectors, tmp_path):
    exp, _, _ = vectors
    rc = main(["ivector", "extract", str(exp.parent / "test.jsonl"), "--exp", str(exp),
               "-o", str(tmp_path / "test.safetensors")])
    assert rc == 0
    ids, X, _ = load_vectors(tmp_path / "test.safetensors")
    assert len(ids) == 12 and X.shape == (12, 3)


def test_backend_plda_chain_scores_one_line_per_trial(vectors, tmp_path):
    _, enroll, test = vectors
    model = tmp_path / "plda.safetensors"
    assert main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,lda,plda",
                 "-o", str(model)]) == 0
    assert voxa.load(model).names == ["lnorm", "lda", "plda"]
    test_ids = load_vectors(test)[0]
    # enrolment by speaker label and by one utterance id
    trials = [(f"spk{s}", u, f"spk{s}" == u.split("-")[0]) for s in range(4) for u in test_ids]
    trials += [("spk1-0", u, u.startswith("spk1-")) for u in test_ids[:5]]
    (tmp_path / "trials").write_text("".join(f"{e} {t} {'target' if y else 'nontarget'}\n"
                                             for e, t, y in trials))
    out = tmp_path / "scores"
    assert main(["backend", "score", "--model", str(model), "--enroll", str(enroll), "--test", str(test),
                 "--trials", str(tmp_path / "trials"), "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == len(trials)
    parsed = [line.split() for line in lines]
    assert [(p[0], p[1]) for p in parsed] == [(e, t) for e, t, _ in trials]
    scores = np.array([float(p[2]) for p in parsed])
    target = np.array([y for _, _, y in trials])
    assert np.isfinite(scores).all()
    assert scores[target].mean() > scores[~target].mean()  # the talkers differ clearly


def test_backend_cosine_chain_scores_trials(vectors, tmp_path):
    _, enroll, test = vectors
    assert main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,cosine",
                 "-o", str(tmp_path / "m")]) == 0
    (tmp_path / "trials").write_text("spk0 spk0-2 target\nspk0 spk3-4 nontarget\n")
    assert main(["backend", "score", "--model", str(tmp_path / "m"), "--enroll", str(enroll), "--test",
                 str(test), "--trials", str(tmp_path / "trials"), "-o", str(tmp_path / "s")]) == 0
    scores = [float(line.split()[2]) for line in (tmp_path / "s").read_text().splitlines()]
    assert len(scores) == 2 and all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in scores)


def test_backend_classifier_chain_scores_every_class(vectors, tmp_path):
    _, enroll, test = vectors
    assert main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,logreg",
                 "-o", str(tmp_path / "m")]) == 0
    assert main(["backend", "score", "--model", str(tmp_path / "m"), "--test", str(test),
                 "-o", str(tmp_path / "s")]) == 0
    lines = (tmp_path / "s").read_text().splitlines()
    assert lines[0] == "utterance spk0 spk1 spk2 spk3"
    assert len(lines) == 1 + 12 and all(len(line.split()) == 5 for line in lines[1:])


def test_backend_chain_with_the_scorer_not_last_is_an_error(vectors, tmp_path, capsys):
    _, enroll, _ = vectors
    rc = main(["backend", "train", "--vectors", str(enroll), "--chain", "plda,lda",
               "-o", str(tmp_path / "m")])
    assert rc == 1
    assert "pre-processing steps" in _err(capsys)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("chain", ["lnorm,knn", "", "lnorm,plda,cosine"])
def test_backend_bad_chain_is_an_error(vectors, tmp_path, capsys, chain):
    _, enroll, _ = vectors
    rc = main(["backend", "train", "--vectors", str(enroll), "--chain", chain, "-o", str(tmp_path / "m")])
    assert rc == 1
    _err(capsys)


def test_backend_setting_for_a_step_not_in_the_chain_is_an_error(vectors, tmp_path, capsys):
    _, enroll, _ = vectors
    rc = main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,plda", "--set",
               "lda.n_components=2", "-o", str(tmp_path / "m")])
    assert rc == 1
    assert "lda" in _err(capsys)


def test_backend_missing_label_is_an_error(vectors, tmp_path, capsys):
    _, enroll, _ = vectors
    rc = main(["backend", "train", "--vectors", str(enroll), "--label", "emotion", "-o", str(tmp_path / "m")])
    assert rc == 1
    assert "no emotion label" in _err(capsys)


def test_backend_verification_chain_without_trials_is_an_error(vectors, tmp_path, capsys):
    _, enroll, test = vectors
    assert main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,plda",
                 "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    rc = main(["backend", "score", "--model", str(tmp_path / "m"), "--test", str(test),
               "-o", str(tmp_path / "s")])
    assert rc == 1
    assert "--trials" in _err(capsys)


def test_backend_trial_of_an_unknown_model_is_an_error(vectors, tmp_path, capsys):
    _, enroll, test = vectors
    assert main(["backend", "train", "--vectors", str(enroll), "--chain", "lnorm,plda",
                 "-o", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    (tmp_path / "trials").write_text("nobody spk0-2 target\n")
    rc = main(["backend", "score", "--model", str(tmp_path / "m"), "--enroll", str(enroll), "--test",
               str(test), "--trials", str(tmp_path / "trials"), "-o", str(tmp_path / "s")])
    assert rc == 1
    assert "'nobody'" in _err(capsys)
    assert not (tmp_path / "s").exists()


def test_backend_score_without_a_trained_model_is_an_error(vectors, tmp_path, capsys):
    _, _, test = vectors
    rc = main(["backend", "score", "--model", str(tmp_path / "none"), "--test", str(test),
               "-o", str(tmp_path / "s")])
    assert rc == 1
    assert "no such model file" in _err(capsys)
