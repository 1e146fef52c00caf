"""Edits of the user's OWN compose file, per node, kept minimal and shown as a unified diff.

ruamel.yaml round-trip keeps the user's comments, key order, quoting and indentation; only the
lines an edit means to change differ. What is changed, and why:
- data ports (postgres, redis, storage) published on every address → bound to the node's
  private address (ORIGINAL_DEFECTS #26);
- postgres and redis move to the `single-node` profile with `restart: "no"`: hapair-patroni
  and hapair-redis take over the SAME volumes; the old services stay defined for rollback but
  can never start beside them (not even after a Docker restart);
- `depends_on` entries on those services are dropped (they live in hapair's project now);
- the app's own `environment:` values that name them point at `hapair-router` (5433 for
  PostgreSQL, 6380 for Redis) — values in env files are reported, not edited;
- the scheduler (Celery beat) starts on exactly one node: on the others it gets the
  `scheduler` profile (hapair moves it on failover);
- `migrate` leaves the app's start command and becomes a one-shot `migrate` service in the
  `migrate` profile, run once by an explicit step (ORIGINAL_DEFECTS #24);
- on node2's copy, `env_file: .env.node1` becomes `.env.node2`.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from hapair.compose import normalize as n
from hapair.compose.generate_configs import ROUTER_PG_PORT, ROUTER_REDIS_PORT
from hapair.compose.model import Stack
from hapair.compose.recreate import Change, changes
from hapair.compose.yamlio import Style, dump_roundtrip, load_plain, load_roundtrip

ROUTER = "hapair-router"
ROLLBACK_PROFILE = "single-node"
SCHEDULER_PROFILE = "scheduler"
MIGRATE_PROFILE = "migrate"
MIGRATE_SERVICE = "migrate"
PG_STOP_GRACE = "120s"
_MIGRATE = re.compile(r"\b(manage\.py|django-admin)\s+migrate\b|\balembic\s+upgrade\b")
_SCHEDULER_NOTE = "hapair: the scheduler runs on"
_SHELLS = (("sh", "-c"), ("/bin/sh", "-c"), ("bash", "-c"), ("/bin/bash", "-c"))


@dataclass(frozen=True)
class NodeEdit:
    """Who this copy of the file is for."""

    node: str
    address: str  # the node's private address
    runs_scheduler: bool
    env_rename: tuple[str, str] | None = None  # ("node1", "node2") in env_file basenames


@dataclass(frozen=True)
class EditNote:
    service: str
    what: str
    reason: str

    def __str__(self) -> str:
        return f"{self.service}: {self.what} — {self.reason}"


@dataclass(frozen=True)
class EditResult:
    path: str
    node: str
    before: str
    after: str
    notes: tuple[EditNote, ...]
    recreate: dict[str, list[Change]] = field(default_factory=dict)  # service → changes

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return unified_diff(self.before, self.after, f"a{self.path}",
                            f"b{self.path} ({self.node})")

    def impact_lines(self) -> list[str]:
        """One line per service whose container the edit affects (what `plan` shows)."""
        out = []
        for service, found in self.recreate.items():
            fields = ", ".join(c.field for c in found)
            effect = "recreate" if any(c.effect == "recreate" for c in found) else "no restart"
            out.append(f"{service}: {effect} ({fields})")
        return out


def unified_diff(before: str, after: str, fromfile: str, tofile: str, context: int = 3) -> str:
    """difflib's unified diff without its "popular line" heuristic, which mis-aligns compose
    files (the same `working_dir: /app` line in every service) and shows unchanged lines."""
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = []
    for group in matcher.get_grouped_opcodes(context):
        if not out:
            out += [f"--- {fromfile}\n", f"+++ {tofile}\n"]
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append(f"@@ -{_range(i1, i2)} +{_range(j1, j2)} @@\n")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out += [" " + line for line in a[x1:x2]]
                continue
            out += ["-" + line for line in a[x1:x2]]
            out += ["+" + line for line in b[y1:y2]]
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def _range(start: int, stop: int) -> str:
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


class _Editor:
    def __init__(self, doc: CommentedMap, style: Style, stack: Stack, edit: NodeEdit,
                 text: str) -> None:
        self.text = text  # the file as it was (to recognise a previous run's comments)
        self.services: CommentedMap = doc.get("services") or CommentedMap()
        self.style = style
        self.stack = stack
        self.edit = edit
        self.notes: list[EditNote] = []
        self.env_file_refs: dict[str, list[str]] = {}  # variable → services reading it

    def note(self, service: str, what: str, reason: str) -> None:
        self.notes.append(EditNote(service, what, reason))

    def svc(self, name: str | None) -> CommentedMap | None:
        return self.services.get(name) if name else None

    @property
    def key_indent(self) -> int:  # column of a service's keys
        return 2 * self.style.mapping


def edit_compose_file(text: str, path: str, stack: Stack, edit: NodeEdit) -> EditResult:
    """The user's file `text` as it should be on `edit.node` (pure)."""
    doc, style = load_roundtrip(text)
    ed = _Editor(doc, style, stack, edit, text)
    pg = stack.service_for("postgres")
    redis = stack.service_for("redis")
    storage = stack.service_for("storage")
    for svc in (pg, redis, storage):
        if svc is not None:
            _bind_ports(ed, svc.name)
    replaced = [s.name for s in (pg, redis) if s is not None and s.name in ed.services]
    for name in replaced:
        _to_rollback_profile(ed, name, is_postgres=pg is not None and name == pg.name)
    _drop_depends_on(ed, set(replaced))
    _point_at_router(ed, pg.name if pg else None, redis.name if redis else None)
    for key, users in ed.env_file_refs.items():
        users = [u for u in users if u not in replaced]
        if users:
            ed.note(", ".join(users), f"{key} from an env file: not edited",
                    f"it still names the old service; point it at {ROUTER} in the env file")
    scheduler = stack.service_for("scheduler")
    if scheduler is not None and scheduler.name in ed.services:
        _scheduler(ed, scheduler.name)
    for name in stack.migrate_on_start:
        _split_migrate(ed, name)
    if edit.env_rename:
        _rename_env_files(ed, *edit.env_rename)
    after = dump_roundtrip(doc, style)
    return EditResult(path, edit.node, text, after, tuple(ed.notes),
                      _recreations(text, after))


def _recreations(before: str, after: str) -> dict[str, list[Change]]:
    old = load_plain(before).get("services") or {}
    new = load_plain(after).get("services") or {}
    out = {}
    for name in dict.fromkeys([*old, *new]):
        if name in old and name in new:
            found = changes(old[name] or {}, new[name] or {})
            if found:
                out[name] = found
    return out


def _same_kind(old: Any, value: str) -> Any:
    """A replacement string in the scalar style of the one it replaces."""
    return type(old)(value) if isinstance(old, str) and type(old) is not str else value


def _insert_after_image(m: CommentedMap, key: str, value: Any) -> None:
    keys = list(m)
    pos = keys.index("image") + 1 if "image" in keys else 0
    m.insert(pos, key, value)


def _flow(*items: str) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


# --- the edits ---------------------------------------------------------------------------------


def _bind_ports(ed: _Editor, name: str) -> None:
    svc = ed.svc(name)
    ports = svc.get("ports") if svc is not None else None
    if not isinstance(ports, list):
        return
    addr = ed.edit.address
    for i, entry in enumerate(ports):
        if isinstance(entry, dict):
            if (entry.get("host_ip") or "") in ("", "0.0.0.0", "::"):
                entry["host_ip"] = addr
                ed.note(name, f"port {entry.get('target')} bound to {addr}",
                        "published on every address before (defect #26)")
            continue
        ip, published, target, proto = n.split_port(n.as_str(entry))
        if ip not in ("", "0.0.0.0", "::"):
            continue
        host = f"[{addr}]" if ":" in addr else addr
        new = f"{host}:{published}:{target}" + ("" if proto == "tcp" else f"/{proto}")
        ports[i] = _same_kind(entry, new)
        ed.note(name, f"{entry} → {new}", "published on every address before (defect #26)")


def _to_rollback_profile(ed: _Editor, name: str, *, is_postgres: bool) -> None:
    svc = ed.svc(name)
    assert svc is not None
    if ROLLBACK_PROFILE in (svc.get("profiles") or []):
        return  # already done (edits are idempotent)
    role = "hapair-patroni" if is_postgres else "hapair-redis"
    _insert_after_image(svc, "profiles", _flow(ROLLBACK_PROFILE))
    svc.yaml_set_comment_before_after_key(
        "profiles", indent=ed.key_indent,
        before=f"hapair: {role} runs this data now, on the same volume. Kept for rollback "
               f"only:\ndocker compose --profile {ROLLBACK_PROFILE} up -d {name}")
    if "restart" in svc:
        svc["restart"] = DoubleQuotedScalarString("no")
    else:  # beside `profiles`, not at the end (where the comments after the service sit)
        svc.insert(list(svc).index("profiles") + 1, "restart", DoubleQuotedScalarString("no"))
    why = "only Patroni may start PostgreSQL" if is_postgres else "Sentinel decides the master"
    ed.note(name, f"profile {ROLLBACK_PROFILE}, restart \"no\"",
            f"replaced by {role} on the same volume; {why} (defect #16)")
    if is_postgres:
        if "stop_grace_period" in svc:
            svc["stop_grace_period"] = PG_STOP_GRACE
        else:  # beside `restart`: the end of the mapping carries the blank line after it
            svc.insert(list(svc).index("restart") + 1, "stop_grace_period", PG_STOP_GRACE)
        ed.note(name, f"stop_grace_period {PG_STOP_GRACE}",
                "Docker's default 10 s can SIGKILL PostgreSQL before a clean shutdown")


def _drop_depends_on(ed: _Editor, gone: set[str]) -> None:
    for name, svc in ed.services.items():
        deps = svc.get("depends_on") if isinstance(svc, dict) else None
        if not deps or name in gone:
            continue
        removed = [d for d in list(deps) if d in gone]
        for d in removed:
            if isinstance(deps, dict):
                del deps[d]
            else:
                deps.remove(d)
        if removed:
            if not deps:
                del svc["depends_on"]
            ed.note(name, f"depends_on {', '.join(removed)} removed",
                    f"they run in hapair's project now, reached through {ROUTER}")


def _point_at_router(ed: _Editor, pg: str | None, redis: str | None) -> None:
    rules: list[tuple[re.Pattern[str], str]] = []
    if pg:
        rules.append((re.compile(rf"(?<=[@/]){re.escape(pg)}:5432\b"),
                      f"{ROUTER}:{ROUTER_PG_PORT}"))
    if redis:
        rules.append((re.compile(rf"(?<=[@/]){re.escape(redis)}:6379\b"),
                      f"{ROUTER}:{ROUTER_REDIS_PORT}"))
    for name, svc in ed.services.items():
        env = svc.get("environment") if isinstance(svc, dict) else None
        if isinstance(env, dict):
            hosts = {k for k, v in env.items() if pg and v == pg and re.search(r"HOST", k)}
            for key in list(env):
                new = _routed(key, n.as_str(env[key]) if env[key] is not None else None,
                              pg, rules, bool(hosts))
                if new is not None:
                    ed.note(name, f"environment {key} → {new}", "the router finds the primary")
                    env[key] = _same_kind(env[key], new)
        _env_file_values(ed, name, env if isinstance(env, dict) else {}, rules)


def _env_file_values(ed: _Editor, name: str, own: dict,
                     rules: list[tuple[re.Pattern[str], str]]) -> None:
    """Values that come from env files are not edited here: remember which still need it."""
    model = ed.stack.project.services.get(name)
    for key, value in (model.environment if model else {}).items():
        if key not in own and value and any(p.search(value) for p, _ in rules):
            ed.env_file_refs.setdefault(key, []).append(name)


def _routed(key: str, value: str | None, pg: str | None,
            rules: list[tuple[re.Pattern[str], str]], pg_host_moved: bool) -> str | None:
    if value is None:
        return None
    if pg and value == pg and "HOST" in key.upper():
        return ROUTER
    if pg_host_moved and value == "5432" and re.search(r"(PG|POSTGRES|DB|DATABASE).*PORT",
                                                        key.upper()):
        return str(ROUTER_PG_PORT)
    new = value
    for pattern, repl in rules:
        new = pattern.sub(repl, new)
    return new if new != value else None


def _scheduler(ed: _Editor, name: str) -> None:
    svc = ed.svc(name)
    assert svc is not None
    if SCHEDULER_PROFILE in (svc.get("profiles") or []) or _SCHEDULER_NOTE in ed.text:
        return  # already done
    if ed.edit.runs_scheduler:
        ed.services.yaml_set_comment_before_after_key(
            name, indent=ed.style.mapping,
            before=f"{_SCHEDULER_NOTE} {ed.edit.node} only — one for the pair. "
                   "On failover hapair\nstarts it on the other node "
                   f"(docker compose --profile {SCHEDULER_PROFILE} up -d {name}).")
        ed.note(name, f"runs on {ed.edit.node}", "exactly one scheduler for the pair")
        return
    _insert_after_image(svc, "profiles", _flow(SCHEDULER_PROFILE))
    svc.yaml_set_comment_before_after_key(
        "profiles", indent=ed.key_indent,
        before="hapair: the scheduler runs on one node only; hapair starts it here on "
               "failover.")
    ed.note(name, f"profile {SCHEDULER_PROFILE}", "the scheduler runs on the other node")


def _split_migrate(ed: _Editor, name: str) -> None:
    svc = ed.svc(name)
    if svc is None or "command" not in svc:
        return
    raw = svc["command"]
    words = shlex.split(raw) if isinstance(raw, str) else [n.as_str(w) for w in raw]
    if not _MIGRATE.search(" ".join(words)):
        return  # already moved
    if tuple(words[:2]) not in _SHELLS or len(words) != 3 or ";" in words[2]:
        ed.note(name, "migrate left in place", "its command is not `sh -c \"A && B\"`; move "
                "the migration out by hand")
        return
    parts = [p.strip() for p in words[2].split("&&")]
    keep = [p for p in parts if not _MIGRATE.search(p)]
    moved = [p for p in parts if _MIGRATE.search(p)]
    if not keep or len(moved) != 1:
        ed.note(name, "migrate left in place", "nothing would be left to run")
        return
    script = " && ".join(keep)
    svc["command"] = shlex.join([*words[:2], script]) if isinstance(raw, str) \
        else _flow(*words[:2], script)
    svc.yaml_set_comment_before_after_key(
        "command", indent=ed.key_indent,
        before=f"hapair: `{moved[0]}` moved to the {MIGRATE_SERVICE} service")
    keys = list(ed.services)
    if MIGRATE_SERVICE not in ed.services:
        job = _migrate_service(svc, moved[0])
        _blank_line_after(job)
        ed.services.insert(keys.index(name) + 1, MIGRATE_SERVICE, job)
        ed.services.yaml_set_comment_before_after_key(
            MIGRATE_SERVICE, indent=ed.style.mapping,
            before="hapair: migrations run once per upgrade, by an explicit step, never at "
                   f"every start:\ndocker compose --profile {MIGRATE_PROFILE} run --rm "
                   f"{MIGRATE_SERVICE}")
    ed.note(name, f"`{moved[0]}` moved to service {MIGRATE_SERVICE} (profile "
            f"{MIGRATE_PROFILE})", "every start would migrate, on both nodes (defect #24)")


_COPIED = ("image", "build", "env_file", "environment", "working_dir", "user")


def _migrate_service(app: CommentedMap, command: str) -> CommentedMap:
    m = CommentedMap()
    for key in _COPIED:
        if key in app:
            m[key] = _fresh(app[key])
    m["command"] = _flow(*shlex.split(command))
    m["profiles"] = _flow(MIGRATE_PROFILE)
    m["restart"] = DoubleQuotedScalarString("no")
    nets = app.get("networks")
    if nets:  # the same networks, without fixed addresses (one address, one container)
        m["networks"] = _flow(*(list(nets) if isinstance(nets, dict) else nets))
    return m


def _blank_line_after(m: CommentedMap) -> None:
    """An empty line after a mapping we add in the middle of the services, as between the
    user's own services (ruamel keeps such a line as a comment on the last key)."""
    m.ca.items[list(m)[-1]] = [None, None, CommentToken("\n\n", CommentMark(0), None), None]


def _fresh(value: Any) -> Any:
    """A copy without the original's comments (they describe the original)."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _fresh(v)
        return out
    if isinstance(value, list):
        return CommentedSeq(_fresh(v) for v in value)
    return value


def _rename_env_files(ed: _Editor, old: str, new: str) -> None:
    def rename(path: Any) -> Any:
        if not isinstance(path, str):
            return path
        head, _, base = path.rpartition("/")
        return _same_kind(path, (head + "/" if head else "") + base.replace(old, new))

    for name, svc in ed.services.items():
        value = svc.get("env_file") if isinstance(svc, dict) else None
        if value is None:
            continue
        before = str(value)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict) and "path" in item:
                    item["path"] = rename(item["path"])
                else:
                    value[i] = rename(item)
        else:
            svc["env_file"] = rename(value)
        if str(svc["env_file"]) != before:
            ed.note(name, f"env_file {old} → {new}", f"{ed.edit.node} has its own env file")

