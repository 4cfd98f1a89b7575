# SPDX-License-Identifier: Apache-2.0
"""bloccs: lock-free shared-memory ports between processes on one host.

    import bloccs
    port = bloccs.Port.start(("net", "node", "in"), buffer=1024)   # the owner
    bloccs.push(("net", "node", "in"), b"hello", meta={"trace": "1"})  # any other process
    msg = port.receive(timeout=1.0)       # msg.payload, msg.meta, msg.attempt
    port.receive_views(lambda v: handle(v.payload), max=64)   # in place, no copy

Errors are exceptions of class bloccs.Error, one subclass per code (bloccs.Timeout,
bloccs.NoProducer, bloccs.PayloadTooLarge, ...), each with .code, the code's name.
"""
from ._bloccs import *  # noqa: F401,F403
from ._bloccs import __version__  # noqa: F401

import os as _os
import threading as _threading

_local = _threading.local()


def _thread_pusher():
    """This thread's Pusher of the namespace $BLOCCS_NAMESPACE names now (else "default")."""
    ns = _os.environ.get("BLOCCS_NAMESPACE") or "default"
    pushers = _local.__dict__.setdefault("pushers", {})
    if ns not in pushers:
        pushers[ns] = Pusher(ns)  # noqa: F405
    return pushers[ns]


def push(key, data, meta=None, attempt=0):
    """Pushes `data` (any C-contiguous buffer) into `key`'s port through this thread's pusher;
    parks while the port is full (bounded by the process's push timeout, if set)."""
    _thread_pusher().push(key, data, meta=meta, attempt=attempt)


def push_after(key, data, delay, meta=None, attempt=0):
    """Hands the message to the port's timer, which enqueues it `delay` seconds from now."""
    _thread_pusher().push_after(key, data, delay, meta=meta, attempt=attempt)
