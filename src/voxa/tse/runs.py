"""Training runs side by side at equal CPU-hours: the learning logs of two or more TSE runs (say the
band-split `cpu` model and the LSTM+DEG baseline), their validation figures at common budgets, and a plot.

Only the query task's validation points are compared (rows with a ``query_use``): a staged run's earlier
stages log the SI-SDR improvement of other tasks (separation, distance order) in the same column. A stage
may also change the validation mixtures' length (the run's ``config.yaml`` says so), and figures on 1 s
and 2 s mixtures differ by more than their noise, so a budget's mean and the plotted running mean only
take points of one length.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> head = "step,cpu_hours,query_use,si_sdri\\n"
    >>> _ = (d / "a.csv").write_text(head + "100,0.5,1.0,0.2\\n200,1.0,2.0,0.4\\n")
    >>> _ = (d / "b.csv").write_text(head + "100,1.0,0.1,0.0\\n")
    >>> res = compare_runs({"A": d / "a.csv", "B": d / "b.csv"}, marks=[1.0], window=1)
    >>> res["table"][0]["A"]["query_use"], res["table"][0]["B"]["query_use"]
    (2.0, 0.1)
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

from voxa.errors import VoxaError

KEYS = ("query_use", "si_sdri")
_LABELS = {"query_use": "query use (dB)", "si_sdri": "SI-SDR improvement (dB)"}


def _stage_seconds(log: Path) -> list[float] | None:
    """The validation mixture length of each stage, read through the run's ``config.yaml`` beside its log
    (the preset loader, so a malformed file is refused as any preset is); None without a config or
    stages: every point then counts as one length."""
    cfg = log.parent / "config.yaml"
    if not cfg.is_file():
        return None
    from voxa.tasks.tse import preset

    p = preset(cfg)
    return [float(st.seconds or p.mixing.seconds) for st in p.stages] or None


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """A run's query-task validation points, in step order.

    Args:
        path: a ``train_log.csv`` or the run folder holding one (a ``config.yaml`` beside it gives each
            stage's validation length).

    Returns:
        One dict per logged point with ``step``, ``cpu_hours``, ``query_use``, ``si_sdri`` and
        ``seconds`` (the validation mixtures' length, NaN when unknown), all floats; points without a
        query use (other tasks' stages) are left out, and a log from a run still in those stages (no
        ``query_use`` column yet) gives an empty list.

    Raises:
        VoxaError: the log is missing or lacks a ``step`` or ``cpu_hours`` column.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "train_log.csv"
    if not p.is_file():
        raise VoxaError(f"{p}: no training log")
    lengths = _stage_seconds(p)
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"step", "cpu_hours"} - set(reader.fieldnames or ())
        if missing:
            raise VoxaError(f"{p}: the training log has no {', '.join(sorted(missing))} column")
        rows = []
        for r in reader:
            if r.get("query_use") in (None, ""):
                continue
            try:
                stage = int(float(r["stage"])) if r.get("stage") not in (None, "") else 0
                row = {"step": float(r["step"]), "cpu_hours": float(r["cpu_hours"]),
                       "query_use": float(r["query_use"]),
                       "si_sdri": float(r["si_sdri"]) if r.get("si_sdri") not in (None, "") else math.nan,
                       "seconds": lengths[min(stage, len(lengths) - 1)] if lengths else math.nan}
            except ValueError as e:
                raise VoxaError(f"{p}: line {reader.line_num}: {e}") from None
            rows.append(row)
    return sorted(rows, key=lambda r: r["step"])


def _same_length(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def at_budget(rows: list[dict[str, float]], hours: float, window: int = 20) -> dict[str, float] | None:
    """The mean of the last ``window`` points logged at or before ``hours`` CPU-hours, or None when the
    run has not reached that budget (its last point is earlier). Only points validated on the same
    mixture length as the last one count (``n`` says how many did). A run that had reached the budget
    but was still in an earlier stage then (no query-task point yet) gets NaN figures and step."""
    if not rows or rows[-1]["cpu_hours"] < hours:
        return None
    upto = [r for r in rows if r["cpu_hours"] <= hours]
    if not upto:
        return {"cpu_hours": hours, "step": math.nan, "seconds": math.nan, "n": 0,
                **{k: math.nan for k in KEYS}}
    length = upto[-1].get("seconds", math.nan)
    upto = [r for r in upto if _same_length(r.get("seconds", math.nan), length)][-window:]
    out = {"cpu_hours": upto[-1]["cpu_hours"], "step": upto[-1]["step"], "seconds": length, "n": len(upto)}
    for k in KEYS:
        vals = [r[k] for r in upto if not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else math.nan
    return out


def default_marks(runs: dict[str, list[dict[str, float]]]) -> list[float]:
    """Budgets (CPU-hours) at which to compare: 0.5, 1, 2, 4, ... up to the shortest run's end, and that
    end itself (the largest budget every run has had)."""
    ends = [rows[-1]["cpu_hours"] for rows in runs.values() if rows]
    if not ends:
        return []
    common = min(ends)
    marks, h = [], 0.5
    while h < common:
        marks.append(h)
        h *= 2
    return marks + [common]


def compare_runs(logs: dict[str, str | os.PathLike], marks: list[float] | None = None, window: int = 20,
                 plot: str | os.PathLike | None = None) -> dict[str, Any]:
    """One or more runs' query use and SI-SDRi at equal CPU-hours.

    Args:
        logs: label -> ``train_log.csv`` (or run folder).
        marks: budgets in CPU-hours (default :func:`default_marks`).
        window: validation points averaged at each budget (their spread is large point to point).
        plot: PNG to draw both figures against CPU-hours (each run's points and their running mean).

    Returns:
        ``{"table": [{"cpu_hours": h, label: {...} or None, ...}], "ends": {label: {...}},
        "markdown": str}``; a run that has not reached a budget has None there.
    """
    if len(logs) < 1:
        raise VoxaError("compare_runs needs at least one training log")
    runs = {label: read_log(p) for label, p in logs.items()}
    for label, rows in runs.items():
        if not rows:
            raise VoxaError(f"{logs[label]}: no query-task validation points in the training log")
    marks = default_marks(runs) if marks is None else sorted(marks)
    table = [{"cpu_hours": h, **{label: at_budget(rows, h, window) for label, rows in runs.items()}}
             for h in marks]
    ends = {label: at_budget(rows, rows[-1]["cpu_hours"], window) for label, rows in runs.items()}
    if plot is not None:
        plot_runs(runs, plot, window)
    return {"table": table, "ends": ends, "markdown": _markdown(table, list(runs), window)}


def _markdown(table: list[dict[str, Any]], labels: list[str], window: int) -> str:
    def cell(v: dict[str, float] | None) -> str:
        if v is None:
            return "not reached"
        if math.isnan(v["step"]):
            return "earlier stages"
        length = "" if math.isnan(v["seconds"]) else f", {v['seconds']:g} s"
        return f"{v['query_use']:.2f} / {v['si_sdri']:.2f} (step {int(v['step']):,}{length})"

    head = ("| CPU-hours | " + " | ".join(f"{lb}: query use / SI-SDRi (dB)" for lb in labels) + " |\n"
            + "|---" * (len(labels) + 1) + "|\n")
    body = "".join(f"| {row['cpu_hours']:.2f} | " + " | ".join(cell(row[lb]) for lb in labels) + " |\n"
                   for row in table)
    return head + body + (f"\nEach cell: the mean of the last {window} validation points at that budget, "
                          "of the validation mixture length it then had.\n")


def _running_mean(values: list[float], window: int, segments: list[float] | None = None) -> list[float]:
    """The mean of the last ``window`` non-NaN values at each point, restarted wherever ``segments``
    (one length per value) changes."""
    segs = segments if segments is not None else [math.nan] * len(values)
    out, acc, n, q = [], 0.0, 0, []
    for i, v in enumerate(values):
        if i and not _same_length(segs[i], segs[i - 1]):
            acc, n, q = 0.0, 0, []
        if math.isnan(v):
            out.append(out[-1] if out and n else math.nan)
            continue
        q.append(v)
        acc, n = acc + v, n + 1
        if len(q) > window:
            acc, n = acc - q.pop(0), n - 1
        out.append(acc / n)
    return out


def plot_runs(runs: dict[str, list[dict[str, float]]], path: str | os.PathLike, window: int = 20) -> Path:
    """Query use and SI-SDRi of each run against CPU-hours, one panel each, as a PNG; a dotted line
    marks where a run's validation length changes (its running mean restarts there)."""
    from voxa.plots import plt, save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    for ax, key in zip(axes, KEYS):
        for i, (label, rows) in enumerate(runs.items()):
            x = [r["cpu_hours"] for r in rows]
            y = [r[key] for r in rows]
            seg = [r.get("seconds", math.nan) for r in rows]
            ax.plot(x, y, ".", ms=2, alpha=0.25, color=f"C{i}")
            ax.plot(x, _running_mean(y, window, seg), "-", color=f"C{i}", label=label)
            for j in range(1, len(rows)):
                if not _same_length(seg[j], seg[j - 1]):
                    ax.axvline(x[j], color=f"C{i}", ls=":", lw=1)
                    ax.text(x[j], ax.get_ylim()[1], f" {seg[j]:g} s", color=f"C{i}", va="top", fontsize=8)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xlabel("CPU-hours")
        ax.set_ylabel(_LABELS[key] + ", validation")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left")
    return save_figure(fig, path)
