"""Reading a container's log (`logs.jsonl`, written by `pump.py`): the last N records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BLOCK = 64 * 1024


def tail_lines(path: Path, count: int) -> list[bytes]:
    """The last `count` complete lines of a file (without their newline); [] if absent."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return []
    with f:
        end = f.seek(0, 2)
        pos, data = end, b""
        while pos > 0 and data.count(b"\n") <= count:
            step = min(BLOCK, pos)
            pos -= step
            f.seek(pos)
            data = f.read(step) + data
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a record still being written
    if pos > 0:
        lines = lines[1:]  # may be cut
    return lines[-count:] if count else []


def tail(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` log records `{stream, message}`, oldest first."""
    records = []
    for line in tail_lines(path, count):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and item.get("stream") in ("stdout", "stderr"):
            records.append({"stream": item["stream"], "message": str(item.get("message", ""))})
    return records
