"""Reading processes from Linux's /proc, for the stack, the tests and the benchmarks.

No Django here: `python -m bench` imports this before it sets the environment that Django's
settings are read from (tests/bench/test_settings_read_late.py)."""

from pathlib import Path


def stat_fields(text: str) -> tuple[str, list[str]]:
    """A `/proc/<pid>/stat` line: the process's name, and the fields after it (its state
    first; the parent's pid is [1], utime [11]). The name may itself hold ") ", so it ends
    at the last ")"."""
    head, _, rest = text.rpartition(")")
    return head.partition(" (")[2], rest.split()


def cpu_ticks(fields: list[str], *, reaped_children: bool = True) -> int:
    """CPU time in clock ticks from a stat line's fields (`stat_fields`): user and system,
    and with `reaped_children` the time of the children the process has waited for."""
    return sum(int(field) for field in fields[11 : 15 if reaped_children else 13])


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            _, fields = stat_fields(stat.read_text())
            parent = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # ended since the listing
        if parent == pid:
            found.append(int(stat.parent.name))
    return found
