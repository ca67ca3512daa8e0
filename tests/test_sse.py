from hypothesis import given, settings
from hypothesis import strategies as st

from quilt_verify.sse import ServerEvent, SSEParser, parse_stream


def parse(text: str) -> list[ServerEvent]:
    return SSEParser().feed(text)


def test_ready_then_json_event_with_id_and_retry():
    events = parse('event: ready\ndata: {"ok":true}\n\n: keep-alive\n\n'
                   'id: 7\nretry: 1500\nevent: container_update\ndata: {"state":"running"}\n\n')
    assert [e.event for e in events] == ["ready", "container_update"]
    assert events[1].json() == {"state": "running"}
    assert (events[1].id, events[1].retry) == ("7", 1500)


def test_multi_line_data_is_joined_with_newlines():
    (event,) = parse("data: first\ndata:second\ndata:  third\n\n")
    assert event.data == "first\nsecond\n third" and event.event == "message"


def test_crlf_and_bare_cr_line_endings():
    assert parse("event: a\r\ndata: 1\r\n\r\n")[0] == ServerEvent("a", "1")
    assert parse("event: b\rdata: 2\r\r")[0] == ServerEvent("b", "2")


def test_comments_and_empty_events_dispatch_nothing():
    parser = SSEParser()
    assert parser.feed(": hello\n\n: again\n\nevent: x\n\n") == []
    assert parser.comments == 2


def test_incomplete_event_waits_for_the_blank_line():
    parser = SSEParser()
    assert parser.feed("data: 1\n") == []
    assert parser.feed("\n") == [ServerEvent("message", "1")]


def test_id_persists_and_bom_is_dropped():
    events = parse("\ufeffid: 1\ndata: a\n\ndata: b\n\n")
    assert [(e.id, e.data) for e in events] == [("1", "a"), ("1", "b")]


def test_non_json_data_is_none():
    assert parse("data: not json\n\n")[0].json() is None


STREAM = ('event: ready\r\ndata: {"a": "\u00e9"}\r\n\r\n: ka\r\n\r\nid: 2\nevent: x\n'
          'data: l1\rdata: l2\r\n\r\n')


@given(st.lists(st.integers(1, len(STREAM.encode()) - 1), unique=True, max_size=12))
@settings(max_examples=200)
def test_any_chunking_gives_the_same_events(cuts):
    raw = STREAM.encode("utf-8")
    bounds = [0, *sorted(cuts), len(raw)]
    chunks = [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    events = list(parse_stream(chunks))
    assert events == [ServerEvent("ready", '{"a": "\u00e9"}'), ServerEvent("x", "l1\nl2", "2")]
