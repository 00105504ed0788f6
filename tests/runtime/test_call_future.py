"""`CallFuture`: the facade's `concurrent.futures.Future` on a light condition behaves as one."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest

from atoma_actors.client.futures import CallFuture


def _later(fn, *args) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args)
    thread.start()
    return thread


def test_result_waits_for_another_thread_and_times_out_when_nothing_comes():
    future: CallFuture[int] = CallFuture()
    with pytest.raises(cf.TimeoutError):
        future.result(timeout=0.01)
    ready = threading.Event()
    waiting = []

    def waiter():
        ready.set()
        waiting.append(future.result(timeout=5))

    threads = [_later(waiter) for _ in range(4)]  # several waiters, all woken
    ready.wait(5)
    future.set_running_or_notify_cancel()
    future.set_result(7)
    for thread in threads:
        thread.join(5)
    assert waiting == [7, 7, 7, 7]
    assert future.done() and not future.cancelled()


def test_exception_callbacks_and_cancel():
    seen = []
    failed: CallFuture[int] = CallFuture()
    failed.add_done_callback(lambda f: seen.append(type(f.exception()).__name__))
    failed.set_exception(KeyError("x"))
    with pytest.raises(KeyError):
        failed.result(timeout=1)
    assert seen == ["KeyError"]
    cancelled: CallFuture[int] = CallFuture()
    assert cancelled.cancel()
    assert not cancelled.set_running_or_notify_cancel()  # the settler skips it
    with pytest.raises(cf.CancelledError):
        cancelled.result(timeout=1)


def test_wait_and_as_completed_take_its_condition():
    futures = [CallFuture() for _ in range(3)]
    futures[0].set_result(0)
    done, not_done = cf.wait(futures, timeout=0.01)
    assert done == {futures[0]} and len(not_done) == 2
    _later(futures[1].set_result, 1).join(5)
    thread = _later(futures[2].set_result, 2)
    assert sorted(f.result() for f in cf.as_completed(futures, timeout=5)) == [0, 1, 2]
    thread.join(5)
    first, _ = cf.wait([CallFuture(), futures[2]], return_when=cf.FIRST_COMPLETED, timeout=5)
    assert first == {futures[2]}
