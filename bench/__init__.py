"""``make bench``: Shouhu's throughput beside a raw redis-py + asyncpg pipeline.

Run as ``python -m bench``. Each figure is measured in the same run, on the
same machine, against the same PostgreSQL and Redis as its raw baseline, and
written to ``docs/benchmarks.md``. The bench owns its data: databases named
``shouhu_bench_*`` (dropped and recreated every run) and a stream namespace
unique to the run (deleted at the end), so it never touches anything else.

Sizes and knobs come from the environment (see ``bench.config``).
"""
