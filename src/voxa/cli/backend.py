"""``voxa backend train|score``: a chain of back-ends over utterance vectors (i-vectors, embeddings).

A chain is pre-processing steps (``lnorm``, ``lda``, ``wccn``) ending in a scorer: ``plda`` or
``cosine`` (verification: trials of enrolment against test) or ``svm`` / ``logreg`` (closed-set
classes). It is saved as a folder: ``chain.json`` and one safetensors file per step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

_PRE = ("lnorm", "lda", "wccn")
_VERIFY = ("plda", "cosine")
_CLASSIFY = ("svm", "logreg")


def add_parser(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("backend", help="score back-ends over utterance vectors: train, score")
    verbs = g.add_subparsers(dest="verb", metavar="<verb>")
    verbs.required = True
    t = verbs.add_parser("train", help="fit a chain such as lnorm,lda,plda on labelled vectors")
    t.add_argument("--vectors", required=True, help="vectors file ('voxa ivector extract')")
    t.add_argument("--label", default="speaker", choices=["speaker", "language", "emotion"])
    t.add_argument("--chain", default="lnorm,lda,plda",
                   help=f"comma-separated steps among {', '.join(_PRE + _VERIFY + _CLASSIFY)}; "
                        "the last one scores")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="STEP.PARAM=VALUE",
                   help="a step's parameter, e.g. lda.n_components=100 or svm.kernel=rbf")
    t.add_argument("-o", "--output", required=True, help="model folder")
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

    from voxa.backends import BACKENDS
    from voxa.errors import ConfigError, VoxaError
    from voxa.tasks.recipe import apply_overrides
    from voxa.utils.atomic import write_text_atomic
    from voxa.utils.vectors import load_vectors

    steps = [s.strip() for s in args.chain.split(",") if s.strip()]
    bad = [s for s in steps if s not in _PRE + _VERIFY + _CLASSIFY]
    if bad or not steps or any(s not in _PRE for s in steps[:-1]):
        raise ConfigError(f"chain {args.chain!r}: pre-processing steps ({', '.join(_PRE)}) then one scorer "
                          f"({', '.join(_VERIFY + _CLASSIFY)})")
    params = apply_overrides({}, args.overrides)
    unknown = set(params) - set(steps)
    if unknown:
        raise ConfigError(f"--set names step(s) not in the chain: {', '.join(sorted(unknown))}")
    ids, X, labels = load_vectors(args.vectors)
    missing = [u for u in ids if args.label not in labels.get(u, {})]
    if missing:
        raise VoxaError(f"{args.vectors}: {missing[0]} has no {args.label} label")
    y = np.asarray([labels[u][args.label] for u in ids])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, name in enumerate(steps):
        kind = "cosine" if name == "cosine" else name
        cls = BACKENDS[kind]
        try:
            est = cls(**params.get(name, {}))
        except TypeError as e:
            raise ConfigError(f"{name}: {e}") from None
        est.fit(X, y)
        if i < len(steps) - 1:
            X = est.transform(X)
        f = f"{i}-{name}.safetensors"
        est.save(out / f)
        files.append({"step": name, "file": f})
    write_text_atomic(out / "chain.json", json.dumps({"label": args.label, "steps": files}, indent=2))
    print(f"back-end {args.chain} on {len(ids)} vectors ({len(set(y))} {args.label}s) -> {out}")
    return 0


def _load_chain(path: Path):
    from voxa.backends import BACKENDS
    from voxa.errors import VoxaError

    if not (path / "chain.json").is_file():
        raise VoxaError(f"{path}: no chain.json (run 'voxa backend train' first)")
    spec = json.loads((path / "chain.json").read_text())
    return [(s["step"], BACKENDS[s["step"]].load(path / s["file"])) for s in spec["steps"]]


def _score(args: argparse.Namespace) -> int:
    import numpy as np

    from voxa.errors import ConfigError, VoxaError
    from voxa.tasks.trials import read_trials
    from voxa.utils.atomic import write_text_atomic
    from voxa.utils.vectors import load_vectors

    chain = _load_chain(Path(args.model))
    *pre, (last, scorer) = chain
    t_ids, T, _ = load_vectors(args.test)
    for _, est in pre:
        T = est.transform(T)
    if last in _CLASSIFY:
        s = scorer.decision_function(T)
        classes = [str(c) for c in scorer.classes_]
        lines = ["utterance " + " ".join(classes)] + [f"{u} " + " ".join(f"{v:.6f}" for v in row)
                                                      for u, row in zip(t_ids, s)]
        write_text_atomic(args.output, "\n".join(lines) + "\n")
        print(f"scored {len(t_ids)} utterances against {len(classes)} classes -> {args.output}")
        return 0
    if not (args.enroll and args.trials):
        raise ConfigError(f"a {last} chain scores trials: give --enroll and --trials")
    e_ids, E, e_labels = load_vectors(args.enroll)
    for _, est in pre:
        E = est.transform(E)
    trials = read_trials(args.trials)
    label = json.loads((Path(args.model) / "chain.json").read_text()).get("label", "speaker")
    groups: dict[str, list[int]] = {}
    id_set = set(e_ids)
    for i, u in enumerate(e_ids):
        groups.setdefault(u, []).append(i)
        lab = e_labels.get(u, {}).get(label)
        if lab is not None and lab not in id_set:
            groups.setdefault(lab, []).append(i)
    t_row = {u: i for i, u in enumerate(t_ids)}
    models = sorted({t.enroll for t in trials})
    bad = [m for m in models if m not in groups] or [t.test for t in trials if t.test not in t_row]
    if bad:
        raise VoxaError(f"trial id {bad[0]!r} is in neither vectors file")
    means = np.stack([E[groups[m]].mean(0) for m in models])
    counts = np.array([len(groups[m]) for m in models])
    if last == "plda":
        M = scorer.score(means, T, n_enroll=counts)
    else:
        from voxa.backends import cosine_scores

        M = cosine_scores(means, T)
    col = {m: i for i, m in enumerate(models)}
    write_text_atomic(args.output, "".join(f"{t.enroll} {t.test} {M[col[t.enroll], t_row[t.test]]:.6f}\n"
                                           for t in trials))
    print(f"scored {len(trials)} trials -> {args.output}")
    return 0
