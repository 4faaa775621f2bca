"""Settings from the environment, read once by the composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value the engine cannot use."""


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = environ.get(name) or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    kafka_bootstrap_servers: str | None = None
    events_topic: str = "itil.events"
    deadletter_topic: str = "itil.deadletter"
    events_partitions: int = 4
    worker_group: str = "itil-worker"
    intake_group: str = "itil-intake"
    up_processes: str = "several"
    intake_unknown: str = "refuse"
    store_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("ITIL_DATA_DIR") or "./var").resolve()
        store_env = {k: v for k, v in env.items() if k.startswith(("PERSISTENCE_MODULE", "SQLITE_", "POSTGRES_"))}
        store_env.setdefault("PERSISTENCE_MODULE", "eventsourcing.sqlite")
        if store_env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
            store_env.setdefault("SQLITE_DBNAME", str(data_dir / "itil.sqlite"))
            store_env.setdefault("SQLITE_LOCK_TIMEOUT", "30")
        elif store_env["PERSISTENCE_MODULE"] == "eventsourcing.postgres":
            store_env.setdefault("POSTGRES_HOST", "127.0.0.1")
            store_env.setdefault("POSTGRES_PORT", "5432")
            store_env.setdefault("POSTGRES_USER", "postgres")
            store_env.setdefault("POSTGRES_PASSWORD", "")
            if not store_env.get("POSTGRES_DBNAME"):
                raise ConfigError("POSTGRES_DBNAME is required with eventsourcing.postgres")
        else:
            raise ConfigError(
                f"PERSISTENCE_MODULE must be eventsourcing.sqlite or eventsourcing.postgres,"
                f" not {store_env['PERSISTENCE_MODULE']!r}"
            )
        partitions = _int(env, "ITIL_EVENTS_PARTITIONS", 4)
        if partitions < 1:
            raise ConfigError("ITIL_EVENTS_PARTITIONS must be at least 1")
        return cls(
            data_dir=data_dir,
            http_host=env.get("ITIL_HTTP_HOST") or "127.0.0.1",
            http_port=_int(env, "ITIL_HTTP_PORT", 8080),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            events_topic=env.get("ITIL_EVENTS_TOPIC") or "itil.events",
            deadletter_topic=env.get("ITIL_DEADLETTER_TOPIC") or "itil.deadletter",
            events_partitions=partitions,
            worker_group=env.get("ITIL_WORKER_GROUP") or "itil-worker",
            intake_group=env.get("ITIL_INTAKE_GROUP") or "itil-intake",
            up_processes=_choice(env, "ITIL_UP_PROCESSES", ("several", "one"), "several"),
            intake_unknown=_choice(env, "ITIL_INTAKE_UNKNOWN", ("refuse", "accept"), "refuse"),
            store_env=store_env,
        )


def ensure_store_directory(store_env: Mapping[str, str]) -> None:
    """Create the folder of a SQLite store, so a fresh data directory just works."""
    path = store_env.get("SQLITE_DBNAME", "")
    if (
        store_env.get("PERSISTENCE_MODULE", "").endswith("sqlite")
        and path
        and not path.startswith(("file:", ":memory:"))
    ):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
