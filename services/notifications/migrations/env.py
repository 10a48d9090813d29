from services.notifications.adapters.orm import metadata
from shared.db import run_migrations_online

run_migrations_online(metadata)
