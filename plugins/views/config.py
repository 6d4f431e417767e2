"""Settings of the views plugin (``[plugins.config."views.core"]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ViewsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement_timeout_ms: int = Field(
        default=5000, ge=100, le=600_000, description="longest a view's query may run"
    )
    cache_size: int = Field(
        default=1000, ge=1, description="compiled views kept per process (least recently used go)"
    )
