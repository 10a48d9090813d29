#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data volume.
# One login role and one database per service; each role owns only its own database,
# and PUBLIC loses CONNECT so no service can open another service's database.
# The roles are NOSUPERUSER NOBYPASSRLS (row-level security binds them: a superuser or a
# BYPASSRLS role would see every place's children) and can create no role or database.
# The migrations run as the same role: it owns the tables, and FORCE ROW LEVEL SECURITY
# (shared/security/rls.py) makes the policies bind their owner too.
# Passwords come from the environment (docker-compose.yml, .env) and reach SQL as
# psql variables (:'pw'), so no quoting problem or injection whatever they contain.
set -euo pipefail

services=(registry visits notifications reporting)

# Check every password before creating anything: a failed init leaves a data volume
# that the image will not initialise again.
for service in "${services[@]}"; do
    var="${service^^}_DB_PASSWORD"
    if [ -z "${!var:-}" ]; then
        echo "10-shouhu-databases.sh: $var is not set" >&2
        exit 1
    fi
done

for service in "${services[@]}"; do
    var="${service^^}_DB_PASSWORD"
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
        -v role="shouhu_${service}" -v pw="${!var}" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'pw';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
