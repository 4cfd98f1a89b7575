# SPDX-License-Identifier: Apache-2.0
"""Python nodes in pipelines, run by the real launcher (`bloccs run`) beside C++ nodes: the
ledger of a conserved pipeline adds up, failures are retried and dead-lettered, a Python source
emits until asked to stop, and a Python node SIGKILLed mid-run is restarted with its queue kept."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

EXAMPLES = os.environ.get("BLOCCS_EXAMPLES", "")
DEMO_DIR = os.environ.get("BLOCCS_DEMO_DIR", "")
TRANSFORM = os.path.join(EXAMPLES, "demo", "transform.py")

SOURCE = textwrap.dedent('''
    # A Python source: emits --messages numbered messages, then finishes (or stops when asked).
    import sys
    import bloccs
    n = int(sys.argv[1])
    node = bloccs.Node.from_environment()
    seq = node.counters()["emitted"]          # a restarted source resumes where it was
    while seq < n and not node.stopping():
        node.emit("out", f"message {seq}", meta={"seq": str(seq)})
        seq += 1
    sys.exit(0)
''')


def pipeline(tmp_path, messages, fail_percent, sink_work_us, source="python"):
    (tmp_path / "source.py").write_text(SOURCE)
    source_node = (f'program = "source.py"\npython = "{sys.executable}"\nargs = ["{messages}"]'
                   if source == "python" else
                   f'program = "bloccs-demo-generator"\nargs = ["--messages", "{messages}"]')
    text = textwrap.dedent(f'''
        [pipeline]
        network = "pyn"
        conserved = true
        restart = {{ base_ms = 50, factor = 2.0, cap_ms = 500, max_restarts = 5 }}

        [nodes.source]
        {{source_node}}
        outputs.out = "transform.in"

        [nodes.transform]
        program = "{TRANSFORM}"
        python = "{sys.executable}"
        args = ["--fail-percent", "{fail_percent}"]
        inputs.in = {{ buffer = 64 }}
        outputs.out = "sink.in"
        retry = {{ max_attempts = 3, base_ms = 5, factor = 2.0, cap_ms = 50, jitter = 0.25 }}

        [nodes.sink]
        program = "bloccs-demo-sink"
        args = ["--work-us", "{sink_work_us}"]
        inputs.in = {{ buffer = 16 }}
    ''').replace("{source_node}", source_node)
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def run(path, tmp_path, ns, **popen):
    summary = tmp_path / "summary.json"
    cmd = [os.environ["BLOCCS_CLI"], "run", str(path), "--program-dir", DEMO_DIR,
           "--namespace", ns, "--status-interval", "0", "--summary-json", str(summary)]
    return cmd, summary


@pytest.fixture
def ns():
    name = f"t-pyn-{os.getpid()}-{time.monotonic_ns() % 100000}"
    yield name
    left = f"/dev/shm/bloccs.{name}"
    assert not os.path.exists(left) or not os.listdir(left), f"left behind: {os.listdir(left)}"


def ledger(summary):
    data = json.loads(summary.read_text())
    assert data["adds_up"] and data["ok"], data
    return data, data["nodes"]


def test_a_python_source_and_a_python_transform_beside_a_cpp_sink_add_up(tmp_path, ns):
    path = pipeline(tmp_path, messages=1500, fail_percent=20, sink_work_us=20)
    cmd, summary = run(path, tmp_path, ns)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "adds up" in out.stdout
    data, nodes = ledger(summary)
    t = nodes["transform"]
    assert nodes["source"]["emitted"] == 1500
    assert t["failed"] > 0 and t["retried"] > 0, t          # failures were retried ...
    assert t["dead_lettered"] > 0, t                         # ... and some ran out of attempts
    assert nodes["sink"]["handled"] + t["dead_lettered"] == 1500
    assert "RuntimeError: transform.py failed message" in out.stdout  # the dead letter's error


def test_a_python_node_killed_mid_run_is_restarted_with_its_queue_kept(tmp_path, ns):
    path = pipeline(tmp_path, messages=6000, fail_percent=0, sink_work_us=300, source="cpp")
    cmd, summary = run(path, tmp_path, ns)
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # The sink is slow: wait until the transform's port holds a queue, then kill it.
        shmctl = os.path.join(os.path.dirname(os.environ["BLOCCS_CLI"]), "shmctl")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ls = subprocess.run([shmctl, "-N", ns, "--json", "ls"], capture_output=True, text=True)
            ports = json.loads(ls.stdout).get("ports", []) if ls.returncode == 0 else []
            if any(p.get("key") == "pyn/transform/in" and p.get("depth", 0) >= 16 for p in ports):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the transform's port never held a queue")
        killed = subprocess.run(["pkill", "-KILL", "-f", f"{TRANSFORM} --fail-percent"])
        assert killed.returncode == 0, "no transform.py to kill"
        out, _ = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 0, out
    data, nodes = ledger(summary)
    t = nodes["transform"]
    assert t["restarts"] >= 1, out
    assert t["salvaged"] > 0, t  # its restart found its port's queue and kept it
    assert nodes["sink"]["handled"] + t["dead_lettered"] + t["lost"] >= 6000, out


def test_the_mixed_demo_runs_as_the_readme_shows(tmp_path, ns):
    # examples/demo/mixed.toml as it is: transform.py run by the python3 found on $PATH (this
    # test's interpreter first on it).
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    cmd, summary = run(os.path.join(EXAMPLES, "demo", "mixed.toml"), tmp_path, ns)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    data, nodes = ledger(summary)
    assert data["in"] == 2000 and data["delivered"] + data["dead_lettered"] == 2000, data
    assert nodes["transform"]["retried"] > 0
