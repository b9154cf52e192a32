# shellcheck shell=bash
# CI: a throwaway PostgreSQL cluster for the PostgreSQL store tests. Source it (it installs
# nothing; the `postgresql` package must be installed): it starts a cluster in a temporary
# directory on a free 127.0.0.1 port, exports TRESOR_TEST_PG_URL and defines `tresor_pg_stop`,
# which stops the cluster and removes the directory (call it from a trap; safe to call twice).
#
#   . .ci/postgres.sh && trap tresor_pg_stop EXIT
#
# The server refuses to run as root, so as root the cluster runs as the `postgres` user the
# Debian package creates. TRESOR_PG_BINDIR overrides where initdb and pg_ctl are looked for.

tresor_pg_bindir() {
  if [[ -n "${TRESOR_PG_BINDIR:-}" ]]; then
    printf '%s\n' "$TRESOR_PG_BINDIR"
    return
  fi
  # Debian keeps each major version apart; take the newest one installed.
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then
    printf '%s\n' "$dir"
    return
  fi
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  echo "postgres.sh: no PostgreSQL server binaries (initdb) found; install the postgresql package" >&2
  return 1
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
tresor_pg_as_owner() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

tresor_pg_free_port() {
  if ! command -v node >/dev/null 2>&1; then
    echo $((20000 + RANDOM % 20000))
    return
  fi
  node -e 'const s = require("node:net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

tresor_pg_stop() {
  if [[ -n "${TRESOR_PG_DIR:-}" && -d "$TRESOR_PG_DIR" ]]; then
    if [[ -f "$TRESOR_PG_DIR/data/postmaster.pid" ]]; then
      tresor_pg_as_owner "$TRESOR_PG_BIN/pg_ctl" -D "$TRESOR_PG_DIR/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$TRESOR_PG_DIR"
  fi
  unset TRESOR_PG_DIR TRESOR_TEST_PG_URL
}

tresor_pg_start() {
  local bin dir port attempt
  bin=$(tresor_pg_bindir) || return 1
  if [[ "$(id -u)" == 0 ]] && ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: running as root but there is no postgres user to run the server as" >&2
    return 1
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tresor-pg.XXXXXX") || return 1
  if [[ "$(id -u)" == 0 ]]; then chown postgres "$dir"; fi
  TRESOR_PG_BIN=$bin
  TRESOR_PG_DIR=$dir
  # -E UTF8 with the C locale: UTF-8 text on any machine, whatever locales it has generated.
  if ! tresor_pg_as_owner "$bin/initdb" -D "$dir/data" -A trust -U tresor -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    tresor_pg_stop
    return 1
  fi
  # The port is free when chosen but could be taken before the server binds it: try a few.
  for attempt in 1 2 3; do
    port=$(tresor_pg_free_port) || break
    if tresor_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null; then
      export TRESOR_TEST_PG_URL="postgres://tresor@127.0.0.1:$port/postgres"
      export TRESOR_PG_BINDIR=$bin
      echo "postgres.sh: PostgreSQL ($("$bin/postgres" --version)) on 127.0.0.1:$port, data in $dir/data"
      return 0
    fi
    echo "postgres.sh: start attempt $attempt on port $port failed" >&2
  done
  cat "$dir/log" >&2 || true
  tresor_pg_stop
  return 1
}

tresor_pg_start
