import math

import pytest

from voxa.cli.main import main
from voxa.errors import VoxaError
from voxa.tse.runs import _running_mean, at_budget, compare_runs, default_marks, read_log

HEADER = "epoch,step,train_loss,valid_loss,lr,seconds,cpu_hours,si_sdri,stage,query_use\n"


def _log(path, rows, stages=None):
    """rows: (step, cpu_hours, si_sdri, query_use or None); stages: each row's stage (default 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stages = stages or [0] * len(rows)
    lines = [f"0,{s},0,0,0.001,0,{h},{si},{st},{'' if q is None else q}\n"
             for (s, h, si, q), st in zip(rows, stages)]
    path.write_text(HEADER + "".join(lines))
    return path


def _staged(tmp_path):
    # a separation stage (no query use) then a query stage
    return _log(tmp_path / "staged" / "train_log.csv",
                [(100, 0.5, 2.0, None), (200, 1.0, 2.5, None), (300, 1.5, 0.1, 0.5), (400, 2.0, 0.9, 1.5)])


def _plain(tmp_path):
    return _log(tmp_path / "plain" / "train_log.csv", [(100, 0.6, 0.0, 0.0), (200, 1.2, 0.1, 0.2)])


def test_read_log_keeps_only_query_task_points(tmp_path):
    rows = read_log(_staged(tmp_path).parent)
    assert [r["step"] for r in rows] == [300, 400] and rows[0]["si_sdri"] == pytest.approx(0.1)


def test_read_log_without_step_column_names_the_file(tmp_path):
    p = tmp_path / "train_log.csv"
    p.write_text("cpu_hours,query_use\n0.1,1.0\n")
    with pytest.raises(VoxaError, match="train_log.csv.*step"):
        read_log(p)


def test_a_run_still_in_its_early_stages_has_no_query_points_yet(tmp_path):
    p = tmp_path / "train_log.csv"
    p.write_text("step,cpu_hours,si_sdri\n1,0.1,2.0\n")
    assert read_log(p) == []
    with pytest.raises(VoxaError, match="no query-task validation points"):
        compare_runs({"a": p})


def _two_lengths(tmp_path):
    # stage 0 validates on 1 s mixtures, stage 1 on 2 s ones (the config beside the log says so)
    log = _log(tmp_path / "len" / "train_log.csv",
               [(100, 1.0, 0.0, 4.0), (200, 2.0, 0.0, 6.0), (300, 3.0, 0.0, 1.0), (400, 4.0, 0.0, 3.0)],
               stages=[0, 0, 1, 1])
    config = "mixing: {seconds: 1.0}\nstages:\n  - {task: query}\n  - {task: query, seconds: 2.0}\n"
    (log.parent / "config.yaml").write_text(config)
    return log


def test_read_log_takes_each_stages_validation_length_from_the_config(tmp_path):
    assert [r["seconds"] for r in read_log(_two_lengths(tmp_path))] == [1.0, 1.0, 2.0, 2.0]


def test_at_budget_does_not_average_across_a_change_of_validation_length(tmp_path):
    rows = read_log(_two_lengths(tmp_path))
    v = at_budget(rows, 3.5, window=10)
    assert v["query_use"] == pytest.approx(1.0) and v["n"] == 1 and v["seconds"] == 2.0
    assert at_budget(rows, 2.0, window=10)["query_use"] == pytest.approx(5.0)


def test_running_mean_restarts_where_the_length_changes():
    assert _running_mean([4.0, 6.0, 1.0, 3.0], 10, [1.0, 1.0, 2.0, 2.0]) == [4.0, 5.0, 1.0, 2.0]


def test_at_budget_averages_the_last_points_before_the_budget(tmp_path):
    rows = read_log(_staged(tmp_path))
    assert at_budget(rows, 2.0, window=2)["query_use"] == pytest.approx(1.0)
    assert at_budget(rows, 1.9, window=2)["query_use"] == pytest.approx(0.5)


def test_at_budget_separates_not_reached_from_earlier_stages(tmp_path):
    rows = read_log(_staged(tmp_path))
    assert at_budget(rows, 2.5) is None
    assert math.isnan(at_budget(rows, 1.0)["query_use"])


def test_default_marks_end_at_the_shortest_run(tmp_path):
    runs = {"a": read_log(_staged(tmp_path)), "b": read_log(_plain(tmp_path))}
    assert default_marks(runs) == [0.5, 1.0, 1.2]


def test_compare_runs_table_and_plot(tmp_path, png_plot):
    res = compare_runs({"staged": _staged(tmp_path), "plain": _plain(tmp_path)}, window=1,
                       plot=tmp_path / "c.png")
    last = res["table"][-1]
    assert last["cpu_hours"] == 1.2 and last["plain"]["query_use"] == pytest.approx(0.2)
    assert "earlier stages" in res["markdown"] and res["ends"]["staged"]["step"] == 400
    png_plot(tmp_path / "c.png", (1300, 470))


def test_cli_curves_prints_the_table(tmp_path, capsys):
    _staged(tmp_path), _plain(tmp_path)
    rc = main(["tse", "curves", str(tmp_path / "staged"), str(tmp_path / "plain"), "--at", "1.2",
               "--window", "1", "--plot", str(tmp_path / "c.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "| 1.20 | earlier stages | 0.20 / 0.10 (step 200) |" in out


def test_cli_curves_rejects_a_label_count_mismatch(tmp_path, capsys):
    _staged(tmp_path), _plain(tmp_path)
    rc = main(["tse", "curves", str(tmp_path / "staged"), str(tmp_path / "plain"), "--label", "x",
               "--plot", str(tmp_path / "c.png")])
    assert rc == 1 and "--label" in capsys.readouterr().err
