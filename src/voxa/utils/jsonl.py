"""JSON-lines files (one JSON object a line): the one reader every index and manifest uses.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "rows.jsonl")
    >>> _ = open(path, "w").write('{"id": "a"}\\n\\n{"id": "b"}\\n')
    >>> [r["id"] for r in read_jsonl(path)]
    ['a', 'b']
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxa.errors import VoxaError


def iter_jsonl(path: str | os.PathLike, error: type[VoxaError] = VoxaError
               ) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line, streamed.

    Raises:
        error: naming ``path:line`` for a line that is not JSON or not a JSON object.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{n}: a row must be a JSON object")
            yield n, row


def read_jsonl(path: str | os.PathLike, error: type[VoxaError] = VoxaError) -> list[dict[str, Any]]:
    """Every row of a JSON-lines file (see :func:`iter_jsonl`)."""
    return [row for _, row in iter_jsonl(path, error)]
