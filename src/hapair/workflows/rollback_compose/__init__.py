"""`hapair rollback` on compose hosts: the pair back to ONE compose server — the node the
upgrade started from, which must be Patroni's leader — keeping every write: its hapair-redis
and hapair-patroni hand their volumes back to the user's own redis and postgres services, the
user's compose file comes back from `<file>.hapair-before`, the app is recreated from it, and
hapair's project goes down on every host (volumes kept). docs/rollback.md, "Compose hosts".

    model.py       pure: pg_hba/pg_ident the official image writes, services to recreate,
                   the data-directory hand-back script, resume
    setup.py       who is who, the files, one ComposeHostRuntime per host, container probes
    preflight.py   read-only checks and refusals (exit 3); resume of an unfinished rollback
    steps_*.py     the phases (front door and Redis master, Redis, PostgreSQL, app and stops)
    verify.py      the single-server checks, nothing of hapair running, the journal retired
    plan.py        the ordered plan
"""
