"""Reading the upgrade's config archive (on the first node) and adapting its files to the
target node. The archive holds no secrets; the app's env file (a secret) is the one the
upgrade kept beside the live one (`.hapair-before`, 0600) and is read the same way."""

from __future__ import annotations

from hapair.errors import StepFailed
from hapair.plan.step import StepContext
from hapair.workflows.rollback.model import RestoreFile, adapt, archive_member, restore_files
from hapair.workflows.rollback.params import CONFIGS_ARCHIVE, RollbackParams


def archived(ctx: StepContext, rp: RollbackParams, path: str) -> str:
    """One file of the archive, as the first node had it before the upgrade."""
    res = ctx.on(rp.first).run(["tar", "-xzOf", CONFIGS_ARCHIVE, archive_member(path)],
                               check=False, timeout=60)
    if not res.ok:
        raise StepFailed(f"{rp.first}: {path} is not in {CONFIGS_ARCHIVE}: "
                         f"{res.stderr.strip()[:200]}")
    return res.stdout


def for_target(rp: RollbackParams, text: str) -> str:
    """A first-node config made the target's (its own address)."""
    return adapt(text, rp.host(rp.first).address, rp.host(rp.target).address)


def files_to_restore(rp: RollbackParams) -> tuple[RestoreFile, ...]:
    s = rp.up.inv.services
    return restore_files(rp.data_dir, s.redis.config, rp.up.nginx(rp.target).config_path,
                         rp.include_dir(rp.target), with_redis=rp.target == rp.first)


def restored(ctx: StepContext, rp: RollbackParams, f: RestoreFile) -> str:
    return for_target(rp, archived(ctx, rp, f.member))


def original_env(ctx: StepContext, rp: RollbackParams) -> str:
    """The app's env file from before the upgrade re-pointed it (a secret: never logged)."""
    try:
        text = ctx.on(rp.first).read_file(rp.saved_env_path).decode()
    except FileNotFoundError:
        raise StepFailed(f"{rp.first}: {rp.saved_env_path} is missing: the app's pre-upgrade "
                         "settings are unknown") from None
    return for_target(rp, text)


def install(ctx: StepContext, rp: RollbackParams, f: RestoreFile, *,
            keep_as: str | None = None) -> None:
    """Write a restored file on the target (the current one kept as `keep_as` if given)."""
    t = ctx.on(rp.target)
    if keep_as is not None:
        # Kept once: a resumed run must not overwrite the pair's file with the restored one.
        t.run(["sh", "-c", '[ -f "$2" ] || [ ! -f "$1" ] || cp -p "$1" "$2"', "sh", f.dest,
               keep_as])
    t.write_file(f.dest, restored(ctx, rp, f), mode=f.mode, owner=f.owner)


def find(rp: RollbackParams, dest_suffix: str) -> RestoreFile:
    return next(f for f in files_to_restore(rp) if f.dest.endswith(dest_suffix))
