"""The inventory draft `hapair init` writes from a discovered Stack (pure: Stack → YAML text).

Every value hapair could not decide is the placeholder `<TODO>` — which no inventory field
accepts, so `hapair inventory check` fails until it is replaced (a placeholder must never
reach a config file: ORIGINAL_DEFECTS #6) — with a `# TODO: …` comment saying what goes
there. Values that were assumed rather than read carry a `# check: …` comment. Secrets are
never copied: the draft names 0600 files to create and the variable that holds each value.

Written with ruamel.yaml round-trip types so the comments are part of the document.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from hapair.compose.classify import image_name, is_alpine, pgdata, redis_data_dir
from hapair.compose.model import ROLES, Service, Stack
from hapair.compose.yamlio import Style, dump_roundtrip

TODO = "<TODO>"
HAPAIR_DIR = "/opt/hapair"
REDIS_CONFIG = "/etc/hapair-redis/redis.conf"  # where generate.py puts the writable config


@dataclass(frozen=True)
class SshInfo:
    """What the user told `init` about reaching the host (None: not given)."""

    address: str | None = None
    user: str | None = None
    port: int | None = None
    key: str | None = None
    host_key: str | None = None


def hapair_project(project: str) -> str:
    """The compose project of the services hapair generates (etcd, Patroni, router, …)."""
    return f"{project}-hapair"


def hapair_compose_file(project: str, host: str) -> str:
    return f"{HAPAIR_DIR}/{project}/{host}/docker-compose.hapair.yml"


class _Doc:
    """A CommentedMap builder that counts what it could not decide."""

    def __init__(self) -> None:
        self.todo = 0

    def put(self, m: CommentedMap, key: str, value: Any, note: str | None = None,
            *, todo: bool = False) -> None:
        m[key] = value
        if value == TODO or (isinstance(value, list) and TODO in value):
            self.todo += 1
        if note:
            m.yaml_add_eol_comment(("TODO: " if todo else "") + note, key)

    def todo_value(self, m: CommentedMap, key: str, note: str) -> None:
        self.put(m, key, TODO, note, todo=True)


def render_draft(stack: Stack, ssh: SshInfo | None = None, node: str = "node1") -> tuple[str,
                                                                                           int]:
    """(the draft's YAML text, the number of `<TODO>` values in it)."""
    ssh = ssh or SshInfo()
    d = _Doc()
    doc = CommentedMap()
    doc.yaml_set_start_comment("\n".join(_header(stack)))
    d.put(doc, "version", 1)
    d.put(doc, "cluster", _cluster(stack.project.name), "from the compose project name")
    d.put(doc, "durability", "sync", "check: sync | strict | async (docs/inventory.md)")
    hosts = CommentedSeq()
    hosts.append(_node1(d, stack, ssh, node))
    hosts.append(_node2(d, stack, ssh))
    hosts.append(_witness(d, stack, ssh))
    doc["hosts"] = hosts
    doc["front_door"] = _front_door(d, stack)
    doc["services"] = _services(d, stack)
    return align_comments(dump_roundtrip(doc, Style(2, 4, 2))), d.todo


_EOL_COMMENT = re.compile(r"^(?P<body>\s*[^#\s].*?)\s+(?P<comment># .*)$")


def align_comments(text: str) -> str:
    """Two spaces before every end-of-line comment (ruamel places them unevenly)."""
    return "\n".join(_EOL_COMMENT.sub(r"\g<body>  \g<comment>", line)
                     for line in text.split("\n"))


# --- header ----------------------------------------------------------------------------------


def _header(stack: Stack) -> list[str]:
    where = (f"from the running stack on {stack.host} (over SSH)" if stack.source == "ssh"
             else "offline, from the files alone (versions from image tags: unverified)")
    lines = [
        f"hapair inventory draft for compose project {stack.project.name}, written by "
        f"`hapair init` {where}.",
        f"`{TODO}` marks what hapair could not decide (`# TODO:` says what goes there);",
        "`hapair inventory check` fails until each is filled. `# check:` marks an assumption.",
        "",
        "Compose services recognised (role: service — why):",
    ]
    lines += [f"  {m.role}: {m.service} — {m.reason}" for m in stack.roles]
    lines += [f"  {u.role}: UNDECIDED between {', '.join(u.candidates)}"
              for u in stack.undecided]
    if stack.unassigned:
        lines.append(f"  not recognised: {', '.join(stack.unassigned)}")
    if stack.findings:
        lines += ["", "Findings:"]
        lines += [f"  [{f.severity}] {f.message}" + (f" (defect #{f.defect})" if f.defect else "")
                  for f in stack.findings]
    return lines


def _cluster(project: str) -> str:
    name = re.sub(r"[^a-z0-9-]", "-", project.lower()).strip("-")[:32].strip("-")
    return name or TODO


# --- hosts -----------------------------------------------------------------------------------


def _flow(*items: str) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _is_ip(value: str | None) -> bool:
    try:
        ipaddress.ip_address(value or "")
        return True
    except ValueError:
        return False


def _node1(d: _Doc, stack: Stack, ssh: SshInfo, node: str) -> CommentedMap:
    h = CommentedMap()
    d.put(h, "name", node)
    if _is_ip(ssh.address):
        d.put(h, "address", ssh.address,
              "check: the address hapair reached over SSH; put the private one if it differs")
    else:
        d.todo_value(h, "address", f"{node}'s private address (this server)")
    d.put(h, "roles", _flow("node"))
    d.put(h, "runtime", "compose")
    c = CommentedMap()
    d.put(c, "project", stack.project.name)
    offline = stack.source == "offline"
    note = "check: read offline on this machine; the paths on the server if they differ"
    d.put(c, "files", _flow(*stack.files), note if offline else None)
    d.put(c, "env_files", _flow(*stack.env_files), note if offline and stack.env_files else None)
    c["services"] = _role_map(d, stack)
    h["compose"] = c
    h["ssh"] = _ssh(d, ssh, ssh.address or "ADDR", first=True)
    return h


def _node2(d: _Doc, stack: Stack, ssh: SshInfo) -> CommentedMap:
    h = CommentedMap()
    d.put(h, "name", "node2")
    d.todo_value(h, "address", "the second server's private address")
    d.put(h, "roles", _flow("node"))
    d.put(h, "runtime", "compose")
    c = CommentedMap()
    d.put(c, "project", stack.project.name)
    d.put(c, "files", _flow(*stack.files), "check: hapair installs node1's files at these paths")
    env = [_for_node2(e) for e in stack.env_files]
    if env:
        d.put(c, "env_files", _flow(*env), "check: node2's own env file (hapair writes it)")
    c["services"] = _role_map(d, stack)
    h["compose"] = c
    h["ssh"] = _ssh(d, ssh, "the second server", first=False)
    return h


def _role_map(d: _Doc, stack: Stack) -> CommentedMap:
    """`compose.services`: which service plays which role (the header says why)."""
    m = CommentedMap()
    for role in ROLES:
        if role == "worker":
            workers = [s.name for s in stack.services_for("worker")]
            if workers:
                d.put(m, "worker", _flow(*workers))
            continue
        svc = stack.service_for(role)
        undecided = next((u for u in stack.undecided if u.role == role), None)
        if svc is not None:
            d.put(m, role, svc.name)
        elif undecided is not None:
            d.todo_value(m, role, f"one of {', '.join(undecided.candidates)}")
    return m


def _for_node2(path: str) -> str:
    return re.sub(r"node1", "node2", path) if "node1" in posixpath.basename(path) else path


def _witness(d: _Doc, stack: Stack, ssh: SshInfo) -> CommentedMap:
    h = CommentedMap()
    d.put(h, "name", "witness")
    d.todo_value(h, "address",
                 "a small third host's private address (third etcd member and Sentinel)")
    d.put(h, "roles", _flow("witness"))
    d.put(h, "runtime", "compose", "check: Docker on the witness; `supervisor` for native "
          "processes")
    c = CommentedMap()
    project = hapair_project(stack.project.name)
    d.put(c, "project", project)
    d.put(c, "files", _flow(hapair_compose_file(stack.project.name, "witness")),
          "written by hapair")
    h["compose"] = c
    h["ssh"] = _ssh(d, ssh, "the witness", first=False)
    return h


def _ssh(d: _Doc, ssh: SshInfo, where: str, *, first: bool) -> CommentedMap:
    s = CommentedMap()
    same = "" if first else "check: assumed the same as node1"
    d.put(s, "user", ssh.user or "root", (None if ssh.user else "check: the login user")
          if first else same)
    d.put(s, "port", ssh.port or 22, None if first else same)
    if ssh.key:
        d.put(s, "key", ssh.key, None if first else same)
    else:
        d.todo_value(s, "key", "the private key file hapair logs in with (chmod 600)")
    if first and ssh.host_key:
        d.put(s, "host_key", ssh.host_key, "pinned when `init` connected")
    else:
        target = ssh.address if first and ssh.address else where
        d.todo_value(s, "host_key", f"pin it: ssh-keyscan -t ed25519 <{target}>"
                     if not first else f"pin it: ssh-keyscan -t ed25519 {target}")
    return s


# --- front door and services -----------------------------------------------------------------


def _front_door(d: _Doc, stack: Stack) -> CommentedMap:
    f = CommentedMap()
    d.put(f, "kind", "vip", "check: vip (keepalived on both nodes) | lb_host | static")
    d.todo_value(f, "address", "the address users will reach: a free address for the VIP in "
                 "the nodes' subnet")
    lb = stack.service_for("http_lb")
    port = _published_for(lb, (80,)) if lb else None
    d.put(f, "port", port or 80, f"{lb.name} publishes it today" if lb and port else
          "check: the HTTP port users reach")
    d.todo_value(f, "interface", "the network interface of the nodes' private address (e.g. "
                 "eth0)")
    return f


def _services(d: _Doc, stack: Stack) -> CommentedMap:
    s = CommentedMap()
    s["postgres"] = _postgres(d, stack)
    s["redis"] = _redis(d, stack)
    s["storage"] = _storage(d, stack)
    s["backend"] = _app(d, stack, "backend", 8000, "/health/")
    s["frontend"] = _app(d, stack, "frontend", 3000, "/api/health")
    s["http_lb"] = _http_lb(d, stack)
    return s


def _missing(d: _Doc, role: str, keys: Sequence[str]) -> CommentedMap:
    m = CommentedMap()
    for key in keys:
        d.todo_value(m, key, f"no {role} service recognised")
    return m


def _secret_ref(d: _Doc, m: CommentedMap, key: str, file: str, variable: str | None,
                stack: Stack, extra: str = "") -> None:
    where = f" (in {', '.join(posixpath.basename(e) for e in stack.env_files)})" \
        if stack.env_files else ""
    value = f"the value of {variable}{where}" if variable else "the value"
    ref = CommentedMap(file=file)
    ref.fa.set_flow_style()
    d.put(m, key, ref, f"create {file} (chmod 600) with {value}{extra}", todo=True)


def _postgres(d: _Doc, stack: Stack) -> CommentedMap:
    pg = stack.service_for("postgres")
    keys = ("version", "port", "data_dir", "bin_dir", "database", "owner")
    if pg is None:
        return _missing(d, "postgres", (*keys, "password", "superuser_password"))
    m = CommentedMap()
    fact = stack.versions.get("postgres")
    if fact and fact.major is not None:
        note = (f"read from the server: {fact.detail}" if fact.verified
                else f"check: unverified, {fact.detail}; `hapair init --host` reads the server")
        d.put(m, "version", fact.major, note)
    else:
        d.todo_value(m, "version", f"the PostgreSQL major ({pg.image} has no version tag)")
    _port(d, m, pg, 5432)
    data = pgdata(pg)
    mount = pg.mount_at(data)
    on = (f"volume {stack.project.volume_name(mount.source)}"
          if mount and mount.type == "volume" and mount.source else "NOT on a named volume")
    d.put(m, "data_dir", data, f"PGDATA inside the container, on {on}")
    if image_name(pg.image) == "postgres" and fact and fact.major is not None:
        debian = f"/usr/lib/postgresql/{fact.major}/bin"
        bin_dir = "/usr/local/bin" if is_alpine(pg.image) else debian
        d.put(m, "bin_dir", bin_dir, "the official image's layout")
    else:
        d.todo_value(m, "bin_dir", f"where {pg.image}'s postgres binaries are")
    user = pg.environment.get("POSTGRES_USER") or "postgres"
    database = pg.environment.get("POSTGRES_DB") or user
    d.put(m, "database", database, "POSTGRES_DB" if pg.environment.get("POSTGRES_DB")
          else "check: the image's default database (POSTGRES_DB unset)")
    d.put(m, "owner", user, "POSTGRES_USER")
    _secret_ref(d, m, "password", "secrets/postgres_password", "POSTGRES_PASSWORD", stack)
    _secret_ref(d, m, "superuser_password", "secrets/postgres_superuser_password",
                "POSTGRES_PASSWORD", stack,
                f"; the image makes POSTGRES_USER ({user}) the superuser")
    return m


def _redis(d: _Doc, stack: Stack) -> CommentedMap:
    redis = stack.service_for("redis")
    if redis is None:
        return _missing(d, "redis", ("port", "data_dir", "config", "password"))
    m = CommentedMap()
    _port(d, m, redis, 6379)
    mount = redis.mount_at(redis_data_dir(redis))
    on = (f", on volume {stack.project.volume_name(mount.source)}"
          if mount and mount.type == "volume" and mount.source else "")
    d.put(m, "data_dir", redis_data_dir(redis), f"inside the container{on}")
    d.put(m, "config", REDIS_CONFIG, "check: hapair renders it here, on a writable volume")
    variable = next((k for k in redis.environment if re.search(r"REDIS.*PASS", k)), None)
    _secret_ref(d, m, "password", "secrets/redis_password", variable, stack)
    return m


def _storage(d: _Doc, stack: Stack) -> CommentedMap:
    st = stack.service_for("storage")
    if st is None:
        return _missing(d, "storage", ("backend", "port", "data_dir", "access_key",
                                       "secret_key", "buckets"))
    m = CommentedMap()
    d.put(m, "backend", "minio", f"image {st.image}")
    d.put(m, "port", 9000, "the S3 API port of `minio server` (the console is apart)")
    args = list(st.command or ())
    data = next((a for a in args[args.index("server") + 1:] if a.startswith("/")), None) \
        if "server" in args else None
    if data:
        mount = st.mount_at(data)
        on = (f", on volume {stack.project.volume_name(mount.source)}"
              if mount and mount.type == "volume" and mount.source else "")
        d.put(m, "data_dir", data, f"inside the container{on}")
    else:
        d.todo_value(m, "data_dir", "the directory `minio server` serves")
    _secret_ref(d, m, "access_key", "secrets/s3_access_key", "MINIO_ROOT_USER", stack)
    _secret_ref(d, m, "secret_key", "secrets/s3_secret_key", "MINIO_ROOT_PASSWORD", stack)
    setup = stack.service_for("storage_setup")
    buckets = buckets_created(setup) if setup else []
    if buckets:
        d.put(m, "buckets", _flow(*buckets), f"created by {setup.name} (mc mb)")  # type: ignore[union-attr]
    else:
        d.put(m, "buckets", _flow(TODO), "the bucket names", todo=True)
    return m


def _app(d: _Doc, stack: Stack, role: str, default_port: int, default_health: str
         ) -> CommentedMap:
    svc = stack.service_for(role)  # type: ignore[arg-type]
    if svc is None:
        return _missing(d, role, ("port", "health", "app_dir"))
    m = CommentedMap()
    port, why = app_port(svc)
    if port:
        d.put(m, "port", port, why)
    else:
        d.todo_value(m, "port", f"the port {svc.name} listens on")
    path = health_path(svc)
    if path:
        d.put(m, "health", path, f"from {svc.name}'s healthcheck")
    else:
        d.todo_value(m, "health", f"{svc.name}'s health URL path (e.g. {default_health})")
    if svc.working_dir:
        d.put(m, "app_dir", svc.working_dir, "working_dir inside the container")
    else:
        d.todo_value(m, "app_dir", f"where {svc.name}'s code lives")
    if role == "backend":
        env = (svc.env_files or stack.env_files)[:1]
        if env:
            d.put(m, "env_file", env[0])
    return m


def _http_lb(d: _Doc, stack: Stack) -> CommentedMap:
    lb = stack.service_for("http_lb")
    m = CommentedMap()
    kind = image_name(lb.image) if lb else ""
    if kind in ("nginx", "haproxy"):
        d.put(m, "kind", kind, f"{lb.name} today")  # type: ignore[union-attr]
    else:
        d.todo_value(m, "kind", "nginx | haproxy")
    port = _published_for(lb, (80,)) if lb else None
    d.put(m, "port", port or 80)
    routes = CommentedMap()
    note = "the path prefixes of each upstream (nginx's location blocks); some /api/ paths " \
           "belong to the frontend"
    d.put(routes, "backend", _flow(TODO), note, todo=True)
    d.put(routes, "frontend", _flow(TODO), note, todo=True)
    m["routes"] = routes
    return m


def _port(d: _Doc, m: CommentedMap, svc: Service, default: int) -> None:
    published = _published_for(svc, (default,))
    if published and any(p.on_all_addresses for p in svc.ports):
        d.put(m, "port", published, "published on every address today; hapair binds it to "
              "each node's private address")
    else:
        d.put(m, "port", published or default)


def _published_for(svc: Service | None, targets: Sequence[int]) -> int | None:
    for p in svc.ports if svc else ():
        if p.target in targets and p.published.isdigit():
            return int(p.published)
    return None


# --- small pure readers ----------------------------------------------------------------------

_BIND = re.compile(r"(?:--bind[= ]|-b\s+)\S*?:(\d+)\b|(?:--port[= ]|-p\s+)(\d+)\b")
_URL_PATH = re.compile(r"https?://[^/\s'\"]+(/[^\s'\"]*)")
_MC_MB = re.compile(r"\bmc\s+mb\s+(?:-{1,2}[\w-]+\s+)*[^/\s]+/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])")


def app_port(svc: Service) -> tuple[int | None, str]:
    """The port the app listens on inside its container, and where that was read."""
    if m := _BIND.search(svc.command_text):
        return int(m.group(1) or m.group(2)), "from its command line"
    port = svc.environment.get("PORT")
    if port and port.isdigit():
        return int(port), "PORT in its environment"
    for value in svc.expose:
        if value.split("/")[0].isdigit():
            return int(value.split("/")[0]), "the port it exposes"
    return None, ""


def health_path(svc: Service) -> str | None:
    m = _URL_PATH.search(" ".join(svc.healthcheck or ()))
    return m.group(1) if m else None


def buckets_created(setup: Service) -> list[str]:
    return list(dict.fromkeys(_MC_MB.findall(setup.command_text)))
