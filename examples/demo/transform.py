# SPDX-License-Identifier: Apache-2.0
"""The demo's middle node in Python: upper-cases each message and passes it on, but fails a
share of its attempts (--fail-percent), so that retries with backoff and the dead-letter port
show. As examples/demo/transform.cpp, under the same contract (bloccs/node.hpp): a handler that
raises fails the message, which the runtime retries, then dead-letters."""
import argparse
import sys
import zlib

import bloccs

args = argparse.ArgumentParser(description="bloccs demo: the flaky transform node, in Python")
args.add_argument("--fail-percent", type=float, default=20.0)
opts = args.parse_args()

try:
    node = bloccs.Node.from_environment()
except bloccs.Error as e:
    sys.exit(f"transform.py: {e}")


@node.on_message
def transform(msg, out):
    seq = msg.meta.get("seq", "0")
    # Whether an attempt fails depends on the message and the attempt only, so a message handled
    # twice (after a crash) meets the same fate.
    if zlib.crc32(f"{seq}/{msg.attempt}".encode()) % 10000 < opts.fail_percent * 100:
        raise RuntimeError(f"transform.py failed message {seq} on attempt {msg.attempt}")
    meta = dict(msg.meta)
    out.emit("out", msg.text.upper(), meta=meta)


sys.exit(node.run())
