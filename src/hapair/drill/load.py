"""The load generator: a few worker threads, one virtual user each, at a target rate.

Library use (upgrade and failover workflows):

    gen = LoadGenerator(LoadConfig(url="http://10.99.0.10/", duration=None)).start()
    ...                                   # change things; t_fault = time.monotonic()
    gen.stop()
    result = gen.wait()                   # LoadResult: records, acks, recovery_after(t)
    check = check_writes(result)          # hapair.drill.checker
    report = build_report(result, check, faults={"node1 killed": t_fault})

The loop is bounded by `duration` (when given), `max_requests` and stop(); each request by
the client timeout. Only the configured URL is contacted: no proxies from the environment,
no redirects followed, media URLs off the front door refused (drill.target).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from hapair import __version__
from hapair.drill.metrics import Metrics, recovery_after, summarize
from hapair.drill.ops import DEFAULT_MIX, Recent, VirtualUser, pick_op
from hapair.drill.recorder import RecordWriter
from hapair.drill.records import OPS, Ack, RequestRecord, SessionAck
from hapair.drill.target import validate_target
from hapair.errors import StepFailed, UsageError

MAX_REQUESTS_CAP = 1_000_000  # absolute bound, whatever the caller asks
MAX_WORKERS = 64
MAX_RATE = 1000.0


@dataclass(frozen=True)
class LoadConfig:
    url: str
    duration: float | None = 60.0  # seconds; None: until stop() (max_requests still bounds it)
    rate: float = 20.0  # requests per second, all workers together
    workers: int = 4  # one virtual user (own cookie jar) per worker
    seed: int | None = None  # None: a random seed, reported so a run can be repeated
    timeout: float = 2.5  # per request (connect, read, write, pool)
    max_requests: int = 200_000
    allow_any_target: bool = False
    mix: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MIX))
    record_path: Path | None = None


def validate_config(config: LoadConfig) -> str:
    """The normalised base URL, or UsageError / Refused naming the bad setting."""
    if config.duration is not None and not config.duration > 0:
        raise UsageError(f"duration must be > 0 (got {config.duration})")
    if not 0 < config.rate <= MAX_RATE:
        raise UsageError(f"rate must be in (0, {MAX_RATE:g}] requests/s (got {config.rate})")
    if not 1 <= config.workers <= MAX_WORKERS:
        raise UsageError(f"workers must be 1..{MAX_WORKERS} (got {config.workers})")
    if not 0.1 <= config.timeout <= 30:
        raise UsageError(f"timeout must be 0.1..30 s (got {config.timeout})")
    if not 1 <= config.max_requests <= MAX_REQUESTS_CAP:
        raise UsageError(f"max_requests must be 1..{MAX_REQUESTS_CAP} (got {config.max_requests})")
    unknown = set(config.mix) - set(OPS)
    if unknown or not any(w > 0 for w in config.mix.values()):
        raise UsageError(f"mix: unknown ops {sorted(unknown)} or no positive weight")
    return validate_target(config.url, config.allow_any_target)


@dataclass(frozen=True)
class Progress:
    elapsed: float
    requests: int
    failed: int
    acked: int


@dataclass(frozen=True)
class LoadResult:
    run_id: str
    base_url: str
    seed: int
    config: LoadConfig
    started_mono: float
    started_wall: datetime
    ended_mono: float
    stopped_by: str  # "duration", "max_requests" or "stop"
    records: tuple[RequestRecord, ...]
    acks: tuple[Ack, ...]  # every acknowledged write, in acknowledgement order
    sessions: tuple[SessionAck, ...]  # per user: the session value to find at the end

    def metrics(self) -> Metrics:
        return summarize(self.records)

    def recovery_after(self, t: float, op: str | None = None) -> float | None:
        """Seconds from monotonic instant `t` to the first successful write started after it
        (of `op` only, when given)."""
        return recovery_after(self.records, t, op)

    def wall(self, mono: float) -> datetime:
        """The wall-clock time of a monotonic instant of this run."""
        return self.started_wall + timedelta(seconds=mono - self.started_mono)


_EPOCH = datetime.fromtimestamp(0, UTC)


class _Pacer:
    """Hands out send instants at `rate`; never bursts to catch up after a slow spell."""

    def __init__(self, rate: float, end: float | None, max_requests: int) -> None:
        self._lock = threading.Lock()
        self._interval = 1.0 / rate
        self._next = time.monotonic()
        self._end = end
        self._left = max_requests
        self.exhausted: str | None = None

    def claim(self) -> float | None:
        with self._lock:
            slot = max(self._next, time.monotonic())
            if self._left <= 0:
                self.exhausted = self.exhausted or "max_requests"
                return None
            if self._end is not None and slot >= self._end:
                self.exhausted = self.exhausted or "duration"
                return None
            self._next = slot + self._interval
            self._left -= 1
            return slot


class LoadGenerator:
    def __init__(self, config: LoadConfig, stop_event: threading.Event | None = None) -> None:
        self.config = config
        self.base_url = validate_config(config)  # refuses before any traffic
        seed = config.seed
        self.seed = seed if seed is not None else random.SystemRandom().getrandbits(31)
        self.run_id = uuid.uuid4().hex[:12]
        self._stop = stop_event or threading.Event()
        self._mix = dict(config.mix)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._acks: list[Ack] = []
        self._failed = 0
        self._users: list[VirtualUser] = []
        self._threads: list[threading.Thread] = []
        self._live = 0
        self._writer: RecordWriter | None = None
        self._pacer: _Pacer | None = None
        self._started_mono = 0.0
        self._started_wall = _EPOCH
        self._ended_mono = 0.0
        self._stopped_by: str | None = None

    # -- control ---------------------------------------------------------------------------

    def start(self) -> LoadGenerator:
        if self._threads:
            raise StepFailed("load generator already started")
        cfg = self.config
        self._started_mono, self._started_wall = time.monotonic(), datetime.now(UTC)
        end = self._started_mono + cfg.duration if cfg.duration is not None else None
        self._pacer = _Pacer(cfg.rate, end, cfg.max_requests)
        if cfg.record_path is not None:
            try:
                self._writer = RecordWriter(cfg.record_path)
            except OSError as exc:
                raise UsageError(f"--record {cfg.record_path}: {exc.strerror or exc}") from exc
            self._writer.write("run", self._header())
        recent = Recent()
        for worker in range(cfg.workers):
            rng = random.Random(f"{self.seed}:{worker}")
            user = VirtualUser(worker, self._client(), self.base_url, self.run_id, rng, recent)
            self._users.append(user)
            thread = threading.Thread(
                target=self._work, args=(user,), name=f"drill-w{worker}", daemon=True
            )
            self._threads.append(thread)
        self._live = len(self._threads)
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Ask the workers to finish: each completes its request in flight, then exits."""
        self._stop.set()

    def done(self) -> bool:
        return self._done.is_set()

    def wait_done(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the workers to finish (duration over, or stopped)."""
        return self._done.wait(timeout)

    def wait(self, timeout: float | None = None) -> LoadResult:
        """Join the workers and return the result. Bounded: `timeout`, or the rest of the
        duration plus slack for the last requests. Without a duration, call stop() first."""
        if not self._threads:
            raise StepFailed("load generator was never started")
        if timeout is None:
            timeout = self._default_wait()
        if not self._done.wait(timeout):
            raise StepFailed(f"load workers did not finish within {timeout:.1f}s")
        return self._result()

    def progress(self) -> Progress:
        with self._lock:
            return Progress(
                elapsed=time.monotonic() - self._started_mono,
                requests=len(self._records),
                failed=self._failed,
                acked=len(self._acks),
            )

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._done.wait(self.config.timeout * 2 + 5)

    # -- internals -------------------------------------------------------------------------

    def _default_wait(self) -> float:
        slack = self.config.timeout * 2 + 5  # the requests in flight, then the clients' close
        if self._done.is_set() or self._stop.is_set():
            return slack
        if self.config.duration is None:
            raise UsageError("wait(): the load has no duration; call stop() first")
        remaining = self._started_mono + self.config.duration - time.monotonic()
        return max(0.0, remaining) + slack

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.config.timeout),
            follow_redirects=False,
            trust_env=False,  # an HTTP(S)_PROXY from the environment would send load elsewhere
            headers={"user-agent": f"hapair-drill/{__version__} run={self.run_id}"},
        )

    def _work(self, user: VirtualUser) -> None:
        assert self._pacer is not None
        try:
            while True:
                slot = self._pacer.claim()
                if slot is None or self._stop.wait(max(0.0, slot - time.monotonic())):
                    break
                op = pick_op(user.rng, self._mix)
                self._sink(*self._run_one(user, op))
        finally:
            user.client.close()
            with self._lock:
                self._live -= 1
                if self._live == 0:
                    self._finish()

    def _run_one(self, user: VirtualUser, op: str) -> tuple[RequestRecord, Ack | None]:
        try:
            return user.run(op)
        except Exception as exc:  # a generator bug must show up as a failure, not kill a worker
            now = time.monotonic()
            err = f"Internal{type(exc).__name__}"
            return RequestRecord(op, user.worker, now, now, None, err, str(exc)[:200]), None

    def _sink(self, rec: RequestRecord, ack: Ack | None) -> None:
        with self._lock:
            self._records.append(rec)
            self._failed += 0 if rec.ok else 1
            if ack is not None:
                self._acks.append(ack)
        if self._writer is not None:
            self._writer.request(rec)
            if ack is not None:
                self._writer.ack(ack)

    def _finish(self) -> None:
        # Called with the lock held, by the last worker out.
        self._ended_mono = time.monotonic()
        exhausted = self._pacer.exhausted if self._pacer else None
        self._stopped_by = exhausted or "stop"
        if self._writer is not None:
            self._writer.close()  # every other worker has already written its last line
        self._done.set()

    def _header(self) -> dict[str, object]:
        cfg = self.config
        return {
            "run_id": self.run_id,
            "url": self.base_url,
            "seed": self.seed,
            "rate": cfg.rate,
            "workers": cfg.workers,
            "duration": cfg.duration,
            "timeout": cfg.timeout,
            "started_mono": self._started_mono,
            "started_wall": self._started_wall.isoformat(),
        }

    def _result(self) -> LoadResult:
        with self._lock:
            records, acks = tuple(self._records), tuple(self._acks)
        sessions = tuple(s for u in self._users if (s := u.session_state()) is not None)
        return LoadResult(
            run_id=self.run_id,
            base_url=self.base_url,
            seed=self.seed,
            config=self.config,
            started_mono=self._started_mono,
            started_wall=self._started_wall,
            ended_mono=self._ended_mono,
            stopped_by=self._stopped_by or "stop",
            records=records,
            acks=acks,
            sessions=sessions,
        )
