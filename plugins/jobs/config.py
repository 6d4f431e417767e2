"""Settings of the jobs plugin (``[plugins.config.jobs]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class JobsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=8, ge=1, le=50, description="tries before a delivery fails")
    backoff_seconds: float = Field(default=2.0, gt=0, description="first retry delay; doubles")
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_timeout: float = Field(default=10.0, gt=0, description="seconds per HTTP attempt")
    lease_margin: float = Field(
        default=5.0, ge=0, description="a claim older than timeout + margin is presumed lost"
    )
    deny_private_targets: bool = Field(
        default=False, description="refuse loopback and private addresses as webhook targets"
    )
    workflow_max_depth: int = Field(
        default=5, ge=1, le=50, description="how deep workflows may trigger one another"
    )
    sweep_interval: float = Field(default=2.0, gt=0, description="seconds between sweeps")
    poll_interval: float = Field(default=1.0, gt=0, description="outbox poll when no bus wakes")
    overdue_after: float = Field(
        default=5.0, ge=0, description="seconds a due item waits before the sweeper re-enqueues"
    )
    worker_threads: int = Field(default=4, ge=1, le=64)
    redis_namespace: str = Field(
        default="tessera",
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="prefix of the dramatiq queues in Redis; distinct per deployment",
    )
    in_process: bool | None = Field(
        default=None, description="run actors inside the API process; default: when no Redis"
    )
