"""Run the read-only probes on every host and freeze what was seen into a ClusterFacts.

The only I/O in facts/: everything it runs is a read-only command from probes.py.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from hapair.errors import HapairError
from hapair.exec.transport import Transport
from hapair.facts import probes
from hapair.facts.snapshot import ClusterFacts, HostFacts


def gather_host(
    transport: Transport, *, pg_bin_dir: str, pg_data_dir: str, postgres_host: bool
) -> HostFacts:
    """Probe one host. An unreachable host is a fact, not an exception."""
    try:
        before = time.time()
        clock = probes.parse_clock(transport.run(probes.clock_argv(), timeout=15).stdout)
        probed_at = (before + time.time()) / 2
        listeners = probes.parse_listeners(
            transport.run(probes.listening_ports_argv(), check=False, timeout=15).stdout
        )
        if not postgres_host:
            return HostFacts(transport.name, True, clock=clock, probed_at=probed_at,
                             listeners=listeners)
        installed = probes.parse_pg_major(
            transport.run(probes.pg_version_argv(pg_bin_dir), check=False, timeout=15).stdout
        )
        data_major = probes.parse_pg_data_dir(
            transport.run(probes.pg_data_dir_argv(pg_data_dir), timeout=15).stdout
        )
        data_bytes = None
        if data_major is not None:
            data_bytes = probes.parse_du_bytes(
                transport.run(probes.dir_size_argv(pg_data_dir), check=False, timeout=120).stdout
            )
        free = probes.parse_df_available(
            transport.run(probes.disk_free_argv(pg_data_dir), check=False, timeout=15).stdout
        )
    except HapairError as exc:
        return HostFacts(transport.name, False, unreachable_reason=str(exc))
    return HostFacts(
        transport.name,
        True,
        pg_major_installed=installed,
        pg_data_dir_major=data_major,
        pg_data_bytes=data_bytes,
        disk_free_bytes=free,
        clock=clock,
        probed_at=probed_at,
        listeners=listeners,
    )


def gather(
    transports: Mapping[str, Transport],
    *,
    postgres_hosts: set[str],
    pg_bin_dir: str,
    pg_data_dir: str,
) -> ClusterFacts:
    return ClusterFacts(
        {
            name: gather_host(t, pg_bin_dir=pg_bin_dir, pg_data_dir=pg_data_dir,
                              postgres_host=name in postgres_hosts)
            for name, t in transports.items()
        }
    )
