"""voxa.load/voxa.save: every registered class round-trips (save, load, same outputs); bad files fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import voxa
from voxa.errors import VoxaError
from voxa.utils.serialization import registered, save_model

_RNG = np.random.default_rng(0)
_SPK = np.repeat(np.arange(6), 8)
_X = _RNG.normal(size=(6, 5))[_SPK] + 0.3 * _RNG.normal(size=(48, 5))
_FRAMES = torch.as_tensor(_RNG.normal(size=(400, 3)), dtype=torch.float32)


def _gmm():
    from voxa.gmm import GaussianMixture

    return GaussianMixture(4, max_iter=3, random_state=0).fit(_FRAMES)


def _stats():
    from voxa.ivector.stats import BaumWelchStats

    return BaumWelchStats(torch.rand(5, 4) * 10, torch.randn(5, 4, 3), ids=[f"u{i}" for i in range(5)])


def _utt_stats(ubm):
    from voxa.ivector.stats import baum_welch_stats

    return baum_welch_stats(ubm, [_FRAMES[i * 40:(i + 1) * 40] for i in range(10)])


def _tv():
    from voxa.ivector.tv import TotalVariability

    ubm = _gmm()
    return TotalVariability(rank=2, n_iter=2, progress=False).fit(_utt_stats(ubm), ubm)


def _jfa():
    from voxa.ivector.jfa import JointFactorAnalysis

    ubm = _gmm()
    jfa = JointFactorAnalysis(speaker_rank=2, channel_rank=1, n_iter=2, n_iter_d=1, progress=False)
    return jfa.fit(_utt_stats(ubm), [i // 2 for i in range(10)], ubm)


def _backend(name):
    from voxa.backends import BACKENDS

    def make():
        if name == "calibration":
            return BACKENDS[name]().fit(_RNG.normal(size=40), _RNG.integers(0, 2, 40).astype(bool))
        if name == "fusion":
            y = np.repeat([0, 1, 2], 10)
            scores = [np.eye(3)[y] + _RNG.normal(size=(30, 3)), _RNG.normal(size=(30, 3))]
            return BACKENDS[name]().fit(scores, y)
        kw = {"n_components": 3} if name == "lda" else {"n_components": 2} if name == "nap" else {}
        return BACKENDS[name](**kw).fit(_X, _SPK)

    return make


def _multiclass_calibration():
    from voxa.backends import MultiClassCalibration

    y = np.repeat([0, 1, 2], 10)
    return MultiClassCalibration().fit(np.eye(3)[y] + _RNG.normal(size=(30, 3)), y)


def _chain():
    from voxa.backends.chain import BackendChain

    return BackendChain.fit_steps(["lnorm", "lda", "plda"], _X, _SPK, {"lda": {"n_components": 3}})


def _vectors():
    from voxa.utils.vectors import VectorSet

    return VectorSet(["a", "b"], np.eye(2, 3), {"a": {"speaker": "s1"}})


def _cmvn():
    from voxa.features.cmvn import GlobalCMVN

    return GlobalCMVN(norm_vars=True).fit([_FRAMES * 2 + 1])


def _tse(name):
    def make():
        from voxa.tasks.tse import build_model, preset

        p = preset("tiny")
        if name == "lstm_deg":
            from dataclasses import replace

            p = replace(p, model="lstm_deg", model_config={"hidden": 8, "layers": 1, "emb": 4})
        elif name == "bandsplit":
            from dataclasses import replace

            p = replace(p, model="bandsplit", model_config={"dim": 8, "hidden": 8, "n_dq": 1, "n_ts": 1,
                                                            "n_bands": 6, "query_fusion": "film"})
        return build_model(p).eval()

    return make


def _hmm(name):
    def make():
        from voxa import hmm

        if name == "cat":
            return hmm.CategoricalHMM(3, n_iter=2, random_state=0).fit(_RNG.integers(0, 4, (60, 1)))
        if name == "gmm":
            return hmm.GMMHMM(2, n_mix=2, n_iter=2, random_state=0).fit(_FRAMES[:100], [60, 40])
        return hmm.GaussianHMM(3, covariance_type="full", n_iter=2, random_state=0).fit(_FRAMES[:100])

    return make


# (factory, outputs of a fitted object) for every tag; a class registered without an entry here fails
# test_every_registered_class_has_a_round_trip_case
_MIX = torch.randn(1, 4000) * 0.1
def _acoustic():
    from voxa.asr.acoustic import AcousticModel

    am = AcousticModel.init_flat(["SIL", "a", "b"], 3, _FRAMES.mean(0), _FRAMES.var(0))
    am.split(12, torch.ones(am.num_pdfs))
    return am


def _hybrid():
    from voxa.asr.hybrid import HybridConfig, HybridModel

    torch.manual_seed(0)
    m = HybridModel(HybridConfig(input_dim=3, num_pdfs=5, context=1, hidden=6, layers=2)).eval()
    m.set_prior(torch.arange(1.0, 6.0))
    m.set_normalisation(_FRAMES.mean(0), _FRAMES.std(0))
    return m


def _ctc():
    from voxa.asr.ctc_model import CtcConfig, CtcModel

    torch.manual_seed(0)
    return CtcModel(CtcConfig(input_dim=3, vocab=["<b>", "a", "b"], hidden=4, layers=1, subsample=2)).eval()


_SEQ = torch.as_tensor(_RNG.normal(size=(3, 24, 8)), dtype=torch.float32)
_SEQ_LEN = torch.tensor([24, 17, 9])


def _nn(name, **tiny):
    def make():
        from voxa.nn.models import build_model

        torch.manual_seed(0)
        return build_model(name, 8, 3, **tiny).eval()

    return make


def _nn_outputs(m):
    return torch.cat([m(_SEQ, _SEQ_LEN), m.embed(_SEQ, _SEQ_LEN)], dim=1)


_CHARS, _CHAR_LEN = torch.tensor([[3, 4, 5, 6], [4, 4, 3, 0], [6, 0, 0, 0]]), torch.tensor([4, 3, 1])


def _las():
    from voxa.nn.las import LASConfig, ListenAttendSpell

    torch.manual_seed(0)
    return ListenAttendSpell(LASConfig(input_dim=8, vocab_size=7, listener_hidden=4, listener_layers=2,
                                       speller_hidden=6, embed_dim=4, attention_dim=4, location_channels=2,
                                       location_kernel=3)).eval()


CASES = {
    "voxa.gmm.GaussianMixture": (_gmm, lambda m: m.score_samples(_FRAMES[:20])),
    "voxa.ivector.BaumWelchStats": (_stats, lambda s: torch.cat([s.N.reshape(-1), s.F.reshape(-1)])),
    "voxa.ivector.TotalVariability": (_tv, lambda m: m.transform(_utt_stats(m.ubm_))),
    "voxa.ivector.JointFactorAnalysis": (_jfa, lambda m: m.channel_factors(_utt_stats(m.ubm_))),
    "voxa.backends.LengthNorm": (_backend("lnorm"), lambda m: m.transform(_X)),
    "voxa.backends.LDA": (_backend("lda"), lambda m: m.transform(_X)),
    "voxa.backends.WCCN": (_backend("wccn"), lambda m: m.transform(_X)),
    "voxa.backends.NAP": (_backend("nap"), lambda m: m.transform(_X)),
    "voxa.backends.PLDA": (_backend("plda"), lambda m: m.score(_X[:3], _X[3:9])),
    "voxa.backends.CosineScorer": (_backend("cosine"), lambda m: m.score(_X[3:9])),
    "voxa.backends.SVMBackend": (_backend("svm"), lambda m: m.decision_function(_X)),
    "voxa.backends.LogisticBackend": (_backend("logreg"), lambda m: m.decision_function(_X)),
    "voxa.backends.LinearCalibration": (_backend("calibration"), lambda m: m.transform(np.linspace(-2, 2))),
    "voxa.backends.MultiClassCalibration": (_multiclass_calibration, lambda m: m.transform(np.eye(3))),
    "voxa.backends.MultiClassFusion": (_backend("fusion"), lambda m: m.transform([np.eye(3), np.eye(3)])),
    "voxa.backends.BackendChain": (_chain, lambda m: m.score(_X[:3], _X[3:9])),
    "voxa.Vectors": (_vectors, lambda v: v.X),
    "voxa.features.GlobalCMVN": (_cmvn, lambda g: g.transform(_FRAMES[:10])),
    "voxa.tse.DQTSModel": (_tse("dqts"), lambda m: m(_MIX, torch.tensor([1.0]))),
    "voxa.tse.LstmDegModel": (_tse("lstm_deg"), lambda m: m(_MIX, torch.tensor([1.0]))),
    "voxa.tse.BandSplitModel": (_tse("bandsplit"), lambda m: m(_MIX, torch.tensor([1.0]))),
    "voxa.hmm.GaussianHMM": (_hmm("gauss"), lambda m: m.predict_proba(_FRAMES[:30])),
    "voxa.hmm.GMMHMM": (_hmm("gmm"), lambda m: m.predict_proba(_FRAMES[:30], [10, 20])),
    "voxa.hmm.CategoricalHMM": (_hmm("cat"), lambda m: m.predict_proba(np.arange(12).reshape(-1, 1) % 4)),
    "voxa.asr.AcousticModel": (_acoustic, lambda m: m.log_likelihoods(_FRAMES[:30])),
    "voxa.asr.HybridModel": (_hybrid, lambda m: m.pseudo_log_likelihoods(_FRAMES[:30])),
    "voxa.asr.CtcModel": (_ctc, lambda m: m.log_probs(_FRAMES[:30])),
    "voxa.nn.FrameDNN": (_nn("dnn", context=1, hidden=8, layers=2), _nn_outputs),
    "voxa.nn.DNNAttention": (_nn("dnn-attention", context=1, hidden=8, layers=1, att_hidden=4, emb_dim=4),
                             lambda m: m.attention_weights(_SEQ, _SEQ_LEN)),
    "voxa.nn.LSTMClassifier": (_nn("lstm", hidden=4, layers=1, emb_dim=4, pooling="sap", att_hidden=4),
                               _nn_outputs),
    "voxa.nn.ResTDNN": (_nn("res-tdnn", channels=6, dilations=[2], se_bottleneck=2, pool_channels=8,
                            att_hidden=4, emb_dim=4), _nn_outputs),
    "voxa.nn.XVector": (_nn("xvector", hidden=6, stats_dim=8, emb_dim=4), _nn_outputs),
    "voxa.nn.CNNClassifier": (_nn("resnet-asp", width=2, att_hidden=4, emb_dim=4, head="aam"), _nn_outputs),
    "voxa.nn.ListenAttendSpell": (_las, lambda m: m(_SEQ, _SEQ_LEN, _CHARS, _CHAR_LEN)),
}
# tags that name a base class or an old spelling: they load as one of the classes above
ABSTRACT = {"voxa.tse.TseModel", "TseModel"}


def test_every_registered_class_has_a_round_trip_case():
    # tests and docstring examples register stand-in classes of their own (voxa.tests.*, voxa.doc.*)
    shipped = {t for t in registered() if not t.startswith(("voxa.tests.", "voxa.doc."))}
    assert shipped - ABSTRACT == set(CASES)


def test_tags_are_dotted():
    assert all("." in tag for tag in registered() if tag not in ABSTRACT)


def _as_array(v):
    return v.detach().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


@pytest.mark.parametrize("tag", sorted(CASES))
def test_round_trip(tag, tmp_path):
    make, outputs = CASES[tag]
    obj = make()
    path = voxa.save(obj, tmp_path / "obj.safetensors")
    back = voxa.load(path)
    assert type(back) is type(obj)
    with torch.no_grad():
        np.testing.assert_allclose(_as_array(outputs(back)), _as_array(outputs(obj)), rtol=1e-6, atol=1e-6)


def test_load_of_a_file_voxa_did_not_write_is_one_clear_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(VoxaError, match="without a voxa header"):
        voxa.load(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(VoxaError, match="junk.safetensors"):
        voxa.load(tmp_path / "junk.safetensors")


def test_load_of_an_unknown_tag_names_it(tmp_path):
    save_model(tmp_path / "m.safetensors", {"w": torch.ones(2)}, {"class": "voxa.future.Thing"})
    with pytest.raises(VoxaError, match="unknown class 'voxa.future.Thing'"):
        voxa.load(tmp_path / "m.safetensors")


def test_save_of_an_object_voxa_cannot_save_is_an_error(tmp_path):
    with pytest.raises(VoxaError, match="not a kind of object voxa saves"):
        voxa.save({"a": 1}, tmp_path / "x.safetensors")


def test_old_tse_files_load_by_their_short_model_name(tmp_path):
    m = _tse("dqts")()
    tensors = {k: v.contiguous() for k, v in m.state_dict().items()}
    from voxa.utils.config import to_dict

    save_model(tmp_path / "old.safetensors", tensors, {"class": "TseModel", "model": "dqts",
                                                       "config": to_dict(m.cfg)})
    back = voxa.load(tmp_path / "old.safetensors")
    assert type(back).__name__ == "DQTSModel"


def test_old_backend_chain_folders_load(tmp_path):
    import json

    chain = _chain()
    for i, (name, est) in enumerate(zip(chain.names, chain.steps)):
        est.save(tmp_path / f"{i}-{name}.safetensors")
    (tmp_path / "chain.json").write_text(json.dumps(
        {"label": "speaker", "steps": [{"step": n, "file": f"{i}-{n}.safetensors"}
                                       for i, n in enumerate(chain.names)]}))
    back = voxa.load(tmp_path)
    np.testing.assert_allclose(back.score(_X[:2], _X[2:4]), chain.score(_X[:2], _X[2:4]))
