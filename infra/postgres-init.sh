#!/bin/sh
# The PostgreSQL image runs this once, on an empty data directory (docker-compose.yml): the schema's owner and the
# console's serving role, neither a superuser, with passwords from the environment (psql variables, never the
# command line).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$PG_OWNER_PASSWORD" -v console_password="$TAPEWATCH_CONSOLE_DB_PASSWORD" <<'SQL'
CREATE ROLE tapewatch LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE tapewatch_console LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'console_password';
ALTER DATABASE tapewatch OWNER TO tapewatch;
ALTER SCHEMA public OWNER TO tapewatch;
SQL
