#!/usr/bin/env python3
"""Where the CPU time of a benchmark run goes, from /proc (python3 stdlib only).

  cputime.py snap FILE LABEL=PID[+] ...
      writes the CPU ticks (user + system) of every thread of PID under LABEL, and with "+"
      those of PID's child processes too (a postmaster's backends, nginx's workers), plus the
      busy and total ticks of each CPU (/proc/stat), as JSON; a label given twice (two
      instances) adds up their threads by name
  cputime.py diff BEFORE AFTER --requests N [--cpu C]...
      prints, per label and thread or process name, the share of one core it used between the
      two snapshots and its CPU microseconds per request; then each CPU's busy share

Names: a thread's comm (cwhook-io, cwhook-store, ...); for a child process the title it set,
shortened ("postgres: walwriter" -> walwriter, "postgres: user db [local] INSERT" -> backend,
"nginx: worker process" -> worker). A thread or process that started between the snapshots
counts from zero; one that ended is missing (its last ticks are lost).
"""
import argparse
import json
import os
import sys


def ticks(stat_path: str) -> tuple[str, int]:
    with open(stat_path) as f:
        s = f.read()
    comm = s[s.index("(") + 1:s.rindex(")")]
    fields = s[s.rindex(")") + 2:].split()
    return comm, int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def title(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
    for prefix in ("postgres: ", "nginx: "):
        if raw.startswith(prefix):
            rest = raw[len(prefix):]
            if prefix == "postgres: " and ("[local]" in rest or "(" in rest):
                return "backend"
            return rest.replace(" process", "").split(" ")[0] if prefix == "nginx: " else rest
    return ""


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def threads_of(pid: int, name: str | None = None) -> dict[str, list]:
    out = {}
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            comm, t = ticks(f"/proc/{pid}/task/{task}/stat")
        except (OSError, ValueError):
            continue
        out[f"{pid}/{task}"] = [name or comm, t]
    return out


def cpu_ticks() -> dict[str, list[int]]:
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0].startswith("cpu") and parts[0] != "cpu":
                v = [int(x) for x in parts[1:]]
                idle = v[3] + v[4]  # idle + iowait
                out[parts[0][3:]] = [sum(v[:8]) - idle, sum(v[:8])]
    return out


def cmd_snap(a) -> int:
    snap = {"labels": {}, "cpus": cpu_ticks()}
    for spec in a.specs:
        label, _, pid = spec.partition("=")
        tree = pid.endswith("+")
        pid = int(pid.rstrip("+"))
        entries = threads_of(pid, title(pid) or None)
        if tree:
            for child in children(pid):
                entries.update(threads_of(child, title(child) or None))
        snap["labels"].setdefault(label, {}).update(entries)
    with open(a.file, "w") as f:
        json.dump(snap, f)
    return 0


def cmd_diff(a) -> int:
    before = json.load(open(a.before))
    after = json.load(open(a.after))
    hz = os.sysconf("SC_CLK_TCK")
    cpus_b, cpus_a = before["cpus"], after["cpus"]
    # Wall time from the CPUs' total ticks (every CPU advances the same).
    any_cpu = next(iter(cpus_a))
    seconds = (cpus_a[any_cpu][1] - cpus_b[any_cpu][1]) / hz
    if seconds <= 0:
        print("cputime: the snapshots are not in order", file=sys.stderr)
        return 1
    for label, entries in after["labels"].items():
        old = before["labels"].get(label, {})
        by_name: dict[str, int] = {}
        for key, (name, t) in entries.items():
            by_name[name] = by_name.get(name, 0) + t - (old.get(key, [name, 0])[1])
        total = sum(by_name.values())
        parts = [f"{n} {100 * v / hz / seconds:.0f}%" for n, v in sorted(by_name.items(), key=lambda kv: -kv[1]) if v > 0]
        per_req = f"{1e6 * total / hz / a.requests:.0f}" if a.requests else "-"
        print(f"CPU\t{label}\t{100 * total / hz / seconds:.0f}\t{per_req}\t{', '.join(parts) or '-'}")
    for cpu in a.cpu or sorted(cpus_a):
        b, t = (cpus_a[cpu][0] - cpus_b[cpu][0]), (cpus_a[cpu][1] - cpus_b[cpu][1])
        print(f"BUSY\t{cpu}\t{100 * b / t if t else 0:.0f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("snap")
    s.add_argument("file")
    s.add_argument("specs", nargs="+", metavar="LABEL=PID[+]")
    d = sub.add_parser("diff")
    d.add_argument("before")
    d.add_argument("after")
    d.add_argument("--requests", type=int, default=0)
    d.add_argument("--cpu", action="append")
    a = ap.parse_args()
    return {"snap": cmd_snap, "diff": cmd_diff}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
