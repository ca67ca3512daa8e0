"""The SSE broker: committed events fanned out to open `GET /api/events` streams.

`publish` is called from any thread (right after a commit, under the store lock): it numbers
the event (a monotonic id, so ids follow commit order), serializes it once, and hands it to
each matching subscriber's event loop with `call_soon_threadsafe`; it never blocks. Each
subscriber has a bounded queue; when it is full the oldest event is dropped and counted, and
the stream then tells its client with an `events_dropped` event `{"dropped": N}`. `close`
ends every stream (used when the server stops).
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

QUEUE_SIZE = 1024


@dataclass(frozen=True)
class Item:
    id: int
    event: str
    data: str


CLOSE = Item(0, "", "")


class Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, tenant_id: str,
                 container_id: str | None, size: int) -> None:
        self.loop = loop
        self.tenant_id = tenant_id
        self.container_id = container_id
        self.queue: asyncio.Queue[Item] = asyncio.Queue(size)
        self.dropped = 0

    def wants(self, tenant_id: str, event: str, data: dict[str, Any]) -> bool:
        if tenant_id != self.tenant_id:
            return False
        if self.container_id is None:
            return True
        return event == "container_update" and data.get("container_id") == self.container_id

    def offer(self, item: Item) -> None:
        """From any thread: queue `item` on the subscriber's loop."""
        try:
            self.loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:  # its loop is closed: nobody is listening any more
            pass

    def _put(self, item: Item) -> None:
        if self.queue.full():
            dropped = self.queue.get_nowait()
            if dropped is not CLOSE:
                self.dropped += 1
        self.queue.put_nowait(item)

    def take_dropped(self) -> int:
        count, self.dropped = self.dropped, 0
        return count


class Broker:
    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._lock = threading.Lock()
        self._subscribers: set[Subscriber] = set()
        self._last_id = 0
        self._closed = False

    def publish(self, tenant_id: str, event: str, data: dict[str, Any]) -> None:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._last_id += 1
            item = Item(self._last_id, event, text)
            targets = [s for s in self._subscribers if s.wants(tenant_id, event, data)]
        for subscriber in targets:
            subscriber.offer(item)

    def subscribe(self, tenant_id: str, container_id: str | None) -> Subscriber:
        """On the event loop: a new subscriber (already closed if the broker is)."""
        subscriber = Subscriber(asyncio.get_running_loop(), tenant_id, container_id,
                                self.queue_size)
        with self._lock:
            if self._closed:
                subscriber.queue.put_nowait(CLOSE)
            else:
                self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(subscriber)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        """From any thread: end every open stream; later subscribers end at once."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
            self._subscribers.clear()
        for subscriber in subscribers:
            subscriber.offer(CLOSE)
