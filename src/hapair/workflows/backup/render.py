"""Human forms of the backup results (pure: dicts in, lines out; JSON output is the dicts)."""

from __future__ import annotations

from typing import Any

from hapair.workflows.backup.model import fmt_bytes


def backup_lines(r: dict[str, Any]) -> list[str]:
    src = r["source"]
    head = "would take" if r.get("dry_run") else "backup"
    status = "" if r.get("dry_run") else ": ok"
    lines = [
        f"{head} {r['id']}{status}",
        f"  source     {src['node']} ({src['role']}) — {src['reason']}",
        f"  facts      {src['facts_from']}: {src['pair']}",
        f"  where      {r['node']}:{r['path']}",
    ]
    if r.get("runs_in"):
        lines.append(f"  runs in    {r['runs_in']} (the directory is the host's, mounted there)")
    if r.get("dry_run"):
        lines += ["  commands"] + [f"    {' '.join(c)}" for c in r.get("commands", [])]
    m = r.get("manifest")
    if m:
        lines += [f"  files      {f['name']} {fmt_bytes(f['bytes'])} sha256 {f['sha256'][:12]}…"
                  for f in m["files"]]
        if m.get("tables") is not None:
            rows = sum(t["rows"] for t in m["tables"])
            lines.append(f"  tables     {len(m['tables'])} tables, {rows} rows (counted in the "
                         f"dump's snapshot {m['snapshot']})")
        for w in m.get("wal") or ():
            lines.append(f"  wal        timeline {w['timeline']} {w['start_lsn']}..{w['end_lsn']}")
        lines.append(f"  postgres   {m['postgres'].get('server_version')} "
                     f"(source was {m['source']['role']})")
        lines.append(f"  excluded   {'; '.join(m['excluded'])}")
        lines += [f"  note       {n}" for n in m.get("notes") or ()]
    lines += retention_lines(r.get("retention") or [], bool(r.get("dry_run")))
    return lines


def retention_lines(plans: list[dict[str, Any]], dry_run: bool) -> list[str]:
    out = []
    verb = "would delete" if dry_run else "deleted"
    for p in plans:
        if "skipped" in p:
            out.append(f"  retention  {p['node']}: skipped ({p['skipped']})")
            continue
        if not p["delete"]:
            out.append(f"  retention  {p['node']}: keep {p['keep']} {p['kind']}: nothing to delete")
        for d in p["delete"]:
            out.append(f"  retention  {p['node']}: {verb} {d['id']} ({d['reason']})")
        for k in p["kept"]:
            if "verified" in k["reason"] or "unreadable" in k["reason"]:
                out.append(f"  retention  {p['node']}: kept {k['id']} ({k['reason']})")
    return out


def list_lines(doc: dict[str, Any]) -> list[str]:
    rows = [["ID", "NODE", "SIZE", "SOURCE", "TABLES", "VERIFIED", "NOTE"]]
    for b in doc["backups"]:
        note = b["problem"] or ("" if b["complete"] else "incomplete")
        rows.append([
            b["id"], b["node"], fmt_bytes(b["size_bytes"]) if b["size_bytes"] is not None else "-",
            b["source_role"] or "-", str(b["tables"]) if b["tables"] is not None else "-",
            f"{b['verification']} {b['verified_at']}" if b["verification"] else "never",
            note,
        ])
    if len(rows) == 1:
        return ["no backups found"] + [f"warning: {w}" for w in doc["warnings"]]
    return columns(rows) + [f"warning: {w}" for w in doc["warnings"]]


def verify_lines(r: dict[str, Any]) -> list[str]:
    v = r["verification"]
    lines = [
        f"backup {r['id']} ({r['kind']}, on {r['node']}): verification {v['result'].upper()}",
        f"  method     {v['method']}",
    ]
    if v.get("restored_on"):
        lines.append(f"  scratch    {v['scratch_database']} on {v['restored_on']} (dropped)")
    if v.get("tables_compared") is not None:
        lines.append(f"  compared   {v['tables_compared']} tables")
    lines += [f"  problem    {p}" for p in v["problems"]]
    return lines + [f"warning: {w}" for w in r.get("warnings", [])]


def restore_lines(r: dict[str, Any]) -> list[str]:
    state = "restored and checked" if r["ok"] else "restored, but the row counts DIFFER"
    lines = [
        f"backup {r['id']} → database {r['database']} on {r['node']}: {state}",
        f"  compared   {r['tables_compared']} tables with the backup's manifest",
    ]
    lines += [f"  problem    {p}" for p in r["problems"]]
    lines += ["next steps"] + [f"  {i}. {s}" for i, s in enumerate(r["next_steps"], 1)]
    return lines + [f"warning: {w}" for w in r.get("warnings", [])]


def columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
