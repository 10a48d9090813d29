"""Each outbox is vacuumed at a fixed count of dead rows, not at a share of a table that only grows."""

from __future__ import annotations

import asyncpg
import pytest

from shared.settings import SERVICES

WITH_OUTBOX = [s for s in SERVICES if s != "reporting"]  # reporting publishes nothing


@pytest.mark.parametrize("service", WITH_OUTBOX)
async def test_the_outbox_is_vacuumed_at_ten_thousand_dead_rows_without_pauses(database_urls, service):
    conn = await asyncpg.connect(database_urls[service].replace("+asyncpg", ""))
    try:
        options = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = to_regclass('outbox')")
    finally:
        await conn.close()
    assert set(options or []) >= {
        "autovacuum_vacuum_scale_factor=0", "autovacuum_vacuum_threshold=10000", "autovacuum_vacuum_cost_delay=0",
    }, f"{service}: outbox options {options}"
