"""CPU time spent by each side of a benchmark while it runs, read from /proc (Linux).

Where a figure is bound by CPU on a shared 2-core machine, requests per second alone do not say who
spent the cores: the server's processes, the database's backends, the load generator or the kernel. A
meter reads each process's user and system time at the start and end of a measured phase.
"""

from __future__ import annotations

import os
import resource
from collections import Counter
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[str, int, float]]:
    """Each process's command name, parent and CPU seconds so far, with those of its children that ended
    (PostgreSQL's backends end with their connections: the postmaster is charged what they spent)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
        found[int(entry.name)] = (name, int(fields[1]), ticks / _TICK)
    return found


class CpuMeter:
    """CPU seconds of the server (its processes and their descendants), PostgreSQL's processes, and the load
    generator (the children of this process that ended meanwhile: wrk runs to completion)."""

    def __init__(self, *server_pids: int) -> None:
        self.server_pids = set(server_pids)
        self._start = self._read()

    def _read(self) -> Counter[str]:
        processes = _processes()
        spent: Counter[str] = Counter()
        for pid, (name, _parent, seconds) in processes.items():
            ancestor = pid
            while ancestor not in (0, 1) and ancestor not in self.server_pids and ancestor in processes:
                ancestor = processes[ancestor][1]
            if ancestor in self.server_pids:
                spent["server"] += seconds
            elif name == "postgres":
                spent["postgres"] += seconds
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent["load generator"] = children.ru_utime + children.ru_stime
        return spent

    def spent(self) -> dict[str, float]:
        """CPU seconds of each side since the meter started."""
        now = self._read()
        return {side: now[side] - self._start[side] for side in ("server", "postgres", "load generator")}
