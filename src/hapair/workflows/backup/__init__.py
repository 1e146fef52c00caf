"""Backups of the pair's PostgreSQL: take (logical or physical), list, verify, restore.

    pair = pair_from_inventory(inv, Settings())
    take_backup(pair, BackupRequest(kind="logical", keep=7), log=progress)
    verify_backup(pair, "latest")              # verdict recorded in the manifest
    restore_backup(pair, backup_id, "cms_restored", confirm=ask)

docs/backups.md describes the files, the choices and the schedules.
"""

from hapair.workflows.backup.model import KINDS, BackupEntry, Kind, Manifest
from hapair.workflows.backup.nodes import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_SOCKET_DIR,
    PATRONI_PORT,
    Node,
    Pair,
    Settings,
    pair_from_inventory,
)
from hapair.workflows.backup.restore import restore_backup
from hapair.workflows.backup.store import list_all
from hapair.workflows.backup.take import BackupRequest, take_backup
from hapair.workflows.backup.verify import verify_backup

__all__ = [
    "DEFAULT_BACKUP_DIR",
    "DEFAULT_SOCKET_DIR",
    "KINDS",
    "PATRONI_PORT",
    "BackupEntry",
    "BackupRequest",
    "Kind",
    "Manifest",
    "Node",
    "Pair",
    "Settings",
    "list_all",
    "pair_from_inventory",
    "restore_backup",
    "take_backup",
    "verify_backup",
]
