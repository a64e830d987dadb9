"""``voxa backend train|score``: a chain of back-ends over utterance vectors (i-vectors, embeddings).

The chain itself (:class:`voxa.backends.chain.BackendChain`) is library code; this module parses and
prints. A chain saves as one safetensors file (``voxa.load`` restores it).
"""

from __future__ import annotations

import argparse

from voxa.backends.chain import CLASSIFY, PRE, VERIFY


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("backend", help="score back-ends over utterance vectors: train, score")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train", help="fit a chain such as lnorm,lda,plda on labelled vectors")
    t.add_argument("--vectors", required=True, help="vectors file ('voxa ivector extract')")
    t.add_argument("--label", default="speaker", choices=["speaker", "language", "emotion"])
    t.add_argument("--chain", default="lnorm,lda,plda",
                   help=f"comma-separated steps among {', '.join(PRE + VERIFY + CLASSIFY)}; "
                        "the last one scores")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="STEP.PARAM=VALUE",
                   help="a step's parameter, e.g. lda.n_components=100 or svm.kernel=rbf")
    t.add_argument("-o", "--output", required=True, help="model file (.safetensors)")
    t.set_defaults(func=_train)
    s = verbs.add_parser("score", help="score trials (verification) or every class (classification)")
    s.add_argument("--model", required=True)
    s.add_argument("--test", required=True, help="vectors file of the test utterances")
    s.add_argument("--enroll", default=None, help="vectors file of the enrolment utterances")
    s.add_argument("--trials", default=None,
                   help="Kaldi trials (enrol-id test-id [target|nontarget]); an enrol id is a speaker "
                        "label of --enroll or one of its utterance ids")
    s.add_argument("-o", "--output", required=True, help="scores text file")
    s.set_defaults(func=_score)


def _train(args: argparse.Namespace) -> int:
    import numpy as np

    from voxa.backends.chain import BackendChain, check_steps
    from voxa.errors import VoxaError
    from voxa.utils.config import apply_overrides
    from voxa.utils.vectors import load_vectors

    steps = check_steps(args.chain.split(","))
    params = apply_overrides({}, args.overrides)
    ids, X, labels = load_vectors(args.vectors)
    missing = [u for u in ids if args.label not in labels.get(u, {})]
    if missing:
        raise VoxaError(f"{args.vectors}: {missing[0]} has no {args.label} label")
    y = np.asarray([labels[u][args.label] for u in ids])
    chain = BackendChain.fit_steps(steps, X, y, params, label=args.label)
    chain.save(args.output)
    print(f"back-end {','.join(steps)} on {len(ids)} vectors ({len(set(y))} {args.label}s) -> {args.output}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from voxa.backends.chain import BackendChain
    from voxa.errors import ConfigError
    from voxa.tasks.trials import read_trials
    from voxa.utils.atomic import write_text_atomic
    from voxa.utils.vectors import load_vectors

    chain = BackendChain.load(args.model)
    t_ids, T, _ = load_vectors(args.test)
    if not chain.verifies:
        s = chain.decision_function(T)
        classes = [str(c) for c in chain.classes_]
        lines = ["utterance " + " ".join(classes)] + [f"{u} " + " ".join(f"{v:.6f}" for v in row)
                                                      for u, row in zip(t_ids, s)]
        write_text_atomic(args.output, "\n".join(lines) + "\n")
        print(f"scored {len(t_ids)} utterances against {len(classes)} classes -> {args.output}")
        return 0
    if not (args.enroll and args.trials):
        raise ConfigError(f"a {chain.scorer_name} chain scores trials: give --enroll and --trials")
    e_ids, E, e_labels = load_vectors(args.enroll)
    trials = read_trials(args.trials)
    scores = chain.score_trials(e_ids, E, e_labels, t_ids, T, trials)
    write_text_atomic(args.output, "".join(f"{t.enroll} {t.test} {v:.6f}\n" for t, v in zip(trials, scores)))
    print(f"scored {len(trials)} trials -> {args.output}")
    return 0
