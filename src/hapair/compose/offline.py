"""Read a compose project from its files alone (no Docker): YAML, env files, `${VAR:-default}`
interpolation, and the merge of several `-f` files — what `docker compose config` would do,
for the parts discovery needs.

Variables come ONLY from the env files given (or the project's `.env`), never from the
environment of the process running hapair: the result must not depend on who runs it.
Unsupported features (`extends`, `include`) are refused rather than half-read.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from hapair.compose import normalize as n
from hapair.errors import UsageError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.S)
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
OVERRIDE_FILES = ("compose.override.yaml", "compose.override.yml",
                  "docker-compose.override.yaml", "docker-compose.override.yml")


class InterpolationError(ValueError):
    pass


# --- interpolation ---------------------------------------------------------------------------


def interpolate(text: str, env: Mapping[str, str], missing: Callable[[str], None]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e},
    ${VAR:+a}, ${VAR+a}; defaults may nest. `missing(name)` is told of unset variables that
    are used without a default (compose then substitutes an empty string, and warns)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing_brace(text, i + 2)
            out.append(_resolve(text[i + 2 : end], env, missing))
            i = end + 1
        elif m := _NAME.match(text, i + 1):
            out.append(_lookup(m.group(), env, missing))
            i = m.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _lookup(name: str, env: Mapping[str, str], missing: Callable[[str], None]) -> str:
    if name not in env:
        missing(name)
        return ""
    return env[name]


def _resolve(expr: str, env: Mapping[str, str], missing: Callable[[str], None]) -> str:
    m = _BRACED.fullmatch(expr)
    if not m:
        raise InterpolationError(f"invalid interpolation ${{{expr}}}")
    name, op, arg = m.group(1), m.group(2), m.group(3) or ""
    value = env.get(name)
    if op is None:
        return _lookup(name, env, missing)
    empty_counts = op.startswith(":")  # with ":", an empty value counts as unset
    is_set = value is not None and (value != "" or not empty_counts)
    kind = op[-1]
    if kind == "-":
        return value if is_set else interpolate(arg, env, missing)  # type: ignore[return-value]
    if kind == "+":
        return interpolate(arg, env, missing) if is_set else ""
    if not is_set:  # "?"
        raise InterpolationError(f"required variable {name} is missing: {arg or 'no value'}")
    return value  # type: ignore[return-value]


def interpolate_tree(data: Any, env: Mapping[str, str], missing: Callable[[str], None]) -> Any:
    """Interpolate every string value (keys are left alone, as compose does)."""
    if isinstance(data, str):
        return interpolate(data, env, missing)
    if isinstance(data, Mapping):
        return {k: interpolate_tree(v, env, missing) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate_tree(v, env, missing) for v in data]
    return data


# --- env files -------------------------------------------------------------------------------


def parse_env_file(text: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them: comments, `export`, quotes; unquoted and
    double-quoted values are interpolated with the variables defined so far."""
    env: dict[str, str] = {}
    scope = dict(base or {})
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        stripped = stripped.removeprefix("export ").lstrip()
        key, sep, raw = stripped.partition("=")
        key = key.strip()
        if not _NAME.fullmatch(key):
            raise ValueError(f"line {lineno}: {key!r} is not a variable name")
        if not sep:
            continue  # a bare name: taken from the shell by compose; not known here
        value = _env_value(raw.strip(), scope, lineno)
        env[key] = scope[key] = value
    return env


def _env_value(raw: str, scope: Mapping[str, str], lineno: int) -> str:
    if raw.startswith("'"):
        end = raw.find("'", 1)
        if end < 0:
            raise ValueError(f"line {lineno}: unclosed single quote")
        return raw[1:end]
    if raw.startswith('"'):
        out, i = [], 1
        while i < len(raw) and raw[i] != '"':
            if raw[i] == "\\" and i + 1 < len(raw):
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            out.append(raw[i])
            i += 1
        if i >= len(raw):
            raise ValueError(f"line {lineno}: unclosed double quote")
        return interpolate("".join(out), scope, lambda _n: None)
    value = re.split(r"\s+#", raw, maxsplit=1)[0].rstrip()
    return interpolate(value, scope, lambda _n: None)


# --- merging several files -------------------------------------------------------------------

_CONCAT = {"ports", "expose", "external_links", "dns", "dns_search", "tmpfs", "cap_add",
           "cap_drop", "devices", "secrets", "configs", "extra_hosts", "profiles"}
_REPLACE = {"command", "entrypoint"}


def merge_documents(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`-f a.yml -f b.yml`: later files override earlier ones (compose's merge rules)."""
    result: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key == "services" and isinstance(value, Mapping):
                services = result.setdefault("services", {})
                for name, svc in value.items():
                    services[name] = _merge_service(services.get(name) or {}, svc or {})
            elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = _merge_maps(result[key], value)
            else:
                result[key] = value
    return result


def _merge_service(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if old is None or key in _REPLACE:
            out[key] = value
        elif key == "environment":
            out[key] = {**n.parse_environment(old), **n.parse_environment(value)}
        elif key == "volumes":
            out[key] = _merge_by_target(old, value)
        elif key in _CONCAT and isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *(v for v in value if v not in old)]
        elif isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = _merge_maps(old, value)
        else:
            out[key] = value
    return out


def _merge_maps(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        both_maps = isinstance(old, Mapping) and isinstance(value, Mapping)
        out[key] = _merge_maps(old, value) if both_maps else value  # type: ignore[arg-type]
    return out


def _merge_by_target(old: list[Any], new: list[Any]) -> list[Any]:
    def target(entry: Any) -> str:
        return n.parse_mount(entry).target

    replaced = {target(e) for e in new}
    return [e for e in old if target(e) not in replaced] + list(new)


# --- a whole project ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OfflineProject:
    raw: dict[str, Any]  # interpolated, merged, env_file contents folded into `environment`
    name: str
    base_dir: str
    files: tuple[str, ...]
    env_files: tuple[str, ...]
    variables: Mapping[str, str] = field(repr=False)  # the interpolation env (has secrets)
    unset: tuple[str, ...] = ()  # variables used without a value or default


def default_compose_files(directory: Path) -> list[Path]:
    """What `docker compose` reads when no -f is given: the first default file, plus its
    override file if there is one."""
    first = next((directory / f for f in DEFAULT_FILES if (directory / f).is_file()), None)
    if first is None:
        return []
    override = next((directory / f for f in OVERRIDE_FILES if (directory / f).is_file()), None)
    return [first, override] if override else [first]


def load_offline(
    files: Sequence[Path], env_files: Sequence[Path] = (), project: str | None = None
) -> OfflineProject:
    """Load, interpolate and merge compose files, as `docker compose -f … --env-file …`."""
    if not files:
        raise UsageError("no compose file given and none found (compose.yaml, docker-compose.yml)")
    paths = [p.absolute() for p in files]
    base_dir = str(paths[0].parent)
    if not env_files and (paths[0].parent / ".env").is_file():
        env_files = [paths[0].parent / ".env"]
    variables: dict[str, str] = {}
    for env_path in env_files:
        variables.update(_read_env_file(Path(env_path), variables))
    unset: list[str] = []
    docs = [_load_yaml(p, variables, unset) for p in paths]
    raw = merge_documents(docs)
    for svc in (raw.get("services") or {}).values():
        _fold_env_files(svc, base_dir, variables, unset)
    name = project or variables.get("COMPOSE_PROJECT_NAME") or raw.get("name")
    name = name or Path(base_dir).name
    return OfflineProject(
        raw=raw,
        name=str(name),
        base_dir=base_dir,
        files=tuple(str(p) for p in paths),
        env_files=tuple(str(Path(p).absolute()) for p in env_files),
        variables=variables,
        unset=tuple(dict.fromkeys(unset)),
    )


def _read_env_file(path: Path, scope: Mapping[str, str]) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read env file: {exc.strerror or exc}") from None
    try:
        return parse_env_file(text, scope)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _load_yaml(path: Path, env: Mapping[str, str], unset: list[str]) -> dict[str, Any]:
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except YAMLError as exc:
        raise UsageError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a compose file is a mapping")
    for feature in ("include",):
        if feature in data:
            raise UsageError(f"{path}: `{feature}` is not read offline; use `init --host`")
    for name, svc in (data.get("services") or {}).items():
        if isinstance(svc, Mapping) and "extends" in svc:
            raise UsageError(f"{path}: services.{name}.extends is not read offline; "
                             "use `init --host`")
    try:
        return interpolate_tree(data, env, unset.append)
    except InterpolationError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _fold_env_files(
    svc: dict[str, Any], base_dir: str, variables: Mapping[str, str], unset: list[str]
) -> None:
    """Compose puts each `env_file:` into the container environment; `environment:` wins."""
    files = svc.get("env_file")
    if files is None:
        return
    items = [files] if isinstance(files, str | Mapping) else list(files)
    merged: dict[str, str | None] = {}
    paths = []
    for item in items:
        rel = n.as_str(item["path"] if isinstance(item, Mapping) else item)
        required = item.get("required", True) if isinstance(item, Mapping) else True
        path = posixpath.normpath(posixpath.join(base_dir, rel))
        paths.append(path)
        if not Path(path).is_file() and not required:
            continue
        merged.update(_read_env_file(Path(path), {}))
    svc["env_file"] = paths
    svc["environment"] = {**merged, **n.parse_environment(svc.get("environment"))}
