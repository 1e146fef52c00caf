"""What `hapair plan` shows for compose hosts: the files hapair would generate on each host,
the user's compose file as it would read on each node (a diff), and which containers each
change recreates."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def render_compose(doc: dict[str, Any], console: Console) -> None:
    c = doc["compose"]
    if "error" in c:
        console.print(f"[red]compose preview unavailable:[/red] {c['error']}", highlight=False)
        return
    console.print(f"[bold]compose stack[/bold] discovered on {c['discovered_on']} (read-only)")
    for finding in c["findings"]:
        console.print(f"  {finding}", markup=False)
    for b in c["generated"]:
        reuse = (f"; data volume {b['data_volume']} "
                 f"{'reused' if b['data_volume_reused'] else 'created empty, cloned into'}"
                 if b["data_volume"] else "")
        console.print(f"[bold]{b['host']}[/bold]: project {b['project']} "
                      f"({b['compose_file']}): {', '.join(b['services'])}{reuse}",
                      highlight=False)
        for v in b["violations"]:
            console.print(f"  [red]violation[/red] {v}")
    for e in c["edits"]:
        if not e["changed"]:
            console.print(f"{e['path']} on {e['node']}: unchanged", markup=False)
            continue
        console.print(f"[bold]{e['path']} on {e['node']}[/bold]", highlight=False)
        for line in e["containers"]:
            console.print(f"  container {line}", markup=False)
        console.print(e["diff"], markup=False, highlight=False, end="")
