"""Pure decisions of the compose rollback: what the data directory gets back, which of the
user's containers are recreated, where an interrupted rollback resumes. No I/O.

What Patroni changed in the data directory when it took it over (patroni 4.1,
postgresql/config.py), and what the official image needs to start it as the same server:

- `postgresql.conf` → renamed `postgresql.base.conf` (byte for byte the original); Patroni's
  own `postgresql.conf` includes it and adds its parameters (hba_file, ident_file, the
  replication settings, on a standby primary_conninfo). Back: base → postgresql.conf, Patroni's
  kept as `postgresql.conf.hapair-pair`.
- `pg_hba.conf` and `pg_ident.conf` → REPLACED by the generated rules; the originals are not
  kept anywhere (Patroni's `*.backup` files are copies of its own versions). Back: the
  pre-upgrade copies `<file>.hapair-before` in the data directory if they exist, else the
  rules the official image writes (initdb's defaults for POSTGRES_INITDB_ARGS, then
  `host all all all <POSTGRES_HOST_AUTH_METHOD>`), which give the same logins unless the user
  had edited the file by hand. Patroni's copies kept as `*.hapair-pair`.
- `standby.signal`/`recovery.signal`: only on a replica; the target is the leader, removed if
  left behind (a plain server would otherwise start in recovery).
- `postgresql.auto.conf`: Patroni only strips recovery settings a primary does not have; the
  upgrade's `ALTER SYSTEM SET max_slot_wal_keep_size` is reset by its own step.
- `patroni.dynamic.json` and the `*.backup` copies stay (PostgreSQL ignores them).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from hapair.compose.yamlio import load_plain
from hapair.exec.journal import History

PLAN = "rollback"
FIRST_STEP = "compose.redis-master"  # every compose rollback starts with it, on the target
PAIR_SUFFIX = ".hapair-pair"  # what the pair had, kept beside what the rollback restores
BEFORE_SUFFIX = ".hapair-before"  # what the upgrade kept of the single server


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/compose.{name}"


def compose_resume_target(h: History) -> str | None:
    """The target of a compose rollback that started after the last completed one."""
    last_ok = max((i for i, r in enumerate(h.runs) if r.result == "ok"), default=-1)
    later = {r.run_id for r in h.runs[last_ok + 1:]}
    for step, state in h.steps.items():
        parts = step.split("/")
        if len(parts) == 3 and parts[2] == FIRST_STEP and state.run_id in later:
            return parts[1]
    return None


# --- the user's compose file -----------------------------------------------------------------


def changed_services(original: str, edited: str, exclude: tuple[str, ...]) -> list[str]:
    """The services the upgrade's edit changed that the original starts by default (the
    ones `up -d --no-deps` must recreate from the original), minus `exclude` (PostgreSQL and
    Redis: handed back by their own steps)."""
    before = load_plain(original).get("services") or {}
    after = load_plain(edited).get("services") or {}
    return sorted(name for name, svc in before.items()
                  if isinstance(svc, dict) and not svc.get("profiles")
                  and name not in exclude and after.get(name) != svc)


def service_names(text: str) -> set[str]:
    return set(load_plain(text).get("services") or {})


# --- the data directory --------------------------------------------------------------------


@dataclass(frozen=True)
class PgEnv:
    """What the user's postgres service sets that shaped its data directory at initdb."""

    pgdata: str
    host_auth: str  # POSTGRES_HOST_AUTH_METHOD ("" = the image's default)
    initdb_args: str  # POSTGRES_INITDB_ARGS


# Printed by a one-off container of the user's postgres service (no secret among them).
PG_ENV_SCRIPT = ('printf "PGDATA=%s\\nAUTH=%s\\nINITDB=%s\\n" "${PGDATA-}" '
                 '"${POSTGRES_HOST_AUTH_METHOD-}" "${POSTGRES_INITDB_ARGS-}"')


def parse_pg_env(out: str) -> PgEnv:
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    if "PGDATA" not in values:
        raise ValueError(f"no PGDATA in the postgres service's answer: {out[:200]!r}")
    return PgEnv(values["PGDATA"], values.get("AUTH", ""), values.get("INITDB", ""))


def initdb_auth(args: str) -> tuple[str, str]:
    """(local, host) methods initdb writes for these arguments: trust unless -A/--auth,
    --auth-local, --auth-host say otherwise (in order: the last one wins, as in initdb)."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    local = host = "trust"
    i = 0
    while i < len(words):
        word, value = words[i], None
        for opt in ("--auth-local", "--auth-host", "--auth", "-A"):
            if word == opt and i + 1 < len(words):
                value, i = words[i + 1], i + 1
            elif word.startswith(opt + "=") or (opt == "-A" and word.startswith("-A")
                                                and len(word) > 2):
                value = word.split("=", 1)[1] if "=" in word else word[2:]
            if value is not None:
                if opt != "--auth-host":
                    local = value
                if opt != "--auth-local":
                    host = value
                break
        i += 1
    return local, host


def default_host_auth(major: int) -> str:
    """The entrypoint's default: `postgres -C password_encryption` (scram from 14 on)."""
    return "scram-sha-256" if major >= 14 else "md5"


def stock_pg_hba(major: int, env: PgEnv) -> str:
    """The pg_hba.conf the official postgres image writes at initdb for these settings."""
    local, host = initdb_auth(env.initdb_args)
    door = env.host_auth or default_host_auth(major)
    lines = [
        "# PostgreSQL Client Authentication Configuration File",
        "# Written by `hapair rollback`: the rules the official postgres image writes at initdb",
        "# (POSTGRES_INITDB_ARGS, POSTGRES_HOST_AUTH_METHOD). The upgrade's Patroni had",
        "# replaced the original; Patroni's rules are kept in pg_hba.conf.hapair-pair.",
        "",
        "# TYPE  DATABASE        USER            ADDRESS                 METHOD",
        "",
        '# "local" is for Unix domain socket connections only',
        f"local   all             all                                     {local}",
        "# IPv4 local connections:",
        f"host    all             all             127.0.0.1/32            {host}",
        "# IPv6 local connections:",
        f"host    all             all             ::1/128                 {host}",
        "# Allow replication connections from localhost, by a user with the",
        "# replication privilege.",
        f"local   replication     all                                     {local}",
        f"host    replication     all             127.0.0.1/32            {host}",
        f"host    replication     all             ::1/128                 {host}",
        "",
    ]
    if door == "trust":
        lines += ["# warning trust is enabled for all connections",
                  "# see https://www.postgresql.org/docs/current/auth-trust.html"]
    return "\n".join([*lines, f"host all all all {door}", ""])


STOCK_PG_IDENT = ("# PostgreSQL User Name Maps\n"
                  "# Written by `hapair rollback`: no map, as initdb leaves it (Patroni's map is "
                  "kept in\n# pg_ident.conf.hapair-pair).\n")

# Run as the postgres OS user in a one-off container of the user's postgres service, on the
# stopped data directory: $1 the data directory, $2 pg_hba.conf, $3 pg_ident.conf (used when
# no pre-upgrade copy exists). Safe to run twice: Patroni's files are kept once.
HANDBACK_SCRIPT = r"""set -eu
cd "$1"
test -s PG_VERSION
if grep -qx "include 'postgresql.base.conf'" postgresql.conf; then
  [ -f postgresql.base.conf ] || cp -p postgresql.base.conf.backup postgresql.base.conf
  cp -p postgresql.conf postgresql.conf.hapair-pair
  mv -f postgresql.base.conf postgresql.conf
fi
umask 077
for f in pg_hba.conf pg_ident.conf; do
  [ -e "$f.hapair-pair" ] || [ ! -e "$f" ] || cp -p "$f" "$f.hapair-pair"
done
put() {  # $1 file, $2 content if no pre-upgrade copy: a new 0600 file renamed into place
  rm -f "$1.hapair-tmp"
  if [ -f "$1.hapair-before" ]; then cp "$1.hapair-before" "$1.hapair-tmp"
  else printf '%s' "$2" > "$1.hapair-tmp"; fi
  mv -f "$1.hapair-tmp" "$1"
}
put pg_hba.conf "$2"
put pg_ident.conf "$3"
rm -f standby.signal recovery.signal
"""


# --- answers of the tools in the containers ---------------------------------------------------


def info_field(out: str, name: str) -> str | None:
    """`role` from redis-cli's INFO output (`role:master`)."""
    for line in out.splitlines():
        key, _, value = line.strip().partition(":")
        if key == name:
            return value
    return None


def last_int(out: str) -> int | None:
    """redis-cli's last answer as a number (DBSIZE after AUTH's `OK`)."""
    for line in reversed(out.split()):
        if line.lstrip("-").isdigit():
            return int(line)
    return None
