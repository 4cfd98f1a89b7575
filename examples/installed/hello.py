# SPDX-License-Identifier: Apache-2.0
"""bloccs from Python: an owner, and a pusher in a second Python process it starts.
Run with the installed package on the path, e.g.
    PYTHONPATH=/opt/bloccs/lib/python3.11/dist-packages python3 hello.py
Exit status 0 when every message came back as sent."""
import subprocess
import sys

import bloccs

KEY = ("example", "python", "in")

if len(sys.argv) > 1 and sys.argv[1] == "push":
    pusher = bloccs.Pusher()
    for i in range(3):
        pusher.push(KEY, f"hello {i}".encode(), meta={"from": "python"})
    bloccs.push_after(KEY, b"later", delay=0.1, attempt=1)
    sys.exit(0)

print("bloccs", bloccs.__version__, "from Python")
with bloccs.Port.start(KEY, buffer=64) as port:
    subprocess.run([sys.executable, __file__, "push"], check=True)
    got = [port.receive(timeout=10) for _ in range(4)]
    for m in got:
        print(f"received {bytes(m.payload)!r} attempt {m.attempt} meta {m.meta}")
    try:
        bloccs.push(("example", "nobody", "in"), b"x")
    except bloccs.NoProducer as e:
        print("as expected:", e.code)
assert [m.payload for m in got] == [b"hello 0", b"hello 1", b"hello 2", b"later"]
assert got[0].meta == {"from": "python"} and got[3].attempt == 1
print("ok")
