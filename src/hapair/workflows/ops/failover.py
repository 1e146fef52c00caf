"""`hapair failover --test`: the monthly failover drill, done right.

A drill load runs through the front door; a real fault hits the primary's host; the drill
measures the time until writes succeed again, checks that the other node became PostgreSQL
primary and Redis master (Sentinel names it), samples the old primary all along to prove it
never accepted writes again, heals it, waits until it is back as a streaming standby, and
verifies every acknowledged write survived.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hapair.drill import LoadConfig, LoadGenerator, build_report
from hapair.drill.checker import check_acks
from hapair.drill.records import MediaAck, SessionAck
from hapair.errors import Refused
from hapair.workflows.context import WorkflowContext
from hapair.workflows.ops.etcd_leader import etcd_leader, keep_on_witness
from hapair.workflows.ops.faults import Injector
from hapair.workflows.ops.pair import cluster, leader, sentinel_master, wait_for
from hapair.workflows.ops.singletons import follow_primary
from hapair.workflows.storage import media_after_failover
from hapair.workflows.upgrade.params import UpgradeParams

# `--without-media`: the load without uploads (e.g. where object storage is not part of the pair).
MIX_WITHOUT_MEDIA = {"article.create": 4, "article.read": 4, "article.list": 2,
                     "session.write": 2, "session.read": 2, "frontend": 2}


@dataclass
class WritableSampler:
    """Samples whether the old primary accepts writes, from the fault until the end."""

    injector: Injector
    host: str
    samples: list[tuple[float, bool | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.injector.writable_probe(self.host)))
            self._stop.wait(0.5)

    def start(self) -> WritableSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def writable_after(self, t: float) -> int:
        return sum(1 for at, w in self.samples if at >= t and w is True)


def failover_drill(ctx: WorkflowContext, p: UpgradeParams, injector: Injector, *,
                   rate: float = 20, settle_s: float = 10, with_media: bool = True,
                   allow_any_target: bool = False, say: Any = print) -> dict[str, Any]:
    if p.names.witness is None:
        raise Refused("no witness: automatic failover is off, there is nothing to drill; "
                      "use `hapair failover --to NODE` for a manual failover")
    members = cluster(p)
    old = leader(members)
    standby = next((m for m in members if m.name != old), None)
    if old is None or standby is None or standby.state != "streaming":
        raise Refused(f"the pair is not healthy enough for a drill (leader {old}, standby "
                      f"{standby}); fix it first (`hapair status`)")
    new = standby.name
    witness_t = ctx.shell(p.names.witness, "etcd")
    etcd_leader_before = etcd_leader(witness_t, p.etcd_members)
    door = p.inv.front_door
    mix = None if with_media else MIX_WITHOUT_MEDIA
    config = LoadConfig(url=f"http://{door.address}:{door.port}/", duration=None, rate=rate,
                        timeout=10, allow_any_target=allow_any_target,
                        **({"mix": mix} if mix else {}))
    load = LoadGenerator(config).start()
    sampler = WritableSampler(injector, old)
    result: dict[str, Any] = {"fault": injector.kind, "old_primary": old, "new_primary": new}
    try:
        time.sleep(3)  # a steady baseline before the fault
        say(f"injecting `{injector.kind}` on {old} (the primary)")
        t_fault = time.monotonic()
        injector.inject(old)
        sampler.start()
        took = wait_for(f"{new} becomes the PostgreSQL leader",
                        lambda: (leader(cluster(p, exclude=(old,))) == new, "election"), 120)
        t_leader = time.monotonic()
        wait_for(f"the Sentinels name {new} master",
                 lambda: (sentinel_master(p, exclude=(old,)) == new, "Sentinel failover"), 90)
        t_redis = time.monotonic()
        result["scheduler"] = follow_primary(ctx, p, new, old)
        say(f"{new} leads PostgreSQL after {t_leader - t_fault:.1f} s ({took}); Redis after "
            f"{t_redis - t_fault:.1f} s; letting the load run {settle_s:g} s more")
        time.sleep(settle_s)
    finally:
        load.stop()
        run = load.wait()
    # Uploads are replicated asynchronously: the ones the lost node had not passed on yet are
    # the media RPO, reported apart — the database writes must all survive (sync mode).
    uploads = [a for a in run.acks if isinstance(a, MediaAck)]
    media = media_after_failover(p.inv, new, uploads, t_fault) if uploads else None
    writes = [a for a in run.acks if not isinstance(a, (MediaAck, SessionAck))]
    drill = build_report(run, check_acks(run.base_url, writes, (),
                                         allow_any_target=run.config.allow_any_target,
                                         timeout=run.config.timeout, retry_for=20),
                         faults={f"{injector.kind} {old}": t_fault})
    say(f"healing {old}")
    t_heal = time.monotonic()
    injector.heal(old)
    rejoined = wait_for(f"{old} is back as a streaming standby",
                        lambda: _standby(p, old), 180, 1.0)
    sampler.stop()
    # Once the old primary is back, its stranded uploads reach the new writer: every
    # acknowledged upload must then be readable through the front door.
    media_after = None
    if uploads:
        media_after = check_acks(run.base_url, uploads, (), timeout=run.config.timeout,
                                 allow_any_target=run.config.allow_any_target, retry_for=60)
    etcd_note = keep_on_witness(ctx, p)  # for the next drill: decision 0002
    recovery = run.recovery_after(t_fault, "article.create")  # a database write
    any_write = run.recovery_after(t_fault)
    result.update({
        "postgres_leader_after_s": round(t_leader - t_fault, 2),
        "redis_master_after_s": round(t_redis - t_fault, 2),
        "writes_back_after_s": round(recovery, 2) if recovery is not None else None,
        "any_write_back_after_s": round(any_write, 2) if any_write is not None else None,
        "sentinel_master": sentinel_master(p),
        "old_primary_writable_samples": sampler.writable_after(t_fault),
        "old_primary_samples": len(sampler.samples),
        "rejoined": rejoined,
        "rejoin_s": round(time.monotonic() - t_heal, 1),
        "media_in_load": with_media,
        "media": None if media is None else {
            "acknowledged": media.acknowledged,
            "lost_at_failover": [{"key": x.key, "problem": x.problem, "age_s": round(x.age_s, 2)}
                                 for x in media.lost],
            "rpo_s": round(media.rpo_s, 2),
            "unreadable_after_rejoin": [f"{m.ref}: {m.reason}" for m in
                                        (*media_after.lost, *media_after.unverified)]
                                       if media_after is not None else [],
        },
        "etcd_leader_at_fault": etcd_leader_before,
        "etcd_leader_after": etcd_note,
        "drill": drill.to_dict(),
    })
    # Requests fail during an unplanned failover's election window (decision 0002); what
    # must hold is: nothing acknowledged lost, writes back, one writable primary throughout.
    writes = drill.to_dict()["writes"]
    result["ok"] = (not writes["lost"] and not writes["unverified"] and recovery is not None
                    and result["old_primary_writable_samples"] == 0
                    and result["sentinel_master"] == new and rejoined is not None
                    and (media_after is None or media_after.ok))
    return result


def _standby(p: UpgradeParams, name: str) -> tuple[bool, str]:
    me = next((m for m in cluster(p) if m.name == name), None)
    if me is None:
        return False, f"{name} not in the cluster yet"
    return (me.state == "streaming" and me.role != "leader",
            f"{name}: {me.role} {me.state}, lag {me.lag_bytes}")
