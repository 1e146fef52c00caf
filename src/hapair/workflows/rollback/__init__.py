"""`hapair rollback`: the HA pair back to one server — the node that holds the data — keeping
every write (no dump, no restore), as a journaled, resumable plan run by the step runner.

    model.py       pure decisions: target choice, files to restore, address file, leftovers
    params.py      who is who (target, peer, the first node holding the upgrade's backup)
    backup.py      the upgrade's config archive and pre-upgrade env file, adapted to the target
    preflight.py   read-only checks and refusals (exit 3); resume of an unfinished rollback
    steps_*.py     the phases (Redis, front door, app and media, PostgreSQL, stops)
    verify.py      the single-node checks, nothing of the pair running, journal retired
    plan.py        the ordered plan
"""
