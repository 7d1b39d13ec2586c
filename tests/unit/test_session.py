from __future__ import annotations

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
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
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
