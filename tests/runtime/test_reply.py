"""Replies: first outcome wins; a batch of answers for one receiver is one delivery."""

from __future__ import annotations

from atoma_actors.runtime.reply import BatchReply, Reply, deliver_all


def test_a_reply_delivers_once():
    got = []
    reply = Reply(got.append)
    assert reply("a") is True
    assert reply("b") is False
    assert got == ["a"] and reply.done


def test_deliver_all_hands_each_sink_its_answers_in_one_call_in_order():
    calls: list[list] = []
    other: list[list] = []
    plain: list = []
    replies = [BatchReply(calls.append, i) for i in range(3)]
    answered = BatchReply(calls.append, 99)
    answered("early")  # already answered: skipped by deliver_all
    elsewhere = BatchReply(other.append, "x")
    deliver_all(
        [
            (replies[0], "r0"),
            (elsewhere, "rx"),
            (replies[1], "r1"),
            (Reply(plain.append), "p"),
            (answered, "late"),
            (replies[2], "r2"),
        ]
    )
    assert calls == [[(99, "early")], [(0, "r0"), (1, "r1"), (2, "r2")]]
    assert other == [[("x", "rx")]]
    assert plain == ["p"]
    assert all(r.done for r in replies)


def test_a_failing_sink_does_not_stop_the_others(caplog):
    def broken(_items):
        raise RuntimeError("receiver gone")

    got: list = []
    deliver_all([(BatchReply(broken, 1), "a"), (BatchReply(got.append, 2), "b")])
    assert got == [[(2, "b")]]
    assert "could not be delivered" in caplog.text
