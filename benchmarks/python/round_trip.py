# SPDX-License-Identifier: Apache-2.0
"""What the Python path costs per message, beside the C++ one (bloccs-bench-port-push,
bloccs-bench): 64-byte push + receive in one process, and a 64-byte round trip between two
Python processes (each owns a port, each pushes into the other's), p50 and p99.
    PYTHONPATH=build/python python3 benchmarks/python/round_trip.py"""
import os
import statistics
import subprocess
import sys
import time

import bloccs

PING, PONG = ("bench", "ping", "in"), ("bench", "pong", "in")
PAYLOAD = bytes(64)


def echo(n):
    with bloccs.Port.start(PONG, buffer=64) as port:
        pusher = bloccs.Pusher()
        print("ready", flush=True)
        for _ in range(n):
            m = port.receive()
            pusher.push(PING, m.payload)


def main():
    os.environ.setdefault("BLOCCS_NAMESPACE", f"bench-py-{os.getpid()}")
    n = int(os.environ.get("N", "200000"))
    with bloccs.Port.start(PING, buffer=64) as port:
        pusher = bloccs.Pusher()
        for _ in range(1000):
            pusher.push(PING, PAYLOAD)
            port.receive()
        start = time.perf_counter_ns()
        for _ in range(n):
            pusher.push(PING, PAYLOAD)
            port.receive()
        one = (time.perf_counter_ns() - start) / n
        print(f"python push + receive, 64 B, one process: {one:.0f} ns per message")

        rounds = n // 4
        peer = subprocess.Popen([sys.executable, __file__, "echo", str(rounds + 1000)],
                                stdout=subprocess.PIPE, text=True)
        assert peer.stdout.readline().strip() == "ready"
        samples = []
        for i in range(rounds + 1000):
            t = time.perf_counter_ns()
            pusher.push(PONG, PAYLOAD)
            port.receive()
            if i >= 1000:
                samples.append(time.perf_counter_ns() - t)
        peer.wait(timeout=60)
        samples.sort()
        p50, p99 = samples[len(samples) // 2], samples[len(samples) * 99 // 100]
        print(f"python round trip, 64 B, two processes: p50 {p50 / 1000:.1f} us, "
              f"p99 {p99 / 1000:.1f} us ({rounds} round trips)")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "echo":
        echo(int(sys.argv[2]))
    else:
        main()
