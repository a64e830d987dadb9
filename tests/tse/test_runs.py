import math

import pytest

from voxa.cli.main import main
from voxa.errors import VoxaError
from voxa.tse.runs import at_budget, compare_runs, default_marks, read_log

HEADER = "epoch,step,train_loss,valid_loss,lr,seconds,cpu_hours,si_sdri,stage,query_use\n"


def _log(path, rows):
    """rows: (step, cpu_hours, si_sdri, query_use or None)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"0,{s},0,0,0.001,0,{h},{si},0,{'' if q is None else q}\n" for s, h, si, q in rows]
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


def test_read_log_without_query_use_column_names_the_file(tmp_path):
    p = tmp_path / "train_log.csv"
    p.write_text("step,cpu_hours\n1,0.1\n")
    with pytest.raises(VoxaError, match="train_log.csv.*query_use"):
        read_log(p)


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
