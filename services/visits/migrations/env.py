from services.visits.adapters import referral_orm  # noqa: F401  (its tables join the metadata)
from services.visits.adapters.orm import metadata
from shared.db import run_migrations_online

run_migrations_online(metadata)
