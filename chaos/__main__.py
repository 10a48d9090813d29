"""``python -m chaos`` (``make chaos``): run, check, print the counts, write docs/benchmarks.md's chaos section."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from bench.report import merge
from chaos.checker import check, totals
from chaos.run import ChaosConfig, Outcome, run


def say(msg: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def section(cfg: ChaosConfig, out: Outcome, checks, started: datetime, seconds: float) -> str:
    lost, duplicated, unexpected = totals(checks)
    led, f, m = out.ledger, out.faults, out.machine
    unanswered = {k: len(v) for k, v in led.unanswered.items()}
    refused = Counter({k: n for k, n in led.refused.items()})
    lines = [
        "## Faults (chaos)",
        "",
        f"Run of {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({seconds:.0f} s in all), `make chaos` with "
        f"CHAOS_SECONDS={cfg.seconds:g}, CHAOS_RATE={cfg.rate:g}, CHAOS_SEED={cfg.seed}, CHAOS_KILL_EVERY={cfg.kill_every:g}.",
        f"Machine: {m['cpu']}, {m['cores']}, {m['memory']}, {m['os']}, Python {m['python']}, PostgreSQL {m['postgresql']},",
        f"Redis {m['redis']}; load average at start {m['load']}. Servers, services and load generator share these cores.",
        "The services connect as their own roles (not superusers), so row-level security binds them as deployed.",
        "",
        f"**lost {lost} / duplicated {duplicated} / unexpected {unexpected}**",
        "",
        "| | |",
        "|---|---|",
        f"| writes started | {int(cfg.rate * cfg.seconds):,} at {out.achieved_rate:.1f}/s (30 s timeout each) |",
        f"| accepted (201) | children {len(led.children):,}, visit records {len(led.records):,}, absences {len(led.absences):,} |",
        f"| without an answer (may or may not be stored) | {', '.join(f'{k} {n}' for k, n in unanswered.items())} |",
        f"| refused or never sent | {', '.join(f'{k} {n}' for k, n in sorted(refused.items())) or 'none'} |",
        f"| kill -9 | {', '.join(f'{s} {n}' for s, n in f.kills.items())} ({sum(f.kills.values())} in all) |",
        f"| kill -9 to answering /health again | median {statistics.median(f.recovery or [0]):.1f} s, max {max(f.recovery or [0]):.1f} s |",
        f"| PostgreSQL `pg_ctl restart -m immediate` | once, {f.postgres_restart:.1f} s |",
        f"| Redis SIGKILL, start on its append-only file | once, {f.redis_restart:.1f} s |",
        f"| settled after the load (outboxes sent, groups acknowledged, deadlines fired) | {out.settled_in:.0f} s |",
        f"| events published (outbox rows) | {', '.join(f'{s} {len(r):,}' for s, r in out.snapshot.outbox.items())} |",
        f"| dropout cases, each through four deadlines | {len(out.snapshot.dropout_cases):,} |",
        "",
        "| check | expected | lost | duplicated | unexpected |",
        "|---|---:|---:|---:|---:|",
        *(f"| {c.name} | {c.expected:,} | {len(c.lost)} | {len(c.duplicated)} | {len(c.unexpected)} |" for c in checks),
    ]
    bad = [c for c in checks if not c.clean]
    if bad:
        lines += ["", "Examples of what went wrong:", ""] + [
            f"- {c.name}: {', '.join((c.lost + c.duplicated + c.unexpected)[:5])}" for c in bad]
    lines += ["", *WHAT.splitlines()]
    return "\n".join(lines)


WHAT = """\
What runs: a private PostgreSQL cluster (initdb in a temporary directory) and redis-server (append-only file,
`appendfsync everysec`), the four services as processes (`python -m services.<name>`, production settings, claim
after 3 s idle). A load generator starts writes at a steady rate whatever the answers take: half register a
child (a unique name each), three in ten record a home visit by the class teacher, two in ten report three
unexcused school days, which opens a dropout case (劝返复学) whose deadlines the county's policy makes fall
due within seconds (persuasion at once, the bureau's acknowledgement in 6 s, then the reminder and the
leading-group office). Every few seconds a random service is killed with SIGKILL (its HTTP API, consumers,
claimers, outbox relay and timer poller die with it) and started again; PostgreSQL is restarted once in
immediate mode (a crash and WAL recovery) and Redis once (SIGKILL, started again on the same directory).

The checker compares by id: every write the API accepted is in its owner's store; every event in a
producer's outbox is in the inbox of every consumer group on its stream, once; each registered child is in
each consumer's store once and counted once in reporting's figures; each recorded visit reached reporting;
each child with a recorded absence has one dropout case, and every case passed each deadline once (timeline
steps and `visits.referral.deadline_missed` events); no timer due before the end is unfired; DLQ streams
are empty; every group has read and acknowledged everything. Writes that got no answer (the process died
mid-request) may or may not be stored; they are found again by their unique name or child, and neither
outcome counts as an error.

What Redis can still lose: a SIGKILL of redis-server loses nothing acknowledged (Redis writes the
append-only file before it answers; `everysec` only delays the fsync), which this run shows. A crash of the
machine or its power can lose the last second of writes not yet fsynced. Events written through an outbox
are not protected from that either once their row is marked sent (the relay marks it when XADD answers,
not when the entry is on disk), so up to a second of every producer's events could be lost with the
machine; consumer acknowledgements and group positions lost the same way are harmless (redelivered, and
the inbox ignores them). Entries written straight to Redis with no outbox behind them are lost for good in
that window: a consumer's moves to `<stream>.dlq`, outside agencies' answers on `from-agency.*` and
anything published by hand (DLQ replay). `appendfsync always` closes the window at a cost in throughput.

Found by the first runs: a dropout case whose persuasion deadline passed was reported, but its
acknowledgement deadline was never kept (no reminder, no escalation). The handler re-armed its own timer
row for the next stage and the poller then marked that row fired; the poller now marks a timer fired only
when its handler left it as it was (shared/timers.py, tested in tests/integration/test_timers.py).

Knobs: `CHAOS_SECONDS` (60), `CHAOS_RATE` (20), `CHAOS_SEED` (1), `CHAOS_KILL_EVERY` (5),
`CHAOS_SETTLE_SECONDS` (180), `CHAOS_OUTPUT` (docs/benchmarks.md)."""


async def main(cfg: ChaosConfig) -> int:
    started, t0 = datetime.now(UTC), time.perf_counter()
    out = await run(cfg, say)
    checks = check(out.ledger, out.snapshot)
    for c in checks:
        mark = "ok " if c.clean else "BAD"
        print(f"{mark} {c.name}: expected {c.expected}, lost {len(c.lost)}, duplicated {len(c.duplicated)}, "
              f"unexpected {len(c.unexpected)}" + ("" if c.clean else f"  e.g. {(c.lost + c.duplicated + c.unexpected)[:3]}"))
    lost, duplicated, unexpected = totals(checks)
    print(f"\nlost {lost} / duplicated {duplicated} / unexpected {unexpected}")
    old = cfg.output.read_text(encoding="utf-8") if cfg.output.exists() else ""
    cfg.output.write_text(merge(old, None, {"chaos": section(cfg, out, checks, started, time.perf_counter() - t0)}),
                          encoding="utf-8")
    say(f"written to {cfg.output}")
    return 1 if lost or duplicated or unexpected else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(ChaosConfig())))
