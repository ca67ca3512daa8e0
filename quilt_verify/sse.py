"""Server-sent events: an incremental parser (per the WHATWG event-stream rules).

Handles LF, CRLF and bare CR line endings (also split across chunks), comments, multi-line
``data``, ``id`` and ``retry`` fields, and a BOM at the start of the stream.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServerEvent:
    event: str
    data: str
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The ``data`` as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class SSEParser:
    """Feed text chunks; get complete events. Comments are counted, not returned."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._retry: int | None = None
        self.last_event_id: str | None = None
        self.comments = 0

    def feed(self, chunk: str) -> list[ServerEvent]:
        if not self._started and chunk:
            self._started = True
            chunk = chunk.removeprefix("\ufeff")
        if self._pending_cr and chunk.startswith("\n"):
            chunk = chunk[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = False
        self._buffer += chunk
        events: list[ServerEvent] = []
        while True:
            cut = _line_end(self._buffer)
            if cut is None:
                break
            line, ending = self._buffer[:cut], self._buffer[cut]
            if ending == "\r" and cut + 1 == len(self._buffer):
                self._pending_cr = True  # maybe the CR of a CRLF; the LF may come next
                self._buffer = ""
            else:
                skip = 2 if self._buffer.startswith("\r\n", cut) else 1
                self._buffer = self._buffer[cut + skip:]
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
            self._has_data = True
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None

    def _dispatch(self) -> ServerEvent | None:
        if not self._has_data:
            self._event = ""
            return None
        event = ServerEvent(self._event or "message", "\n".join(self._data), self.last_event_id,
                            self._retry)
        self._event, self._data, self._has_data = "", [], False
        return event


def _line_end(buffer: str) -> int | None:
    positions = [i for i in (buffer.find("\r"), buffer.find("\n")) if i >= 0]
    return min(positions) if positions else None


def parse_stream(chunks: Iterable[bytes]) -> Iterator[ServerEvent]:
    """Decode UTF-8 incrementally and yield events from a byte stream."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(decoder.decode(chunk))
    yield from parser.feed(decoder.decode(b"", final=True))
