"""Human output of `status` and `check`, drawn from the same (redacted) document that
`--output json` prints, so both views always say the same thing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hapair.workflows.backup.model import fmt_bytes

Doc = dict[str, Any]


def _err(value: Any) -> str | None:
    return value.get("error") if isinstance(value, dict) and "error" in value else None


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cell(value: Any, fmt: Any = str) -> str:
    if value is None:
        return "-"
    err = _err(value)
    return f"[red]? {escape(err[:40])}[/red]" if err else escape(fmt(value))


def _router(node: Doc) -> str:
    stats = node.get("router")
    if _err(stats) or stats is None:
        return _cell(stats)
    pg = [s["server"] for s in stats if s["proxy"] == "postgres" and s["status"].startswith("UP")]
    rd = sorted({s["server"] for s in stats
                 if s["proxy"].startswith("redis_") and s["status"].startswith("UP")})
    return f"{','.join(pg) or 'none'} / {','.join(rd) or 'none'}"


def _redis(r: Any) -> str:
    if not isinstance(r, dict) or _err(r):
        return _cell(r)
    if r["role"] == "master":
        return f"master ({r['connected_replicas']} replica)"
    return f"replica of {r['master_node'] or r['master']} ({'up' if r['link_up'] else 'DOWN'})"


def _http(node: Doc) -> str:
    out = []
    for h in node.get("http") or ():
        out.append(f"{h['name']} {h['status'] if h['status'] is not None else 'ERR'}")
    return ", ".join(out)


def _disk(d: Any) -> str:
    if not isinstance(d, dict) or _err(d):
        return _cell(d)
    return f"{fmt_bytes(d['free_bytes'])} ({d.get('free_ratio', 0):.0%})"


def node_table(doc: Doc) -> Table:
    repl = {r["standby"]: r for r in doc.get("replication") or ()}
    table = Table(title=f"{doc['cluster']}: durability {doc['durability']}, observed "
                        f"{_when(doc['taken_at'])} in {doc['duration_s']:.1f} s")
    for col in ("node", "PostgreSQL", "TL", "lag", "replay delay", "sync", "Patroni", "Redis",
                "router pg / redis", "PgBouncer", "HTTP", "disk free", "VIP"):
        table.add_column(col)
    for n in doc["nodes"]:
        pg, r = n.get("postgres"), repl.get(n["name"], {})
        pb = n.get("pgbouncer")
        table.add_row(
            n["name"],
            n["role"] if not _err(pg) else f"[red]down[/red] ({escape(str(_err(pg))[:40])})",
            _cell(pg.get("timeline") if isinstance(pg, dict) else None),
            fmt_bytes(r["lag_bytes"]) if r.get("lag_bytes") is not None else "-",
            f"{r['replay_delay_s']:.1f} s" if r.get("replay_delay_s") is not None else "-",
            r.get("sync_state") or ("-" if n["role"] == "primary" else r.get("state", "-")),
            _cell(n.get("patroni"), lambda p: f"{p['role']} {p['state']}"),
            _redis(n.get("redis")),
            _router(n),
            "n/a" if pb is None else _cell(pb, lambda p: "PAUSED" if p["paused"] else "ok"),
            _http(n),
            _disk(n.get("disk")),
            _cell(n.get("vip"), lambda v: "holds" if v else "-"),
        )
    return table


def _lines(doc: Doc) -> list[str]:
    key = doc.get("leader_key")
    if _err(key) or not key:
        leader = f"Patroni leader: {doc.get('patroni_leader') or 'unknown'} (etcd: {_err(key)})"
    else:
        ttl = f"lease {key['ttl_s']} s of {key['granted_ttl_s']} s" if key["lease_id"] else \
            "no lease"
        leader = f"Patroni leader: {key['holder'] or 'NONE'} ({ttl}, etcd on {key['seen_from']})"
    etcd = []
    for h in doc["hosts"]:
        e = h.get("etcd")
        if e is None:
            continue
        state = f"DOWN ({_err(e)})" if _err(e) else (
            "healthy" + (" leader" if e["member_id"] and e["member_id"] == e["leader_id"] else "")
            if e["healthy"] else f"UNHEALTHY ({e['error']})")
        etcd.append(f"{h['name']} {state}")
    sentinels = []
    for h in doc["hosts"]:
        v = h.get("sentinel")
        if v is None:
            continue
        sentinels.append(f"{h['name']}: ERROR {_err(v)}" if _err(v) else
                         f"{h['name']} names {v['master_node'] or v['master']}, "
                         f"{'OK' if v['quorum_ok'] else 'NOQUORUM'} {v['usable']} usable")
    door = doc["front_door"]
    lines = [leader, "etcd: " + ("; ".join(etcd) or "no member"),
             "Sentinels: " + ("; ".join(sentinels) or "none"),
             f"front door {door['url']}: " + (str(door["status"]) if door["status"] is not None
                                               else f"ERROR {door['error']}")]
    for n in doc["nodes"]:
        pg = n.get("postgres")
        for slot in pg.get("slots", []) if isinstance(pg, dict) and not _err(pg) else []:
            lines.append(f"slot {slot['name']} on {n['name']}: "
                         f"{'active' if slot['active'] else 'INACTIVE'}, holds "
                         f"{fmt_bytes(slot['retained_bytes'])} ({slot['wal_status']})")
    lines += _backup_lines(doc)
    lines += _storage_lines(doc)
    return lines


def _storage_lines(doc: Doc) -> list[str]:
    from hapair.observe.storage import status_lines

    return status_lines(doc)


def _backup_lines(doc: Doc) -> list[str]:
    out = []
    for n in doc["nodes"]:
        b = n.get("backups")
        if _err(b):
            out.append(f"backups on {n['name']}: not listed ({_err(b)})")
            continue
        for x in b or ():
            age = (doc["taken_at"] - (x["finished_at"] or x["taken_at"])) / 3600
            ver = {True: "verified", False: "verification FAILED", None: "not verified"}
            out.append(f"backup {x['id']} on {n['name']}: {age:.1f} h old, "
                       f"{ver[x['verified']]}" + (f" ({x['problem']})" if x["problem"] else ""))
    return out or ["backups: none found"]


def _wide(console: Console) -> Console:
    """A terminal keeps its width; a pipe or a file gets room for the wide tables."""
    if console.is_terminal or console.width >= 180:
        return console
    return Console(file=console.file, width=180, force_terminal=False)


def render_status(doc: Doc, console: Console) -> None:
    console = _wide(console)
    console.print(node_table(doc))
    for line in _lines(doc):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    warnings = doc.get("warnings") or []
    if warnings:
        console.print("[bold]Warnings[/bold]")
    for w in warnings:
        style = "bold red" if w["severity"] == "critical" else "yellow"
        console.print(f"[{style}]{w['severity'].upper()}[/{style}] ", end="")
        console.print(w["message"], markup=False, highlight=False, soft_wrap=True)


def render_check(doc: Doc, console: Console) -> None:
    table = Table(title=f"{doc['cluster']}: health check, {_when(doc['taken_at'])}")
    for col in ("", "check", "severity", "reason"):
        table.add_column(col)
    for c in doc["checks"]:
        mark = "[green]ok[/green]" if c["ok"] else "[bold red]FAIL[/bold red]"
        table.add_row(mark, c["name"], c["severity"] if not c["ok"] else "", escape(c["reason"]))
    console = _wide(console)
    console.print(table)
    bad = doc["failing"]
    total = len(doc["checks"])
    if bad:
        console.print(f"[bold red]{len(bad)} of {total} checks failing:[/bold red] ", end="")
        console.print(", ".join(bad), markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]all {total} checks pass[/green]")
    for w in doc.get("warnings") or []:
        console.print(f"{w['severity']}: {w['message']}", markup=False, highlight=False,
                      soft_wrap=True)
