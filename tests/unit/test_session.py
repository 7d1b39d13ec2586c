from __future__ import annotations

import time

import pytest

from litestar_ws_otel.config import Direction
from litestar_ws_otel.redaction import truncate_text, utf8_size
from litestar_ws_otel.session import PreviewPolicy, Session, SessionState

CAPTURE = PreviewPolicy(capture_payloads=True, max_payload_bytes=8, capture_binary_preview=True, binary_preview_bytes=4)
NO_CAPTURE = PreviewPolicy(
    capture_payloads=False, max_payload_bytes=8, capture_binary_preview=True, binary_preview_bytes=4
)


def make_session(policy: PreviewPolicy = CAPTURE, max_messages: int = 3) -> Session:
    return Session(policy=policy, max_messages=max_messages, path="/p")


@pytest.mark.parametrize("text", ["", "abc", "é", "日本語", "🎉x", "a" * 5000, "é" * 5000])
def test_utf8_size_is_the_encoded_length(text: str) -> None:
    assert utf8_size(text) == len(text.encode())


def test_utf8_size_counts_lone_surrogates_without_raising() -> None:
    assert utf8_size("a\ud800") == 4


@pytest.mark.parametrize(
    ("text", "limit", "expected", "truncated"),
    [
        ("hello", 8, "hello", False),
        ("hello world", 5, "hello", True),
        ("", 4, "", False),
        ("ééé", 4, "éé", True),  # 6 bytes; a cut at 4 keeps two whole characters
        ("ééé", 5, "éé", True),  # never half a character
        ("ééé", 6, "ééé", False),
        ("🎉🎉", 5, "🎉", True),
        ("a🎉", 4, "a", True),
    ],
)
def test_truncate_text_cuts_on_a_character_boundary(text: str, limit: int, expected: str, truncated: bool) -> None:
    preview, was_truncated = truncate_text(text, limit)
    assert preview == expected
    assert was_truncated is truncated
    assert len(preview.encode()) <= limit


def test_truncate_text_of_a_huge_message_keeps_only_the_limit() -> None:
    preview, truncated = truncate_text("x" * 1_000_000, 1024)
    assert preview == "x" * 1024
    assert truncated


def test_truncate_text_turns_lone_surrogates_into_valid_utf8() -> None:
    preview, _ = truncate_text("é\ud800z", 16)
    preview.encode("utf-8")  # would raise on a lone surrogate
    assert preview == "é?z"


def test_counters_count_every_message_and_ring_keeps_the_newest() -> None:
    session = make_session(max_messages=3)
    for index in range(5):
        session.on_message("received", f"m{index}")
    session.on_message("sent", b"\x00\x01")
    assert session.messages_received == 5
    assert session.messages_sent == 1
    assert session.bytes_received == 10
    assert session.bytes_sent == 2
    records = session.records()
    assert [(r.direction, r.message_id) for r in records] == [
        ("received", 4),
        ("received", 5),
        ("sent", 1),
    ]
    assert session.messages_dropped == 3


def test_records_carry_type_size_and_preview() -> None:
    session = make_session()
    session.on_message("received", "héllo world")
    session.on_message("sent", b"\xde\xad\xbe\xef\x00")
    session.on_message("sent", "")
    text, binary, empty = session.records()
    assert (text.kind, text.size, text.payload, text.truncated) == ("text", 12, "héllo w", True)
    assert (binary.kind, binary.size, binary.payload, binary.truncated) == (
        "binary",
        5,
        "deadbeef",
        True,
    )
    assert (empty.kind, empty.size, empty.payload, empty.truncated) == ("text", 0, "", False)
    assert text.time_ns <= binary.time_ns <= empty.time_ns


def test_no_preview_when_capture_is_off() -> None:
    session = make_session(NO_CAPTURE)
    session.on_message("received", "secret")
    assert session.records()[0].payload is None
    assert session.records()[0].size == 6


def test_binary_preview_needs_its_own_switch() -> None:
    policy = PreviewPolicy(
        capture_payloads=True,
        max_payload_bytes=8,
        capture_binary_preview=False,
        binary_preview_bytes=4,
    )
    session = make_session(policy)
    session.on_message("received", b"\x01\x02")
    session.on_message("received", "text")
    assert [r.payload for r in session.records()] == [None, "text"]


def test_redact_payload_sees_the_whole_payload_and_its_result_is_truncated() -> None:
    seen: list[tuple[str | bytes, Direction]] = []

    def redact(payload: str | bytes, direction: Direction) -> str | bytes | None:
        seen.append((payload, direction))
        if payload == "drop":
            return None
        return str(payload).replace("password=hunter2", "password=***")

    policy = PreviewPolicy(True, 32, True, 4, redact_payload=redact)
    session = make_session(policy)
    session.on_message("received", "user=bob&password=hunter2")
    session.on_message("sent", "drop")
    assert [r.payload for r in session.records()] == ["user=bob&password=***", None]
    assert seen == [("user=bob&password=hunter2", "received"), ("drop", "sent")]


def test_a_failing_redactor_drops_the_preview_and_reports() -> None:
    errors: list[BaseException] = []

    def broken(payload: str | bytes, direction: Direction) -> str | bytes | None:
        raise KeyError("oops")

    policy = PreviewPolicy(True, 32, True, 4, redact_payload=broken, on_redact_error=errors.append)
    session = make_session(policy)
    session.on_message("received", "token=abc")
    assert session.records()[0].payload is None
    assert session.messages_received == 1
    assert isinstance(errors[0], KeyError)


def test_lifecycle_keeps_the_first_close_and_first_exception() -> None:
    session = make_session()
    assert session.state is SessionState.CONNECTING
    session.on_accept("chat.v1")
    session.on_accept("other")
    assert session.state is SessionState.OPEN
    assert session.subprotocol == "chat.v1"
    first = RuntimeError("first")
    session.on_exception(first)
    session.on_exception(ValueError("cleanup"))
    session.on_close(4001, "bye", "server")
    session.on_close(1000, "", "client")
    assert session.exception is first
    assert session.close is not None
    assert (session.close.code, session.close.reason, session.close.initiator) == (
        4001,
        "bye",
        "server",
    )
    assert session.state is SessionState.CLOSED


def test_client_gone_is_1006_from_the_client() -> None:
    session = make_session()
    session.on_client_gone()
    assert session.close is not None
    assert (session.close.code, session.close.initiator) == (1006, "client")


def test_a_close_frame_read_after_a_failed_send_replaces_the_guess() -> None:
    """A broadcast that races the client's close fails before the close frame is read: the frame is the truth."""
    session = make_session()
    session.on_client_gone()
    session.on_close(1000, "bye", "client")
    assert session.close is not None
    assert (session.close.code, session.close.reason, session.close.initiator) == (1000, "bye", "client")
    session.on_close(1011, "", "server")  # after the truth, the first close stands again
    assert session.close.code == 1000


def test_a_failed_send_does_not_rewrite_a_close_already_seen() -> None:
    session = make_session()
    session.on_close(4001, "done", "server")
    session.on_client_gone()
    assert session.close is not None
    assert (session.close.code, session.close.reason) == (4001, "done")


def test_denial_keeps_the_first_status() -> None:
    session = make_session()
    session.on_denial(401)
    session.on_denial(403)
    assert session.denial_status == 401
    assert session.state is SessionState.CLOSED


def test_finish_happens_once() -> None:
    session = make_session()
    assert session.finish() is True
    ended = session.ended_ns
    assert session.finish() is False
    assert session.ended_ns == ended


def test_a_redactor_returning_the_wrong_type_fails_closed() -> None:
    errors: list[BaseException] = []
    policy = PreviewPolicy(True, 32, True, 4, redact_payload=lambda p, d: 42, on_redact_error=errors.append)  # type: ignore[arg-type,return-value]
    session = make_session(policy)
    session.on_message("received", "secret")
    assert session.records()[0].payload is None
    assert session.messages_dropped == 0
    assert "must return str, bytes or None, got int" in str(errors[0])


def test_an_oserror_after_the_client_left_is_not_the_handlers_error() -> None:
    session = make_session()
    session.on_client_gone()
    assert session.on_exception(ConnectionResetError()) is False
    assert session.exception is None
    assert session.on_exception(RuntimeError("real")) is True


def _reference_ring(messages: list[tuple[Direction, str | bytes]], keep: int) -> list[tuple[str, int, int, str]]:
    """What the ring must hold: the newest ``keep`` messages with their per-direction ids."""
    counts = {"received": 0, "sent": 0}
    records = []
    for direction, payload in messages:
        counts[direction] += 1
        kind = "text" if isinstance(payload, str) else "binary"
        records.append((direction, counts[direction], len(payload), kind))
    return records[-keep:]


@pytest.mark.parametrize("keep", [1, 2, 7, 100])
def test_ring_ids_sizes_and_types_match_every_message_kept(keep: int) -> None:
    """Ids are not stored but numbered back from the counters; check them across many wraps."""
    messages: list[tuple[Direction, str | bytes]] = []
    for index in range(1, 400):
        direction: Direction = "sent" if index % 3 == 0 or index % 7 == 0 else "received"
        messages.append((direction, "t" * (index % 13) if index % 5 else b"b" * (index % 11)))
    session = make_session(NO_CAPTURE, max_messages=keep)
    for number, (direction, payload) in enumerate(messages, start=1):
        session.on_message(direction, payload)
        if number % 37 == 0 or number == len(messages):
            kept = [(r.direction, r.message_id, r.size, r.kind) for r in session.records()]
            assert kept == _reference_ring(messages[:number], keep)
    assert session.messages_dropped == len(messages) - keep


def test_ring_storage_stays_fixed_however_many_messages_pass() -> None:
    """The ring is one buffer of ``max_messages + 1`` slots (and as many preview slots), never more."""
    import tracemalloc

    session = make_session(CAPTURE, max_messages=50)
    session.on_message("received", "warm")
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for index in range(20_000):
            session.on_message("received" if index % 2 else "sent", f"message {index}")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # A tracer of calls, such as mutmut's, keeps its own notes while the loop runs: not the ring's.
    not_a_tracer = [tracemalloc.Filter(False, "*/mutmut/*")]
    grown = sum(
        stat.size_diff
        for stat in after.filter_traces(not_a_tracer).compare_to(before.filter_traces(not_a_tracer), "filename")
    )
    # 50 kept previews of about 64 bytes each; the 20,000 messages themselves are gone.
    assert grown < 50 * 100
    assert len(session.records()) == 50
    newest = session.records()[-1]
    assert (newest.direction, newest.message_id, newest.payload, newest.truncated) == (
        "received",
        10_001,
        "message ",
        True,
    )


def test_snapshots_on_another_thread_are_consistent() -> None:
    """A reader thread never sees a torn record: each payload matches its id, ids are consecutive."""
    import sys
    import threading

    session = make_session(CAPTURE, max_messages=16)
    done = threading.Event()
    problems: list[str] = []
    snapshots = 0

    def read() -> None:
        nonlocal snapshots
        while not done.is_set():
            records = session.records()
            snapshots += 1
            last: dict[str, int] = {}
            for record in records:
                if record.payload != f"{record.direction[0]}{record.message_id}"[:8]:
                    problems.append(f"{record}")
                previous = last.get(record.direction)
                if previous is not None and record.message_id != previous + 1:
                    problems.append(f"gap before {record}")
                last[record.direction] = record.message_id

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    reader = threading.Thread(target=read)
    reader.start()
    try:
        counts = {"received": 0, "sent": 0}
        for index in range(100_000):
            direction: Direction = "sent" if index % 3 == 0 else "received"
            counts[direction] += 1
            session.on_message(direction, f"{direction[0]}{counts[direction]}"[:8])
    finally:
        done.set()
        reader.join(timeout=30)
        sys.setswitchinterval(interval)
    assert not reader.is_alive()
    assert snapshots > 0
    assert problems == []


# --- previews at their edges --------------------------------------------------------------------


def test_a_preview_of_exactly_the_limit_is_not_truncated() -> None:
    session = make_session(CAPTURE, max_messages=6)  # previews of 8 bytes of text, 4 of binary
    session.on_message("received", "12345678")
    session.on_message("received", "123456789")
    session.on_message("sent", b"\x01\x02\x03\x04")
    session.on_message("sent", b"\x01\x02\x03\x04\x05")
    session.on_message("received", "éééé")  # 8 bytes in 4 characters
    session.on_message("received", "éééé!")
    assert [(r.payload, r.truncated) for r in session.records()] == [
        ("12345678", False),
        ("12345678", True),
        ("01020304", False),
        ("01020304", True),
        ("éééé", False),
        ("éééé", True),
    ]


def _fail(payload: str | bytes, direction: Direction) -> str | bytes | None:
    raise ValueError("redactor bug")


@pytest.mark.parametrize(
    ("policy", "text_too"),
    [
        (PreviewPolicy(False, 8, True, 4), True),
        (PreviewPolicy(True, 8, False, 4), False),
        (PreviewPolicy(True, 8, True, 4, redact_payload=lambda payload, direction: None), True),
        (PreviewPolicy(True, 8, True, 4, redact_payload=_fail), True),
    ],
    ids=["capture-off", "binary-preview-off", "redactor-returns-none", "redactor-raises"],
)
def test_a_payload_without_preview_is_never_marked_truncated(policy: PreviewPolicy, text_too: bool) -> None:
    long_binary, long_text = b"\x00" * 100, "x" * 100
    assert policy.preview(long_binary, "received") == (None, False)
    if text_too:
        assert policy.preview(long_text, "sent") == (None, False)
    session = make_session(policy)
    session.on_message("received", long_binary)
    assert [(r.payload, r.truncated) for r in session.records()] == [(None, False)]


def test_the_redactor_sees_empty_and_one_character_text() -> None:
    """Short text skips the preview machinery only when no redactor must see it first."""
    seen: list[str | bytes] = []

    def redact(payload: str | bytes, direction: Direction) -> str | bytes | None:
        seen.append(payload)
        return "*"

    session = make_session(PreviewPolicy(True, 8, True, 4, redact_payload=redact))
    session.on_message("received", "")
    session.on_message("sent", "a")
    assert seen == ["", "a"]
    assert [r.payload for r in session.records()] == ["*", "*"]


def test_short_ascii_text_is_its_own_preview_without_asking_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path: text that fits is kept as it is; only longer text (or none kept) needs the policy."""
    asked: list[str | bytes] = []
    original = PreviewPolicy.preview

    def spy(self: PreviewPolicy, payload: str | bytes, direction: Direction) -> tuple[str | None, bool]:
        asked.append(payload)
        return original(self, payload, direction)

    monkeypatch.setattr(PreviewPolicy, "preview", spy)
    session = make_session(CAPTURE)
    session.on_message("received", "")
    session.on_message("received", "12345678")  # exactly max_payload_bytes
    assert asked == []
    session.on_message("received", "123456789")
    assert asked == ["123456789"]
    quiet = make_session(NO_CAPTURE)
    quiet.on_message("received", "x" * 100)
    quiet.on_message("sent", b"\x00" * 100)
    assert asked == ["123456789"]  # nothing is kept: the policy is never asked
    assert [r.payload for r in session.records()] == ["", "12345678", "12345678"]


# --- counters -----------------------------------------------------------------------------------


def test_a_new_session_starts_empty() -> None:
    session = Session(policy=CAPTURE, max_messages=3)
    assert session.path == ""
    assert session.state is SessionState.CONNECTING
    assert (session.exception, session.exception_ns, session.close, session.ended_ns) == (None, None, None, None)
    assert (session.messages_received, session.messages_sent, session.malformed_messages) == (0, 0, 0)
    assert (session.bytes_received, session.bytes_sent, session.binary_received, session.binary_sent) == (0, 0, 0, 0)
    assert session.records() == []


def test_counters_add_every_message_in_each_direction() -> None:
    """``bytes_sent`` is a sum, not the last message's size; binary messages are counted apart."""
    session = make_session(NO_CAPTURE)
    session.on_message("sent", b"\x00" * 5)
    session.on_message("sent", b"\x00" * 7)
    session.on_message("sent", "abc")
    session.on_message("received", b"\x00" * 2)
    session.on_message("received", b"\x00" * 3)
    session.on_message("received", "hé")
    assert (session.messages_sent, session.bytes_sent, session.binary_sent) == (3, 15, 2)
    assert (session.messages_received, session.bytes_received, session.binary_received) == (3, 8, 2)


def test_malformed_messages_are_counted_apart_and_never_kept() -> None:
    session = make_session()
    session.on_message("received", {"text": "a dict"})  # type: ignore[arg-type]
    session.on_message("sent", 42)  # type: ignore[arg-type]
    session.on_message("received", "ok")
    assert session.malformed_messages == 2
    assert (session.messages_received, session.messages_sent, session.bytes_received) == (1, 0, 2)
    assert [r.payload for r in session.records()] == ["ok"]


def test_on_exception_keeps_the_time_of_the_first_exception() -> None:
    session = make_session()
    before = time.time_ns()
    session.on_exception(RuntimeError("first"))
    first_ns = session.exception_ns
    assert first_ns is not None
    assert before <= first_ns <= time.time_ns()
    session.on_exception(RuntimeError("second"))
    assert session.exception_ns == first_ns


# --- the close ----------------------------------------------------------------------------------


def test_client_gone_leaves_the_close_reason_empty_not_none() -> None:
    session = make_session()
    session.on_client_gone()
    assert session.close is not None
    assert session.close.reason == ""
    assert session.state is SessionState.CLOSED


def test_finish_marks_an_open_session_closed() -> None:
    session = make_session()
    session.on_accept(None)
    assert session.finish() is True
    assert session.state is SessionState.CLOSED


# --- readers on other threads -------------------------------------------------------------------


def test_a_read_torn_by_the_writer_returns_what_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that laps a slow reader ends the read at the reused slot: the newer records come back, no error."""
    import litestar_ws_otel.session as session_module

    session = make_session(CAPTURE, max_messages=3)  # 4 slots
    for text in ("m0", "m1", "m2"):
        session.on_message("received", text)
    unpack = session_module._unpack_record
    writes = iter([("m3", "m4")])

    def unpack_while_the_writer_runs(buffer: bytearray, offset: int = 0) -> tuple[int, int, int, int, int]:
        for texts in writes:  # once, as the reader takes its first slot: m4 reuses m0's slot
            for text in texts:
                session.on_message("received", text)
        return unpack(buffer, offset)

    monkeypatch.setattr(session_module, "_unpack_record", unpack_while_the_writer_runs)
    records, next_sequence = session.records_since(0)
    assert [r.payload for r in records] == ["m1", "m2"]
    assert next_sequence == 3
    monkeypatch.undo()
    assert [r.payload for r in session.records()] == ["m2", "m3", "m4"]
