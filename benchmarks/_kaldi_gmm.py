"""Kaldi's monophone GMM-HMM recipe (``steps/train_mono.sh`` + ``utils/mkgraph.sh`` + ``decode.sh``)
through the ``kaldi-hmm-gmm`` wheel: the worker half of ``benchmarks/asr_kaldi.py``.

Run as ``python benchmarks/_kaldi_gmm.py JOBDIR`` with ``kaldi_hmm_gmm`` 1.1.4 and a ``kaldifst`` that
matches it first on ``sys.path``: 1.7.17 (OpenFst 1.7, pybind11 internals v11; 1.7.10 has internals
v4, so its FSTs are not recognised either). The ``kaldifst`` 1.8 that voxa uses has OpenFst 1.8's
``ArcTpl<W, int, int>``, a different C++ type, so its FSTs cannot be passed to ``kaldi_hmm_gmm``
(``TypeError: incompatible constructor arguments``). ``asr_kaldi.py`` therefore runs this file in a
subprocess with ``PYTHONPATH`` on a ``pip install --target`` folder of the two wheels.
``JOBDIR`` holds ``job.json`` (phones, lexicon, word table, transcripts, settings), ``feats.npz`` and
``G.txt``; the result goes to ``result.json``.

Each step names the Kaldi binary it stands for. The binaries' C++ loops over frames and utterances
are Python loops here over the wheel's bindings (``AccumAmDiagGmm.accumulate_for_gmm`` per frame,
``align_utterance_wrapper`` per utterance): the numerics are Kaldi's, the glue is Python.

``import kaldi_hmm_gmm`` must come before ``import kaldifst`` in a process (the other order hangs).
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import kaldi_hmm_gmm as khg  # noqa: I001  (must precede kaldifst)
import kaldifst
import numpy as np

SIL = "SIL"


def _cost(p: float) -> float:
    return -math.log(p) if p > 0 else float("inf")


# ----------------------------------------------------------------------------- lang (prepare_lang.sh)
@dataclass
class KaldiLang:
    """phones.txt / words.txt / L.fst / L_disambig.fst of ``utils/prepare_lang.sh`` (no position
    dependence: voxa's phones are not word-position dependent either)."""

    phones: list[str]                      # non-disambig phones, SIL first (ids 1..)
    phone_id: dict[str, int]
    disambig: dict[str, int]               # "#0", "#1", ... -> id
    word_id: dict[str, int]                # <eps> 0, words, #0, <s>, </s>
    entries: list[tuple[str, tuple[str, ...], float]]
    sil_prob: float

    @property
    def id2word(self) -> dict[int, str]:
        return {i: w for w, i in self.word_id.items()}

    def disambig_ids(self) -> list[int]:
        return sorted(self.disambig.values())

    def words_txt(self) -> str:
        return "".join(f"{w} {i}\n" for w, i in self.word_id.items())


def make_lang(phones: Sequence[str], prons: Mapping[str, Sequence[tuple[Sequence[str], float]]],
              word_id: Mapping[str, int], sil_prob: float) -> KaldiLang:
    """Phone and word tables with ``add_lex_disambig.pl``'s disambiguation symbols."""
    phones = list(phones)
    phone_id = {p: i + 1 for i, p in enumerate(phones)}
    words = [w for w in word_id if w not in ("<eps>", "#0", "<s>", "</s>")]
    entries = []
    for w in words:
        for ph, p in prons[w]:
            entries.append((w, tuple(ph), float(p)))
    # add_lex_disambig.pl: a pronunciation that is a prefix of another, or shared, gets #k appended
    count: dict[tuple[str, ...], int] = {}
    for _, ph, _ in entries:
        count[ph] = count.get(ph, 0) + 1
    prefixes = {ph[:k] for _, ph, _ in entries for k in range(1, len(ph))}
    last: dict[tuple[str, ...], int] = {}
    max_k = 0
    dis_entries = []
    for w, ph, p in entries:
        if count[ph] > 1 or ph in prefixes:
            k = last.get(ph, 0) + 1
            last[ph] = k
            max_k = max(max_k, k)
            dis_entries.append((w, ph + (f"#{k}",), p))
        else:
            dis_entries.append((w, ph, p))
    # #0 (G's backoff), #1..#max_k (lexicon), #(max_k+1) the silence disambiguator (prepare_lang.sh)
    n = len(phones)
    disambig = {f"#{k}": n + 1 + k for k in range(max_k + 2)}
    lang = KaldiLang(phones, phone_id, disambig, dict(word_id), entries, sil_prob)
    lang._dis_entries = dis_entries  # type: ignore[attr-defined]
    lang._sil_dis = f"#{max_k + 1}"  # type: ignore[attr-defined]
    return lang


def lexicon_fst(lang: KaldiLang, disambig: bool) -> Any:
    """``utils/make_lexicon_fst.py --sil-prob`` (L.fst), or with ``disambig`` L_disambig.fst (the #k
    pronunciation suffixes, the silence disambiguator, and the ``#0:#0`` self-loop that passes G's
    backoff symbol through, as ``fstaddselfloops`` adds)."""
    entries = lang._dis_entries if disambig else lang.entries  # type: ignore[attr-defined]
    sym = {**lang.phone_id, **lang.disambig}
    sil_cost, nosil_cost = _cost(lang.sil_prob), _cost(1.0 - lang.sil_prob)
    start, loop, sil = 0, 1, 2
    lines = [f"{start} {loop} 0 0 {nosil_cost}", f"{start} {sil} 0 0 {sil_cost}"]
    nstate = 3
    if disambig:
        sd = nstate
        nstate += 1
        lines += [f"{sil} {sd} {sym[SIL]} 0 0", f"{sd} {loop} {sym[lang._sil_dis]} 0 0"]  # type: ignore
    else:
        lines.append(f"{sil} {loop} {sym[SIL]} 0 0")
    for w, ph, p in entries:
        cur = loop
        wid = lang.word_id[w]
        pc = _cost(p)
        for j, x in enumerate(ph):
            olab = wid if j == 0 else 0
            wc = pc if j == 0 else 0.0
            if j == len(ph) - 1:
                lines.append(f"{cur} {loop} {sym[x]} {olab} {wc + nosil_cost}")
                lines.append(f"{cur} {sil} {sym[x]} {olab} {wc + sil_cost}")
            else:
                lines.append(f"{cur} {nstate} {sym[x]} {olab} {wc}")
                cur = nstate
                nstate += 1
    if disambig:
        lines.append(f"{loop} {loop} {lang.disambig['#0']} {lang.word_id['#0']} 0")
    lines.append(f"{loop} 0")
    fst = kaldifst.compile("\n".join(lines) + "\n", acceptor=False)
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def hmm_topology(lang: KaldiLang, n_states: int = 3, sil_states: int = 5) -> Any:
    """``utils/gen_topo.pl``: left-to-right phones (0.75 self-loop), and the silence topology whose
    first ``sil_states - 1`` states are fully connected (Kaldi's default)."""
    nonsil = [lang.phone_id[p] for p in lang.phones if p != SIL]
    s = "<Topology>\n<TopologyEntry>\n<ForPhones>\n" + " ".join(map(str, nonsil)) + "\n</ForPhones>\n"
    for i in range(n_states):
        s += f"<State> {i} <PdfClass> {i} <Transition> {i} 0.75 <Transition> {i + 1} 0.25 </State>\n"
    s += f"<State> {n_states} </State>\n</TopologyEntry>\n"
    s += f"<TopologyEntry>\n<ForPhones>\n{lang.phone_id[SIL]}\n</ForPhones>\n"
    tp = 1.0 / (sil_states - 1)
    s += "<State> 0 <PdfClass> 0 " + "".join(f"<Transition> {i} {tp} " for i in range(sil_states - 1))
    s += "</State>\n"
    for i in range(1, sil_states - 1):
        s += f"<State> {i} <PdfClass> {i} " + "".join(f"<Transition> {k} {tp} " for k in range(1, sil_states))
        s += "</State>\n"
    last = sil_states - 1
    s += (f"<State> {last} <PdfClass> {last} <Transition> {last} 0.75 "
          f"<Transition> {sil_states} 0.25 </State>\n")
    s += f"<State> {sil_states} </State>\n</TopologyEntry>\n</Topology>\n"
    topo = khg.HmmTopology()
    topo.read(s)
    return topo


# --------------------------------------------------------------------------- training (train_mono.sh)
@dataclass
class KaldiMonoConfig:
    """``steps/train_mono.sh`` settings (its defaults, with the recipe's iteration/Gaussian counts)."""

    num_iters: int = 40
    totgauss: int = 1000
    max_iter_inc: int = 30
    realign_iters: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)
    power: float = 0.25
    n_states: int = 3
    sil_states: int = 5
    transition_scale: float = 1.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    init_utts: int = 10           # gmm-init-mono --train-feats="subset-feats --n=10 ..."
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class KaldiSystem:
    lang: KaldiLang
    topo: Any
    tree: Any
    tm: Any
    am: Any
    seconds: float
    timing: dict[str, float]
    utterances: int


def _gmm_est(am: Any, tm: Any, accs: Any, tstats: np.ndarray, mixup: int, power: float,
             min_gauss_occ: float) -> None:
    """``gmm-est --mix-up=N --power=P [--min-gaussian-occupancy=...]``."""
    tm.mle_update(tstats, khg.MleTransitionUpdateConfig())
    opts = khg.MleDiagGmmOptions()
    opts.min_gaussian_occupancy = min_gauss_occ
    khg.mle_am_diag_gmm_update(config=opts, amdiag_gmm_acc=accs, flags=khg.GmmUpdateFlags.kGmmAll, am_gmm=am)
    if mixup:
        occs = np.array([accs.get_acc(i).occupancy.sum() for i in range(accs.num_accs)], dtype=np.float32)
        am.split_by_count(state_occs=occs, target_components=mixup, perturb_factor=0.01, power=power,
                          min_count=20.0)


def train_mono_kaldi(feats: Mapping[str, np.ndarray], texts: Mapping[str, Sequence[str]], lang: KaldiLang,
                     cfg: KaldiMonoConfig, log=print) -> KaldiSystem:
    """gmm-init-mono, compile-train-graphs, align-equal-compiled, then train_mono.sh's loop of
    gmm-align-compiled (on the realignment iterations), gmm-acc-stats-ali and gmm-est."""
    t_all = time.perf_counter()
    timing = {"graphs": 0.0, "align": 0.0, "accumulate": 0.0, "estimate": 0.0}
    ids = sorted(k for k in texts if k in feats)
    # gmm-init-mono: topology, monophone tree, transition model, every pdf = global mean/var
    topo = hmm_topology(lang, cfg.n_states, cfg.sil_states)
    tree = khg.monophone_context_dependency(phones=topo.phones,
                                            phone2num_pdf_classes=topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(ctx_dep=tree, hmm_topo=topo)
    x = np.concatenate([feats[k] for k in ids[:cfg.init_utts]]).astype(np.float64)
    mean, var = x.mean(0), x.var(0)
    dim = x.shape[1]
    proto = khg.DiagGmm(nmix=1, dim=dim)
    proto.set_weights(np.ones(1, dtype=np.float32))
    proto.set_means(mean[None].astype(np.float32))
    proto.set_invvars((1.0 / var)[None].astype(np.float32))
    proto.compute_gconsts()
    am = khg.AmDiagGmm()
    for _ in range(tree.num_pdfs):
        am.add_pdf(proto)
    # compile-train-graphs (its defaults: no transition probs, they are added at each alignment)
    t0 = time.perf_counter()
    gopts = khg.TrainingGraphCompilerOptions()
    gopts.transition_scale = 0.0
    gopts.self_loop_scale = 0.0
    gc = khg.TrainingGraphCompiler(trans_model=tm, ctx_dep=tree, lex_fst=lexicon_fst(lang, disambig=False),
                                   disambig_syms=lang.disambig_ids(), opts=gopts)
    graphs = {k: gc.compile_graph_from_text([lang.word_id[w] for w in texts[k]]) for k in ids}
    timing["graphs"] += time.perf_counter() - t0
    # align-equal-compiled
    ali: dict[str, np.ndarray] = {}
    for k in ids:
        ok, path = kaldifst.equal_align(ifst=graphs[k], length=feats[k].shape[0],
                                        rand_seed=zlib.crc32(k.encode()) & 0x7FFFFFFF, num_retries=10)
        if ok:
            ok, seq, _, _ = kaldifst.get_linear_symbol_sequence(path)
        if ok and len(seq) == feats[k].shape[0]:
            ali[k] = np.asarray(seq, dtype=np.int64)
    timing["align"] += time.perf_counter() - t0 - timing["graphs"]
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    numgauss = am.num_gauss
    incgauss = (cfg.totgauss - numgauss) // cfg.max_iter_inc
    realign = set(cfg.realign_iters)
    beam = 6.0
    for it in range(cfg.num_iters):
        if it in realign:  # gmm-align-compiled $scale_opts --beam=$beam --retry-beam=$[$beam*4]
            t0 = time.perf_counter()
            acfg = khg.AlignConfig()
            acfg.beam, acfg.retry_beam, acfg.careful = beam, 4 * beam, False
            new, tot, frames = {}, 0.0, 0
            for k in ids:
                g = graphs[k].copy()
                khg.add_transition_probs(trans_model=tm, disambig_syms=[],
                                         transition_scale=cfg.transition_scale,
                                         self_loop_scale=cfg.self_loop_scale, fst=g)
                dec = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=feats[k], scale=cfg.acoustic_scale)
                _, _, _, like, nfr, a, _ = khg.align_utterance_wrapper(
                    config=acfg, utt=k, acoustic_scale=cfg.acoustic_scale, fst=g, decodable=dec,
                    num_done=0, num_error=0, num_retried=0, tot_like=0.0, frame_count=0)
                if len(a) == feats[k].shape[0]:
                    new[k] = np.asarray(a, dtype=np.int64)
                    tot += like
                    frames += nfr
            ali = new
            beam = 10.0
            timing["align"] += time.perf_counter() - t0
        # gmm-acc-stats-ali
        t0 = time.perf_counter()
        accs = khg.AccumAmDiagGmm()
        accs.init(model=am, flags=khg.GmmUpdateFlags.kGmmAll)
        tstats = tm.init_stats()
        loglik = 0.0
        nframes = 0
        for k, a in ali.items():
            tstats += np.bincount(a, minlength=len(tstats)).astype(np.float64)  # TransitionModel::Accumulate
            x = feats[k]
            pdfs = tid2pdf[a]
            for t in range(len(a)):
                loglik += accs.accumulate_for_gmm(model=am, data=x[t], gmm_index=int(pdfs[t]), weight=1.0)
            nframes += len(a)
        timing["accumulate"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        _gmm_est(am, tm, accs, tstats, numgauss, cfg.power, 3.0 if it == 0 else 10.0)
        timing["estimate"] += time.perf_counter() - t0
        row = {"iter": it, "gaussians": am.num_gauss, "frame_loglik": round(loglik / max(nframes, 1), 4),
               "utterances": len(ali)}
        cfg.history.append(row)
        log(f"kaldi mono iter {it}: {row}")
        if 1 <= it <= cfg.max_iter_inc:  # train_mono.sh: after passes 1..max_iter_inc (not after 0.mdl)
            numgauss += incgauss
    seconds = time.perf_counter() - t_all
    timing = {k: round(v, 2) for k, v in timing.items()}
    return KaldiSystem(lang, topo, tree, tm, am, seconds, timing, len(ali))


# ---------------------------------------------------------------------------------- graph (mkgraph.sh)
def _relabel_input(fst: Any, drop: set[int]) -> Any:
    """``fstrmsymbols``: the given input labels become epsilon (text round trip)."""
    out = []
    for ln in fst.to_str(show_weight_one=True).splitlines():
        f = ln.split()
        if len(f) >= 4 and int(f[2]) in drop:
            f[2] = "0"
        out.append(" ".join(f))
    return kaldifst.compile("\n".join(out) + "\n", acceptor=False)


def make_hclg(system: KaldiSystem, g_fst: Any, self_loop_scale: float = 0.1) -> Any:
    """``utils/mkgraph.sh``: LG = detstar(L_disambig ∘ G) minimised; CLG = compose-context (width 1);
    Ha = make-h-transducer; HCLGa = detstar(Ha ∘ CLG), disambiguation transition ids removed,
    epsilons removed, minimised; HCLG = add-self-loops --self-loop-scale=0.1 --reorder=true."""
    lang = system.lang
    L = lexicon_fst(lang, disambig=True)
    kaldifst.arcsort(g_fst, sort_type="ilabel")
    LG = kaldifst.compose(L, g_fst)
    kaldifst.determinize_star(LG, use_log=True)
    kaldifst.minimize_encoded(LG)
    CLG, ilabels = kaldifst.compose_context(disambig_syms=lang.disambig_ids(), context_width=1,
                                            central_position=0, ifst=LG)
    kaldifst.arcsort(CLG, sort_type="ilabel")
    Ha, disambig_tids = khg.get_h_transducer(ilabel_info=ilabels, ctx_dep=system.tree, trans_model=system.tm,
                                             config=khg.HTransducerConfig(transition_scale=1.0))
    kaldifst.arcsort(Ha, sort_type="olabel")
    HCLGa = kaldifst.compose(Ha, CLG)
    kaldifst.determinize_star(HCLGa, use_log=True)
    HCLGa = _relabel_input(HCLGa, set(disambig_tids))
    kaldifst.rmepsilon(HCLGa)
    kaldifst.minimize_encoded(HCLGa)
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=system.tm, ifst=HCLGa)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    return HCLG


# --------------------------------------------------------------------------------- decode (decode.sh)
def decode_kaldi(system: KaldiSystem, hclg: Any, feats: Mapping[str, np.ndarray], ids: Sequence[str],
                 beam: float = 13.0, max_active: int = 7000, min_active: int = 200,
                 acoustic_scale: float = 0.1) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Best paths with Kaldi's FasterDecoder over DecodableAmDiagGmmScaled (``gmm-decode-faster``)."""
    opts = khg.FasterDecoderOptions()
    opts.beam, opts.max_active, opts.min_active = beam, max_active, min_active
    dec = khg.FasterDecoder(hclg, opts)
    id2word = system.lang.id2word
    hyps, secs, frames, failed = {}, 0.0, 0, 0
    for k in ids:
        t0 = time.perf_counter()
        d = khg.DecodableAmDiagGmmScaled(am=system.am, tm=system.tm, feats=feats[k], scale=acoustic_scale)
        dec.decode(d)
        ok, best = dec.get_best_path()
        words: list[str] = []
        if ok:
            ok, _, osyms, _ = kaldifst.get_linear_symbol_sequence(best)
            words = [id2word[o] for o in osyms if o > 0]
        else:
            failed += 1
        secs += time.perf_counter() - t0
        hyps[k] = [w for w in words if not w.startswith("#") and w not in ("<s>", "</s>")]
        frames += feats[k].shape[0]
    audio = frames * 0.01
    return hyps, {"search_seconds": round(secs, 2), "audio_seconds": round(audio, 1),
                  "rtf": round(secs / max(audio, 1e-9), 4), "failed": failed}


def main(jobdir: str) -> int:
    import json
    from pathlib import Path

    job_dir = Path(jobdir)
    job = json.loads((job_dir / "job.json").read_text())
    with np.load(job_dir / "feats.npz") as z:
        feats = {k: np.ascontiguousarray(z[k], dtype=np.float32) for k in z.files}
    prons = {w: [(tuple(ph), float(p)) for ph, p in v] for w, v in job["prons"].items()}
    lang = make_lang(job["phones"], prons, job["word_id"], job["sil_prob"])
    cfg = KaldiMonoConfig(**job["mono"])
    texts = job["texts"]
    verbose = bool(job.get("verbose"))
    sysm = train_mono_kaldi(feats, texts, lang, cfg, log=(lambda s: print(s, flush=True)) if verbose else
                            (lambda s: None))
    print(f"[kaldi] trained on {sysm.utterances} utts in {sysm.seconds:.1f} s: {sysm.am.num_gauss} "
          f"Gaussians, {sysm.am.num_pdfs} pdfs; breakdown {sysm.timing}", flush=True)
    t0 = time.perf_counter()
    g = kaldifst.compile((job_dir / "G.txt").read_text(), acceptor=False)
    hclg = make_hclg(sysm, g, self_loop_scale=job["decode"]["self_loop_scale"])
    graph_s = time.perf_counter() - t0
    print(f"[kaldi] HCLG: {hclg.num_states} states ({graph_s:.1f} s)", flush=True)
    d = job["decode"]
    out = {"train_seconds": sysm.seconds, "train_breakdown": sysm.timing, "gaussians": sysm.am.num_gauss,
           "pdfs": sysm.am.num_pdfs, "train_utterances": sysm.utterances, "hclg_states": hclg.num_states,
           "graph_seconds": round(graph_s, 2), "history": cfg.history, "sets": {}}
    for name, ids in job["tests"].items():
        hyps, timing = decode_kaldi(sysm, hclg, feats, ids, beam=d["beam"], max_active=d["max_active"],
                                    min_active=d["min_active"], acoustic_scale=d["acoustic_scale"])
        out["sets"][name] = {"hyps": hyps, **timing}
    (job_dir / "result.json").write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1]))
