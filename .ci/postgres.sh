# Source this file: it starts a throwaway PostgreSQL server on loopback for the tests that
# share an Optuna study between workers, and exports SEQBENCH_TEST_POSTGRES_URL.
# It installs Debian's package when the server is missing and it is allowed to (root + apt);
# if no server can be started it says why, and those tests skip with that reason.
# The server is stopped by `stop_test_postgres` (registered as an EXIT trap by .ci/run).

find_pg_bin() {
  for dir in /usr/lib/postgresql/*/bin $(dirname "$(command -v initdb 2>/dev/null)" 2>/dev/null); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/createdb" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

start_test_postgres() {
  local bin port=55432
  if ! bin=$(find_pg_bin); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "ci: installing PostgreSQL (Debian package)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || true
    fi
    bin=$(find_pg_bin) || { echo "ci: no PostgreSQL server available; its tests will skip"; return 0; }
  fi
  PG_TEST_DIR=$(mktemp -d)
  local as=()
  if [ "$(id -u)" = 0 ]; then  # the server refuses to run as root
    chown postgres "$PG_TEST_DIR"
    as=(runuser -u postgres --)
  fi
  PG_TEST_BIN=$bin
  PG_TEST_AS=("${as[@]}")
  "${as[@]}" "$bin/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth=trust >/dev/null \
    && "${as[@]}" "$bin/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/log" -w \
         -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TEST_DIR" start >/dev/null \
    && "${as[@]}" "$bin/createdb" -h 127.0.0.1 -p $port -U postgres seqbench \
    || { echo "ci: PostgreSQL did not start; its tests will skip"; stop_test_postgres; return 0; }
  export SEQBENCH_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/seqbench"
  echo "ci: PostgreSQL running at $SEQBENCH_TEST_POSTGRES_URL"
}

stop_test_postgres() {
  if [ -n "${PG_TEST_BIN:-}" ] && [ -f "$PG_TEST_DIR/data/postmaster.pid" ]; then
    "${PG_TEST_AS[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m fast stop >/dev/null || true
  fi
  if [ -n "${PG_TEST_DIR:-}" ]; then rm -rf "$PG_TEST_DIR"; fi
  PG_TEST_BIN=""
}
