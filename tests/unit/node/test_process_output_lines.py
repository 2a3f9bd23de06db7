"""How a child's output becomes the daemon's stdout lines (pure): named, one line at a time, cut to a
bound, secrets a redis process may print redacted."""

from __future__ import annotations

import pytest

from recluster.node.processes import MAX_LINE, _Stream, redact

pytestmark = pytest.mark.unit


def test_lines_are_named_and_split_across_reads() -> None:
    stream = _Stream(0, "shard of bdb 3")
    named = b"[shard of bdb 3] "
    assert stream.lines(b"1:M * Server initialized\n2:M * Ready") == [named + b"1:M * Server initialized\n"]
    assert stream.lines(b" to accept connections\r\n") == [named + b"2:M * Ready to accept connections\n"]
    assert stream.lines(b"no newline at the end") == []
    assert stream.rest() == [b"[shard of bdb 3] no newline at the end\n"]


def test_a_line_without_end_is_cut_and_memory_stays_bounded() -> None:
    stream = _Stream(0, "sentinel")
    out = []
    for _ in range(100):  # 6.4 MB without a newline
        out += stream.lines(b"y" * 65536)
        assert len(stream.partial) < MAX_LINE
    out += stream.lines(b"end of the long line\nnext\n")
    assert len(out) == 2
    assert out[0].startswith(b"[sentinel] yyy") and out[0].endswith(b" [...]\n") and len(out[0]) == MAX_LINE
    assert out[1] == b"[sentinel] next\n"
    assert stream.rest() == []


def test_secrets_a_redis_process_may_print_are_redacted() -> None:
    assert redact(b">>> 'requirepass \"s3cret\" \"extra\"'") == b">>> 'requirepass <redacted>'"
    assert redact(b">>> 'masterauth s3cret'") == b">>> 'masterauth <redacted>'"
    assert redact(b">>> 'user default on >s3cret ~* +@all'") == b">>> 'user <redacted>'"
    assert redact(b">>> 'sentinel auth-pass db1 s3cret'") == b">>> 'sentinel auth-pass <redacted>'"
    assert redact(b"+set master db1 10.0.0.1 10000 auth-pass s3cret") == (
        b"+set master db1 10.0.0.1 10000 auth-pass <redacted>")
    kept = [b"+set master db1 10.0.0.1 10000 auth-pass ******", b">>> 'port 70000'",
            b"1:M 01 Jan 2026 00:00:00.000 * Ready to accept connections tcp",
            b"1:X * +monitor master db1 10.0.0.1 10000 quorum 2"]
    assert [redact(line) for line in kept] == kept
    assert b"s3cret" not in _Stream(0, "ccs").lines(b">>> 'requirepass s3cret'\n")[0]
