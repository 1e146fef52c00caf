"""Object storage: two independent single-node sites (one per data node) joined by
replication, reached by the app through a local router. See docs/storage.md.

- site.py         a site's endpoint, the shared key pair, the `rclone serve s3` program
- replication.py  the supervised rclone pull (backend `s3`): config, loop, one-shot copies
- minio.py        MinIO site replication with `mc` (backend `minio`): argv and parsers
- router.py       nginx on 127.0.0.1: reads local with fallback to the peer, writes via writer.py
- canary.py       read-back verification of replication (bytes compared, bounded wait)
- backlog.py      comparing the listings of two sites; per-site totals; media RPO of a drill
- probe.py        parsers: S3 listings, rclone stats, the replication loop's state file
- writer.py       HAProxy write selector: writes to the site of the node Patroni names primary

Everything here is pure; the workflows/storage package does the I/O.
"""
