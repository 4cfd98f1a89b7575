# SPDX-License-Identifier: Apache-2.0
"""The Python binding between real processes: Python owners with C++ and Python pushers and the
reverse, exceptions per error code, the GIL released while parked, zero-copy views, numpy.

Run by ctest (tests/CMakeLists.txt) with PYTHONPATH at the build's python/ and BLOCCS_CPP_PEER
at tests/python/cpp_peer.cpp's program. Every test has its own namespace and leaves nothing in
/dev/shm."""
import itertools
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import bloccs

PEER_KEY = ("py", "peer", "in")
KEY = ("net", "node", "in")


_namespaces = itertools.count()


@pytest.fixture
def ns(monkeypatch):
    """A namespace of the test's own, also the default one of the processes it starts."""
    name = f"t-py-{os.getpid()}-{next(_namespaces)}"
    monkeypatch.setenv("BLOCCS_NAMESPACE", name)
    yield name
    left = f"/dev/shm/bloccs.{name}"
    assert not os.path.exists(left) or not os.listdir(left), f"left behind: {os.listdir(left)}"
    if os.path.exists(left):
        os.rmdir(left)


def cpp_peer(*args):
    return [os.environ["BLOCCS_CPP_PEER"], *map(str, args)]


def test_a_python_owner_receives_from_a_cpp_pusher_with_meta(ns):
    with bloccs.Port.start(PEER_KEY, buffer=64, ns=ns) as port:
        pusher = subprocess.run(cpp_peer("push", 20), timeout=60)
        assert pusher.returncode == 0
        first = port.receive(timeout=10)
        assert (first.payload, first.attempt, first.meta) == (b"m0", 1, {"i": "0"})
        rest = []
        while len(rest) < 19:
            rest += port.receive_batch(max=8, timeout=10)
        assert [m.payload for m in rest] == [f"m{i}".encode() for i in range(1, 20)]
        assert [m.meta["i"] for m in rest] == [str(i) for i in range(1, 20)]
        stats = port.stats()
        assert stats.depth == 0
        times = stats.time_in_queue
        assert times.count == 20
        assert 0 < times.p50 <= times.p99 <= times.max <= times.total
        assert stats.pushes_waited == 0 and stats.waited == 0.0


def test_a_port_without_the_histogram_keeps_no_time_in_queue(ns):
    with bloccs.Port.start(PEER_KEY, buffer=64, ns=ns, latency_histogram=False) as port:
        assert subprocess.run(cpp_peer("push", 3), timeout=60).returncode == 0
        got = []
        while len(got) < 3:
            got += port.receive_batch(max=8, timeout=10)
        assert port.stats().time_in_queue.count == 0


def test_a_cpp_owner_receives_from_python_pushers(ns):
    owner = subprocess.Popen(cpp_peer("own", 6), stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "ready"
        pusher = bloccs.Pusher(ns)
        for i in range(3):
            pusher.push(PEER_KEY, f"p{i}".encode(), meta={"i": str(i)}, attempt=2)
        # A pusher of another process, and the module's own push.
        code = (f"import bloccs\n"
                f"for i in range(3, 6): bloccs.push({PEER_KEY!r}, b'p%d' % i, meta={{'i': str(i)}}, attempt=2)\n")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
        out, _ = owner.communicate(timeout=60)
    finally:
        owner.kill() if owner.poll() is None else None
    assert owner.returncode == 0
    assert out.split("\n")[:6] == [f"p{i} 2 {i}" for i in range(6)]


def test_errors_are_exceptions_whose_class_is_the_code(ns):
    with bloccs.Port.start(KEY, buffer=1, max_payload=64, ns=ns) as port:
        with pytest.raises(bloccs.Timeout) as e:
            port.receive(timeout=0)
        assert e.value.code == "timeout" and isinstance(e.value, TimeoutError)
        with pytest.raises(bloccs.Timeout):
            port.receive(timeout=0.02)
        with pytest.raises(bloccs.AlreadyExists):
            bloccs.Port.start(KEY, ns=ns)
        pusher = bloccs.Pusher(ns)
        with pytest.raises(bloccs.PayloadTooLarge) as e:
            pusher.push(KEY, bytes(65))
        assert "64" in str(e.value)
        pusher.push(KEY, b"fills it")
        with pytest.raises(bloccs.Timeout):
            pusher.push(KEY, b"no room", timeout=0.02)
        with pytest.raises(bloccs.BadMeta):
            pusher.push(KEY, b"x", meta={"k": "v" * 300}, timeout=0)
        with pytest.raises(bloccs.NoProducer) as e:
            pusher.push(("net", "nobody", "in"), b"x")
        assert "start the port" in str(e.value)
    with pytest.raises(bloccs.BadName):
        bloccs.Port.start(("net", "no/de", "in"), ns=ns)
    with pytest.raises(ValueError):
        bloccs.Port.start(("net", "node"), ns=ns)
    with pytest.raises(bloccs.Error):  # every class is a bloccs.Error
        bloccs.Pusher(ns).push(KEY, b"x")


def test_a_thread_parked_on_a_full_port_lets_the_others_run(ns):
    with bloccs.Port.start(KEY, buffer=1, ns=ns) as port:
        pusher = bloccs.Pusher(ns)
        pusher.push(KEY, b"fills it")
        done = threading.Event()

        def parks():
            bloccs.Pusher(ns).push(KEY, b"waits for room")
            done.set()

        t = threading.Thread(target=parks)
        t.start()
        counted, start = 0, time.monotonic()
        while time.monotonic() - start < 0.3:  # this thread runs while the other is parked
            counted += 1
        assert counted > 1000 and not done.is_set()
        assert port.receive(timeout=5).payload == b"fills it"
        t.join(timeout=10)
        assert done.is_set()
        assert port.receive(timeout=5).payload == b"waits for room"


def test_a_receive_that_waits_lets_the_others_run(ns):
    with bloccs.Port.start(KEY, buffer=4, ns=ns) as port:
        got = []
        t = threading.Thread(target=lambda: got.append(port.receive(timeout=10)))
        t.start()
        time.sleep(0.1)
        bloccs.Pusher(ns).push(KEY, b"late")  # would deadlock if receive held the GIL
        t.join(timeout=10)
        assert got and got[0].payload == b"late"


def test_numpy_arrays_go_in_and_come_out_without_a_copy_in_views(ns):
    with bloccs.Port.start(KEY, buffer=8, max_payload=1 << 20, typical_payload=1 << 16,
                           ns=ns) as port:
        a = np.arange(100_000, dtype=np.float64)
        bloccs.push(KEY, a)
        bloccs.push(KEY, bytearray(b"ba"))
        bloccs.push(KEY, memoryview(b"xmvx")[1:3])
        sums = []

        def view(v):
            assert isinstance(v.payload, memoryview) and v.payload.readonly
            sums.append(np.frombuffer(v.payload, dtype=np.float64).sum())

        assert port.receive_views(view, max=1, timeout=5) == 1
        assert sums == [a.sum()]
        assert port.receive(timeout=5).payload == b"ba"
        assert port.receive(timeout=5).payload == b"mv"
        # A view is released when its callback returns: it cannot be read after.
        kept = []
        bloccs.push(KEY, b"gone")
        port.receive_views(kept.append, timeout=5)
        with pytest.raises(ValueError):
            kept[0].payload.tobytes()
        with pytest.raises((BufferError, ValueError)):  # strided: not one contiguous payload
            bloccs.push(KEY, np.arange(10)[::2])


def test_an_exception_in_a_view_callback_reaches_the_caller_and_the_batch_is_released(ns):
    with bloccs.Port.start(KEY, buffer=8, ns=ns) as port:
        for i in range(3):
            bloccs.push(KEY, b"%d" % i)

        def fails(v):
            raise RuntimeError("handler failed")

        with pytest.raises(RuntimeError, match="handler failed"):
            port.receive_views(fails, max=8, timeout=5)
        assert port.stats().depth == 0


def test_push_after_is_delivered_when_due_and_iteration_ends_on_stop(ns):
    with bloccs.Port.start(KEY, buffer=8, ns=ns) as port:
        start = time.monotonic()
        bloccs.push_after(KEY, b"later", delay=0.2, meta={"why": "retry"}, attempt=1)
        m = port.receive(timeout=5)
        assert time.monotonic() - start >= 0.19
        assert (m.payload, m.meta, m.attempt) == (b"later", {"why": "retry"}, 1)

    # Iterating a port yields its messages until the process is asked to stop (SIGTERM here:
    # stop_on_signals), then ends. In a process of its own: a stop request is for good.
    code = f"""
import bloccs, os, signal, threading
bloccs.stop_on_signals()
with bloccs.Port.start({KEY!r}, buffer=8) as port:
    bloccs.push({KEY!r}, b"a")
    bloccs.push({KEY!r}, b"b")
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    print([m.payload for m in port])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[b'a', b'b']"


def test_an_unbounded_port_takes_what_a_bounded_one_would_refuse(ns):
    with bloccs.Port.start(KEY, buffer=None, ns=ns) as port:
        for i in range(3000):
            bloccs.push(KEY, b"%d" % i)
        got = []
        while len(got) < 3000:
            got += port.receive_batch(max=512, timeout=5)
        assert [m.payload for m in got[:3]] == [b"0", b"1", b"2"]
        assert port.stats().links >= 1
