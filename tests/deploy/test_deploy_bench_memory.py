"""The benchmark worker's memory figure is its own: not the parent's resident set (ru_maxrss crosses fork + exec)."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = """
import json
from sam3_edge.deploy import bench_worker as w
base = w._rss_mb()
w._reset_hwm()
buf = bytearray(64 * 2**20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
print(json.dumps({"base": base, "peak": w._hwm_mb()}))
"""


def test_worker_peak_excludes_the_parent_and_sees_its_own_allocation():
    parent = bytearray(400 * 2**20)  # a parent far larger than the child
    for i in range(0, len(parent), 4096):
        parent[i] = 1
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    increment = got["peak"] - got["base"]
    assert 60 <= increment < 200, got  # the child's 64 MB, not the parent's 400 MB
    # the figure the worker used before: the child's ru_maxrss carries the parent's resident set
    probe = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    inherited = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout) / 1024
    assert inherited >= 400, inherited
    del parent
