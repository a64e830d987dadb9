"""voxa's monophone GMM-HMM vs Kaldi's own GMM-HMM code (the ``kaldi-hmm-gmm`` wheel with ``kaldifst``,
``kaldilm``) on exactly the same data: WER (PER for phone recognition) and wall time side by side.

For one ASR recipe this builds the train/test sets, transcripts, lexicon and feature matrices the way
``voxa run`` does (``voxa.tasks.recipe.run_recipe`` + ``voxa.tasks.asr.run_asr``), then

1. trains voxa's monophone (``voxa.tasks.asr.train_asr``) and Kaldi's (``steps/train_mono.sh`` through
   the wheel, see ``benchmarks/_kaldi_gmm.py``) with the recipe's ``mono`` iterations and Gaussians;
2. decodes the test sets with the same grammar (the same ARPA LM for n-grams, the same G for
   ``loop``/``isolated``): voxa with its H∘L∘G and ``kaldi_decoder.FasterDecoder``, Kaldi with its
   HCLG (``mkgraph.sh``) and ``FasterDecoder`` over ``DecodableAmDiagGmmScaled``, both beam 13,
   max-active 7000, acoustic scale 0.1;
3. scores both with ``voxa.tasks.asr.score_asr`` and prints one table, ending with
   ``speedup vs kaldi-hmm-gmm: <kaldi train s / voxa train s>``.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/asr_kaldi.py recipes/asterisk/asr_en.yaml --grammar 2
    OMP_NUM_THREADS=1 python benchmarks/asr_kaldi.py recipes/timit_sample/asr_phones.yaml --grammar 2
    OMP_NUM_THREADS=1 python benchmarks/asr_kaldi.py recipes/fsdd/asr_digits.yaml --fold-speaker george

The Kaldi half runs in a subprocess (``benchmarks/_kaldi_gmm.py``) with ``kaldi-hmm-gmm`` 1.1.4 and
``kaldifst`` 1.7.17 from their own folder (default ``exp/bench/kaldi-hmm-gmm-env``, made with
``pip install --no-deps --target exp/bench/kaldi-hmm-gmm-env kaldi-hmm-gmm==1.1.4 kaldifst==1.7.17``):
the ``kaldifst`` 1.8 in voxa's environment is built on OpenFst 1.8, whose FST type the wheel (OpenFst
1.7) does not accept. Features, transcripts, lexicon, word table and G go to it through files.

Setup differences a reader must know: both use 3-state phones and 5-state silence, but Kaldi's silence
topology connects its first four states (voxa's is left-to-right) and Kaldi keeps a full ML transition
model (voxa one self-loop probability per state); Kaldi initialises from the first 10 utterances (voxa
from all frames) and its equal alignment takes a random path through the training graph; Kaldi's
training graphs hold every pronunciation with optional silence, aligned with beam 6/10 (utterances that
fail are dropped for that pass), voxa aligns exactly with each word's most probable pronunciation;
Kaldi mixes up with perturbation 0.01 and min-count 20, voxa with 0.2 standard deviations and 3.

Kaldi's training loop over frames (gmm-acc-stats-ali) and utterances (gmm-align-compiled) runs in
Python over the wheel's per-frame/per-utterance bindings, so its train seconds include Python glue;
the breakdown line shows how much of it is alignment and accumulation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxa.tasks import asr as vasr
from voxa.tasks.recipe import _ASR_KEYS, load_recipe

WORKER = Path(__file__).resolve().parent / "_kaldi_gmm.py"
KALDI_ENV = Path("exp/bench/kaldi-hmm-gmm-env")
INSTALL = ("pip install --no-deps --target {env} kaldi-hmm-gmm==1.1.4 kaldifst==1.7.17")


def build_sets(recipe: dict[str, Any], data_root: str | None, exp_dir: Path) -> dict[str, list]:
    """The recipe's named sets, selected as ``run_recipe`` selects them."""
    from voxa.data.corpora import prepare
    from voxa.data.select import select
    from voxa.tasks.demo import find_data_root

    root = find_data_root(data_root)
    if root is None:
        raise SystemExit("no data root: pass --data DIR or set VOXA_DATA")
    corpus = recipe["corpus"]
    records = prepare(corpus["name"], root / corpus.get("root", corpus["name"]), exp_dir / "data")
    sets = {}
    for name, spec in recipe["sets"].items():
        spec = dict(spec or {})
        other = spec.pop("corpus", None)
        pool = records
        if other is not None:
            pool = prepare(other["name"], root / other.get("root", other["name"]),
                           exp_dir / f"data_{other['name']}")
        sets[name] = select(pool, spec)
        if not sets[name]:
            raise SystemExit(f"set {name!r} selects no utterances")
    return sets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--data", default=None, help="data root (default: voxa's, e.g. ../shared/data)")
    ap.add_argument("--grammar", default=None,
                    help="loop, isolated or an n-gram order (default: the recipe's bigram, else its only "
                         "n-gram, else its first grammar)")
    ap.add_argument("--fold-speaker", default=None,
                    help="for folds: speaker recipes, train on the other speakers and test on this one")
    ap.add_argument("--exp", default=None, help="work folder (default exp/bench/asr_kaldi/<recipe>)")
    ap.add_argument("--kaldi-env", default=str(KALDI_ENV),
                    help="folder with kaldi-hmm-gmm 1.1.4 + kaldifst 1.7.17 ("
                         + INSTALL.format(env="DIR") + ")")
    ap.add_argument("--verbose", action="store_true", help="print Kaldi's per-iteration log")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override key=value")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    recipe = load_recipe(args.recipe, args.overrides)
    cfg = vasr.AsrConfig.from_dict({k: recipe[k] for k in _ASR_KEYS if k in recipe})
    if args.grammar is not None:
        grammar: Any = int(args.grammar) if args.grammar.isdigit() else args.grammar
    else:
        grams = [g for g in cfg.grammars if isinstance(g, int)]
        grammar = grams[-1] if len(grams) == 1 else (2 if 2 in grams else cfg.grammars[0])
    cfg.grammars = [grammar]
    name = recipe["name"] + (f"_fold-{args.fold_speaker}" if args.fold_speaker else "")
    exp = Path(args.exp) if args.exp else Path("exp/bench/asr_kaldi") / name
    exp.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    sets = build_sets(recipe, args.data, exp)
    lexicon = vasr.corpus_lexicon(sets, cfg)  # over every set, as run_asr builds it
    if args.fold_speaker:
        if recipe.get("folds") != "speaker":
            raise SystemExit(f"{args.recipe}: --fold-speaker needs a recipe with folds: speaker")
        spk = args.fold_speaker
        speakers = sorted({r.speaker for r in sets["train"]})
        if spk not in speakers:
            raise SystemExit(f"speaker {spk!r} not in train; one of {', '.join(speakers)}")
        train = [r for r in sets["train"] if r.speaker != spk]
        tests = {"held_out": [r for r in sets["train"] if r.speaker == spk]}
    else:
        train = list(sets["train"])
        tests = {k: list(v) for k, v in sets.items() if k != "train"}
    all_recs = train + [r for v in tests.values() for r in v]
    feats = vasr.load_asr_features(all_recs, cfg, exp)
    print(f"[data] {len(train)} train / {sum(map(len, tests.values()))} test utterances, "
          f"{len(lexicon)} lexicon words, features {time.perf_counter() - t0:.1f} s", flush=True)

    # ---- voxa
    system = vasr.train_asr(train, cfg, exp, feats, lexicon)
    texts = system.train_texts
    nframes = sum(feats[k].shape[0] for k in texts)
    print(f"[voxa] trained on {len(texts)} utts ({nframes} frames) in {system.seconds:.1f} s: "
          f"{system.am.num_gaussians} Gaussians, {system.am.num_pdfs} pdfs", flush=True)
    graph = vasr.make_graph(system, grammar, cfg, exp)  # writes exp/lm<n>.arpa for n-grams
    arpa = str(exp / f"lm{grammar}.arpa") if isinstance(grammar, int) else None
    lex_words = sorted({w for v in texts.values() for w in v} | set(system.lexicon.words))
    refs_by_set = {}
    for sname, recs in tests.items():
        have = {k: v for k, v in vasr.transcripts_of(recs, cfg.phone_fold).items() if v}
        refs = vasr._covered(system.lexicon, have, sname)
        refs_by_set[sname] = {k: v for k, v in refs.items() if k in feats}
    rows = []
    for sname, refs in refs_by_set.items():
        hyps, timing = vasr.decode_asr(system, graph, feats, sorted(refs), cfg)
        rows.append({"system": "voxa", "set": sname, **vasr.score_asr(refs, hyps), **timing,
                     "train_seconds": round(system.seconds, 1), "gaussians": system.am.num_gaussians})

    # ---- Kaldi (same features, transcripts, lexicon, phone set, LM), in its own OpenFst-1.7 process
    from voxa.asr.graph import isolated_grammar, loop_grammar, pron_list

    phones = list(system.am.phones)
    pset = set(phones)
    prons = {w: [(ph, p) for ph, p in pron_list(system.lexicon, w) if set(ph) <= pset] for w in lex_words}
    dropped = [w for w, v in prons.items() if not v]
    if dropped:
        print(f"[kaldi] {len(dropped)} words use phones unseen in training and are left out: {dropped[:5]}")
    word_id = {"<eps>": 0}
    for w in lex_words:
        if prons[w]:
            word_id[w] = len(word_id)
    for sym in ("#0", "<s>", "</s>"):
        word_id[sym] = len(word_id)
    job_dir = exp / "kaldi"
    job_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(grammar, int):
        import tempfile

        import kaldilm

        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "words.txt"
            table.write_text("".join(f"{w} {i}\n" for w, i in word_id.items()))
            g_text = kaldilm.arpa2fst(input_arpa=arpa, disambig_symbol="#0", read_symbol_table=str(table),
                                      max_order=-1)
    else:
        g_fst = (loop_grammar if grammar == "loop" else isolated_grammar)(word_id)
        g_text = g_fst.to_str(show_weight_one=True)
    (job_dir / "G.txt").write_text(g_text)
    mono = cfg.mono
    test_ids = {n: sorted(r) for n, r in refs_by_set.items()}
    need = sorted(set(texts) | {k for v in test_ids.values() for k in v})
    np.savez(job_dir / "feats.npz", **{k: feats[k].numpy().astype(np.float32) for k in need})
    job = {"phones": phones, "prons": {w: [[list(ph), p] for ph, p in v] for w, v in prons.items() if v},
           "word_id": word_id, "sil_prob": cfg.sil_prob, "texts": {k: texts[k] for k in sorted(texts)},
           "tests": test_ids,
           "mono": {"num_iters": mono.num_iters, "totgauss": mono.max_gaussians,
                    "max_iter_inc": mono.mixup_iters, "realign_iters": sorted(mono.realign_at()),
                    "power": mono.power, "n_states": mono.n_states, "sil_states": mono.silence_states},
           "decode": {"beam": cfg.decoder.beam, "max_active": cfg.decoder.max_active,
                      "min_active": cfg.decoder.min_active, "acoustic_scale": cfg.decoder.acoustic_scale,
                      "self_loop_scale": 0.1},
           "verbose": args.verbose}
    (job_dir / "job.json").write_text(json.dumps(job))
    (job_dir / "result.json").unlink(missing_ok=True)
    env_dir = Path(args.kaldi_env).resolve()
    if not (env_dir / "kaldi_hmm_gmm").is_dir():
        raise SystemExit(f"{env_dir}: no kaldi_hmm_gmm; install it with\n  "
                         + INSTALL.format(env=args.kaldi_env))
    path = [str(env_dir)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    t1 = time.perf_counter()
    subprocess.run([sys.executable, str(WORKER), str(job_dir)], env=env, check=True)
    print(f"[kaldi] worker wall {time.perf_counter() - t1:.1f} s", flush=True)
    kres = json.loads((job_dir / "result.json").read_text())
    print(f"[kaldi] HCLG {kres['hclg_states']} states; voxa HLG {graph.fst.num_states} states", flush=True)
    for sname, refs in refs_by_set.items():
        r = kres["sets"][sname]
        rows.append({"system": "kaldi-hmm-gmm", "set": sname, **vasr.score_asr(refs, r["hyps"]),
                     **{k: v for k, v in r.items() if k != "hyps"},
                     "train_seconds": round(kres["train_seconds"], 1), "gaussians": kres["gaussians"]})
    kaldi_seconds = kres["train_seconds"]

    metric = "PER" if cfg.lexicon.type == "words" else "WER"
    print()
    print(f"{args.recipe} grammar={grammar} train={len(texts)} utts ({nframes / 100:.0f} s audio), "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}")
    print(f"{'system':<14} {'set':<10} {metric + ' (%)':>8} {'errors/words':>14} {'train s':>8} "
          f"{'decode RTF':>10} {'Gaussians':>9}")
    for r in rows:
        ew = f"{r['errors']}/{r['ref_words']}"
        print(f"{r['system']:<14} {r['set']:<10} {r['wer']:>8.2f} {ew:>14} "
              f"{r['train_seconds']:>8.1f} {r['rtf']:>10.4f} {r['gaussians']:>9}")
    print(f"kaldi train breakdown (s): {kres['train_breakdown']}; voxa {system.am.num_pdfs} pdfs, "
          f"kaldi {kres['pdfs']} pdfs")
    (exp / "bench.json").write_text(json.dumps({"recipe": args.recipe, "grammar": grammar, "rows": rows,
                                                "kaldi_history": kres["history"],
                                                "voxa_history": system.am.info.get("history")}, indent=1))
    print(f"speedup vs kaldi-hmm-gmm: {kaldi_seconds / system.seconds:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
