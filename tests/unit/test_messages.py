"""Message envelopes: ids unique within and across processes, checks that reject bad input."""

import multiprocessing
import re

import pytest

from evd import messages


def _ids(count):
    return [messages.make("heartbeat", cps=0, connected=0)["id"] for _ in range(count)]


def test_message_ids_are_unique_and_look_like_uuids():
    ids = _ids(10_000)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_child_does_not_repeat_its_parents_ids():
    _ids(5)  # the parent has used some ids already
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        children = pool.map(_ids, [100, 100])
    ids = _ids(100) + children[0] + children[1]
    assert len(set(ids)) == len(ids)


def test_decode_rejects_what_is_not_a_message():
    for raw, reason in ((b"nope", "not JSON"), (b"[]", "not a JSON object"), (b'{"v": 1}', "missing")):
        with pytest.raises(messages.MalformedMessage, match=reason):
            messages.decode(raw)
