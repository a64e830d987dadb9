"""What a task run hands back: its results (the ``results.json`` mapping) and the table people read.

Library functions write ``results.json`` and return a :class:`Results`; only the CLI prints its
``table``.

Example:
    >>> import tempfile
    >>> res = finish(tempfile.mkdtemp(), {"accuracy": 0.9, "n_test": 10}, title="digits")
    >>> print(res.table)
    digits
    ----------------------
    accuracy      0.9000
    n_test            10
    >>> res["accuracy"]
    0.9
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from voxa.utils.atomic import write_text_atomic

__all__ = ["Results", "finish", "format_table"]


class Results(dict):
    """A task's results; ``table`` is the human-readable summary the CLI prints."""

    table: str = ""


def format_table(values: dict[str, Any], title: str) -> str:
    """The numeric entries of ``values`` as an aligned two-column table under ``title``."""
    rows = [(k, v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    width = max(len(k) for k, _ in rows) if rows else 10
    lines = [title, "-" * (width + 14)]
    for k, v in rows:
        lines.append(f"{k:<{width}}  {v:>10.4f}" if isinstance(v, float) else f"{k:<{width}}  {v:>10d}")
    return "\n".join(lines)


def finish(exp: str | os.PathLike, results: dict[str, Any], table: str | None = None,
           title: str | None = None) -> Results:
    """Write ``exp/results.json`` atomically and return the results with their table.

    Args:
        exp: the experiment folder.
        results: JSON-ready results.
        table: the summary text; if ``None``, :func:`format_table` of ``results`` under ``title``.
        title: the table's title when ``table`` is ``None``.
    """
    write_text_atomic(Path(exp) / "results.json", json.dumps(results, indent=2, sort_keys=False))
    out = Results(results)
    out.table = table if table is not None else format_table(results, title or "results")
    return out
