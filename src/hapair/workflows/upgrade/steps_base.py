"""Upgrade phases 1–3: backup of the single server, software present, the etcd cluster."""

from __future__ import annotations

from hapair.components.etcd.config import etcd_argv, render_etcd_config
from hapair.components.etcd.probe import check_quorum, endpoint_health_argv, parse_endpoint_health
from hapair.exec.runtime import ServiceSpec
from hapair.plan.step import Check, CommandCheck, Run, Step, StepContext, StepKind
from hapair.workflows.upgrade.params import HOST_VENV, UpgradeParams
from hapair.workflows.upgrade.stepkit import RuntimeFor, file_step, guarded, service_step

BACKUP_DIR = "/var/lib/hapair/backups/upgrade"
PLAN = "upgrade"

# Software each role needs, checked before anything changes (the lab has it preinstalled; on
# a real server the Debian packages and hapair's host virtualenv are installed first).
NODE_SOFTWARE = ("/usr/bin/etcd", "/usr/bin/etcdctl", "/usr/sbin/haproxy", "/usr/sbin/pgbouncer",
                 "/usr/bin/redis-server", "/usr/sbin/keepalived", "/usr/sbin/nginx",
                 f"{HOST_VENV}/bin/patroni", f"{HOST_VENV}/bin/patronictl")
WITNESS_SOFTWARE = ("/usr/bin/etcd", "/usr/bin/etcdctl", "/usr/bin/redis-server")


def sid(host: str, name: str) -> str:
    return f"{PLAN}/{host}/{name}"


def software_steps(p: UpgradeParams) -> list[Step]:
    steps = []
    for host in p.etcd_hosts:
        wanted = NODE_SOFTWARE if host.has_role("node") else WITNESS_SOFTWARE
        script = 'missing=""; for f in "$@"; do [ -x "$f" ] || missing="$missing $f"; done; ' \
                 '[ -z "$missing" ] || { echo "missing:$missing" >&2; exit 1; }'
        steps.append(Step(
            id=sid(host.name, "software"), host=host.name, kind=StepKind.PROBE,
            reason="the HA software (etcd, HAProxy, PgBouncer, Redis, keepalived, nginx, "
                   "Patroni) must be installed before any change",
            verify=CommandCheck(["sh", "-c", script, "sh", *wanted],
                                description=f"{len(wanted)} programs are installed"),
        ))
    return steps


def backup_steps(p: UpgradeParams) -> list[Step]:
    pg, primary = p.inv.services.postgres, p.names.primary
    dump = f"{BACKUP_DIR}/{pg.database}.dump"
    dump_script = (
        'set -e; install -d -m 0700 -o postgres -g postgres "$1"; '
        'runuser -u postgres -- pg_dump -Fc -d "$2" -f "$1/$2.dump.tmp"; '
        'runuser -u postgres -- pg_restore -l "$1/$2.dump.tmp" >/dev/null; '
        'mv "$1/$2.dump.tmp" "$1/$2.dump"'
    )
    configs = f"{BACKUP_DIR}/configs.tar.gz"
    data = pg.data_dir.lstrip("/")
    # Configuration only: the app's env file (secrets) is deliberately not copied.
    # etc/hapair/static-addresses: the boot-time service address, for rollback (not the
    # whole directory: it holds the S3 site's credentials).
    config_paths = ["etc/redis", "etc/nginx", "etc/supervisor", f"{data}/postgresql.conf",
                    f"{data}/pg_hba.conf", f"{data}/postgresql.auto.conf",
                    "etc/hapair/static-addresses"]
    tar_script = 'set -e; out="$1"; shift; umask 077; tar -czf "$out.tmp" -C / ' \
                 '--ignore-failed-read "$@" 2>/dev/null || [ -s "$out.tmp" ]; mv "$out.tmp" "$out"'
    media = f"{BACKUP_DIR}/media-inventory.tsv"
    storage_dir = p.inv.services.storage.data_dir
    media_script = 'set -e; umask 077; cd "$1"; find . -type f -printf "%P\\t%s\\n" | sort ' \
                   '> "$2.tmp"; mv "$2.tmp" "$2"'
    return [
        Step(id=sid(primary, "backup.database"), host=primary, kind=StepKind.COMMAND,
             reason="a verified logical backup (pg_dump -Fc, checked with pg_restore -l) "
                    "before anything changes",
             action=Run(["sh", "-c", dump_script, "sh", BACKUP_DIR, pg.database], timeout=3600),
             verify=CommandCheck(["pg_restore", "-l", dump], user="postgres",
                                 description=f"{dump} is a readable custom-format dump")),
        Step(id=sid(primary, "backup.configs"), host=primary, kind=StepKind.COMMAND,
             reason="the single server's configuration, kept for rollback (no env files)",
             action=Run(["sh", "-c", tar_script, "sh", configs, *config_paths]),
             verify=CommandCheck(["test", "-s", configs], description=f"{configs} exists")),
        Step(id=sid(primary, "backup.media-inventory"), host=primary, kind=StepKind.COMMAND,
             reason="an inventory of the media objects (key and size) to compare against later",
             action=Run(["sh", "-c", media_script, "sh", storage_dir, media]),
             verify=CommandCheck(["test", "-f", media], description=f"{media} exists")),
    ]


def etcd_steps(p: UpgradeParams, runtime_for: RuntimeFor) -> list[Step]:
    steps: list[Step] = []
    for host in p.etcd_hosts:
        params = p.etcd(host.name)
        data_dir = params.data_dir or f"/var/lib/etcd/{host.name}"
        steps.append(Step(
            id=sid(host.name, "etcd.data-dir"), host=host.name, kind=StepKind.COMMAND,
            reason="etcd keeps its data in its own directory, owned by the etcd user",
            action=Run(["install", "-d", "-m", "0700", "-o", "etcd", "-g", "etcd", data_dir]),
            verify=CommandCheck(["test", "-d", data_dir], description=f"{data_dir} exists")))
        steps.append(file_step(sid(host.name, "etcd.config"), host.name,
                               render_etcd_config(params),
                               "etcd member configuration, bound to the host's private address"))
        spec = ServiceSpec(name="etcd", command=tuple(etcd_argv(params, "/usr/bin/etcd")),
                           user="etcd", stop_wait_secs=30, priority=50)
        steps.append(service_step(sid(host.name, "etcd.service"), host.name, spec, runtime_for,
                                  "one of three etcd members: the quorum Patroni's leader key "
                                  "lives in", settle=15))
    last = p.etcd_hosts[-1].name
    members = p.etcd_members

    def quorum(ctx: StepContext) -> Check:
        res = ctx.transport.run(endpoint_health_argv(members), check=False, timeout=30,
                                env={"ETCDCTL_API": "3"})
        health = parse_endpoint_health(res.stdout or "[]")
        quorum_check = check_quorum(health, len(members))
        healthy = sum(1 for h in health if h.healthy)
        ok = quorum_check.ok and healthy == len(members)
        return Check(ok, quorum_check.reason)

    steps.append(Step(
        id=sid(last, "etcd.quorum"), host=last, kind=StepKind.PROBE,
        reason=f"all {len(members)} etcd members healthy before Patroni depends on them",
        verify=guarded("etcd endpoint health: every member healthy", quorum),
        settle_timeout=60, poll_interval=2))
    return steps
