"""``python -m bench``: see bench/__init__.py."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime

from redis.asyncio import Redis

from bench import consume, infra, ingest
from bench.config import BenchConfig
from bench.data import Population
from bench.measure import Figure
from bench.report import markdown, merge, table
from shared.contracts.registry_v1 import REGISTRY_EVENTS


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


async def registry_ingest(cfg: BenchConfig, rid: str, pop: Population, redis: Redis) -> Figure:
    fig = Figure("registry ingest, API to Redis", "children/s")
    ns = f"{rid}.ingest."
    runs = [[pop.child() for _ in range(cfg.children)] for _ in range(cfg.repeat)]
    say(f"registry ingest: {cfg.repeat} x {cfg.children} children, {cfg.clients} clients")
    fig.shouhu, fig.notes = await ingest.shouhu(cfg, infra.service_settings(cfg, ns), runs, redis)
    say(f"  shouhu: {', '.join(f'{x:.0f}' for x in fig.shouhu)} children/s")
    fig.raw, raw_notes = await ingest.raw(cfg, ns, runs, redis)
    fig.notes += raw_notes
    say(f"  raw:    {', '.join(f'{x:.0f}' for x in fig.raw)} children/s")
    return fig


async def consumers(cfg: BenchConfig, rid: str, pop: Population, redis: Redis) -> list[Figure]:
    say(f"consumers: building {cfg.events} registry.child.registered envelopes")
    payloads = [pop.registered_event() for _ in range(cfg.events)]
    figs = {s: Figure(f"{s} consumer", "events/s", goal=0.5) for s in consume.STORE}
    runs: dict[tuple[str, str], list[consume.Run]] = defaultdict(list)
    for i in range(cfg.repeat):
        # A fresh stream each round: the services' groups are named after them and start at 0.
        settings = infra.service_settings(cfg, f"{rid}.consume{i}.")
        stream = settings.stream(REGISTRY_EVENTS)
        ids = await consume.prefill(redis, stream, payloads)
        for service, fig in figs.items():
            # Alternate which side goes first, so drift in the machine's load hits both alike.
            for side in ("shouhu", "raw") if i % 2 == 0 else ("raw", "shouhu"):
                if side == "shouhu":
                    run = await consume.shouhu(service, settings, redis, ids, cfg.consumer_seconds)
                    fig.shouhu.append(run.rate)
                else:
                    run = await consume.raw(service, cfg, redis, stream, cfg.events)
                    fig.raw.append(run.rate)
                runs[service, side].append(run)
                say(f"  run {i + 1}/{cfg.repeat} {service:<9} {side:<6} {run.rate:8.0f} events/s over "
                    f"{run.events} events, consumer CPU {100 * run.busy:.0f}% of a core")
    for service, fig in figs.items():
        ours, raw = runs[service, "shouhu"], runs[service, "raw"]
        fig.notes.append(
            f"consumer process CPU (median) {100 * statistics.median(r.busy for r in ours):.0f}% of a core for "
            f"Shouhu, {100 * statistics.median(r.busy for r in raw):.0f}% for raw"
        )
        for label, side in (("Shouhu", ours), ("raw", raw)):
            # Per event applied (a row in the store), which may run a batch ahead of the acknowledgements.
            applied = side[0].rows.get(consume.STORE[service], 0) or 1
            per = ", ".join(f"{t} {n / applied:.2f}" for t, n in side[0].rows.items())
            fig.notes.append(f"rows per event applied, after a {label} run: {per}")
        if any(r.events < cfg.events for r in ours):
            fig.notes.append(
                f"Shouhu's consumer did not drain the {cfg.events:,} entries within {cfg.consumer_seconds:.0f} s; "
                f"its rate is over the events acknowledged by then ({', '.join(f'{r.events:,}' for r in ours)})"
            )
    return list(figs.values())


async def main(cfg: BenchConfig) -> list[Figure]:
    started, t_start = datetime.now(UTC), time.perf_counter()
    machine = await infra.describe_machine(cfg)
    say(f"machine: {machine['cpu']}, {machine['cores']}, {machine['memory']}, load {machine['load']}")
    rid = infra.run_id()
    say(f"recreating and migrating the shouhu_bench_* databases; stream namespace {rid}.")
    if {"ingest", "consumers"} & set(cfg.only) or cfg.profile_events:  # notifications recreates its own
        await infra.recreate_databases(cfg)
    redis = Redis.from_url(cfg.redis_url)
    pop = Population()
    try:
        figures = [await registry_ingest(cfg, rid, pop, redis)] if "ingest" in cfg.only else []
        if "consumers" in cfg.only:
            figures += await consumers(cfg, rid, pop, redis)
        sections, notified = {}, []
        if "notifications" in cfg.only:
            from bench import notifications

            began, t_notif = datetime.now(UTC), time.perf_counter()
            notified = await notifications.figures(cfg, rid, redis, say)
            sections["notifications"] = notifications.section(
                cfg, notified, began, time.perf_counter() - t_notif, machine["load"]
            )
        if "visits" in cfg.only:
            from bench import visits

            sections["visits"] = await visits.run(cfg, say, machine["load"])
        if "reporting" in cfg.only:
            from bench import reporting

            sections["reporting"] = await reporting.run(cfg, rid, redis, say, machine["load"])
        if "census" in cfg.only:
            from bench import census

            began, t_census = datetime.now(UTC), time.perf_counter()
            counted = await census.figures(cfg, rid, redis, say)
            sections["census"] = census.section(cfg, counted, began, time.perf_counter() - t_census, machine["load"])
            notified += counted
        if cfg.profile_events:
            from bench import profiling

            for service in consume.STORE:
                say(f"profiling the {service} consumer in process on {cfg.profile_events} events")
                settings = infra.service_settings(cfg, f"{rid}.profile.{service}.")
                await profiling.profile_consumer(service, cfg, settings, pop, redis)
    finally:
        await infra.delete_namespace(redis, f"{rid}.")
        await redis.aclose()

    print()
    print(table(figures + notified))
    print()
    for f in figures + notified:
        if f.verdict.startswith("MISSED"):
            print(f"{f.name}: {f.verdict}")
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    old = cfg.output.read_text(encoding="utf-8") if cfg.output.exists() else ""
    main_part = markdown(cfg, machine, figures, started, time.perf_counter() - t_start) if figures else None
    cfg.output.write_text(merge(old, main_part, sections), encoding="utf-8")
    say(f"written to {cfg.output} in {time.perf_counter() - t_start:.0f} s")
    return figures


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(BenchConfig()))
