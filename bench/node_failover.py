"""Failover of a database when the node under its master fails, as its clients see it on
Kubernetes: `--fault stop` (the node crashes: kubelet, containerd and every container killed) or
`--fault isolate` (the node is cut off the network, its processes run on). Per run and as median,
p95 and max: the time from the fault to the first write a *new* master takes through the database's
`<db>` Service address, the longest write gap, WAIT-confirmed writes lost and writes the old master
acknowledged that the new one lacks (the measures of bench/redb_failover.py, which this shares).
Each run prints which node ran the rigger, the operator's helpers and CoreDNS: a fault that takes
one of them along is a harder case. Target (issue 16): median <= 5 s, p95 <= 8 s.

    .venv/bin/python bench/node_failover.py [--fault stop|isolate] [--runs 10] [--state-dir DIR]
"""

from __future__ import annotations

from redb_failover import main  # bench/ is sys.path[0] when this script runs

if __name__ == "__main__":
    main(default_fault="stop", doc=__doc__)
