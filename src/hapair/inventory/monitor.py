"""The inventory's optional `monitor:` section: how `hapair monitor` damps its alerts.

Only what the user sets is here; the built-in rules per alert kind (split brain at once,
lag after 30 s, …) live in hapair.monitor.damping and apply after the user's rules.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from hapair.inventory.fields import LocatedError

PATTERN = re.compile(r"^[a-z0-9_*?.\-\[\]]{1,100}$")
DAY = 86_400

Seconds = Annotated[int, Field(ge=0, le=DAY, strict=True)]


def _pattern(value: str) -> str:
    if not PATTERN.match(value):
        raise ValueError(f"{value!r} is not an alert name pattern (lower-case check names, "
                         "`*` and `?` as wildcards, e.g. postgres.standby.*)")
    return value


AlertPattern = Annotated[str, Field(strict=True), AfterValidator(_pattern)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertRule(_Model):
    """Alerts whose name matches `match` fire after failing for `for_s` seconds and resolve
    after passing for `clear_s` seconds (either one may be left to the defaults)."""

    match: AlertPattern
    for_s: Seconds | None = None
    clear_s: Seconds | None = None

    @model_validator(mode="after")
    def _check(self) -> AlertRule:
        if self.for_s is None and self.clear_s is None:
            raise LocatedError(("for_s",), "give for_s or clear_s (or both) for this pattern")
        return self


class Flapping(_Model):
    """An alert that started failing `failures` times within `window_s` is flapping."""

    window_s: int = Field(default=600, ge=10, le=DAY, strict=True)
    failures: int = Field(default=3, ge=2, le=1000, strict=True)


class MonitorSettings(_Model):
    renotify_s: int = Field(default=3600, ge=0, le=7 * DAY, strict=True)  # 0: never
    clear_s: Seconds = 60  # default: passing this long before `resolved` is sent
    alerts: tuple[AlertRule, ...] = ()
    flapping: Flapping = Flapping()

    @model_validator(mode="after")
    def _check(self) -> MonitorSettings:
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.alerts):
            if rule.match in seen:
                raise LocatedError(("alerts", i, "match"), f"pattern {rule.match!r} is also "
                                   f"alerts[{seen[rule.match]}].match")
            seen[rule.match] = i
        return self
