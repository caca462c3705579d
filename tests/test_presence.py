"""Presence and typing decisions on an injected clock (the live tests cannot wait a minute)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loopline.realtime.presence import OFFLINE_AFTER, TYPING_TTL, PresenceBoard, PresenceChanged, TypingStopped

T0 = datetime(2024, 6, 17, 8, 0, tzinfo=UTC)


def test_typing_stops_by_itself_after_12_seconds_without_a_refresh() -> None:
    board = PresenceBoard()
    assert board.typing_changed("thread", "lena", "start", T0, customer=False)
    assert board.expire(T0 + TYPING_TTL - timedelta(milliseconds=1)) == []
    # A refresh starts the 12 seconds again.
    board.typing_changed("thread", "lena", "start", T0 + timedelta(seconds=10), customer=False)
    assert board.expire(T0 + TYPING_TTL + timedelta(seconds=1)) == []
    assert board.expire(T0 + timedelta(seconds=10) + TYPING_TTL) == [TypingStopped("thread", "lena", customer=False)]
    assert board.expire(T0 + timedelta(minutes=5)) == []


def test_an_explicit_stop_is_heard_once() -> None:
    board = PresenceBoard()
    board.typing_changed("thread", "gil", "start", T0, customer=True)
    assert board.typing_changed("thread", "gil", "stop", T0, customer=True)
    assert not board.typing_changed("thread", "gil", "stop", T0, customer=True)
    assert board.expire(T0 + TYPING_TTL) == []


def test_the_liveliest_process_decides_and_offline_comes_60_seconds_after_the_last_socket() -> None:
    board = PresenceBoard()
    assert board.report("lena", "a", "idle", T0) == PresenceChanged("lena", "idle")
    assert board.report("lena", "b", "active", T0) == PresenceChanged("lena", "active")
    assert board.report("lena", "b", "gone", T0 + timedelta(seconds=1)) == PresenceChanged("lena", "idle")
    assert board.report("lena", "a", "gone", T0 + timedelta(seconds=2)) is None
    assert board.expire(T0 + timedelta(seconds=2) + OFFLINE_AFTER - timedelta(milliseconds=1)) == []
    assert board.presence("lena") == "idle"
    assert board.expire(T0 + timedelta(seconds=2) + OFFLINE_AFTER) == [PresenceChanged("lena", "offline")]
    assert board.presence("lena") == "offline"


def test_coming_back_within_the_minute_never_shows_offline() -> None:
    board = PresenceBoard()
    board.report("lena", "a", "active", T0)
    board.report("lena", "a", "gone", T0)
    assert board.report("lena", "b", "active", T0 + timedelta(seconds=30)) is None
    assert board.expire(T0 + timedelta(minutes=5)) == []
    assert board.presence("lena") == "active"
