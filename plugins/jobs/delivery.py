"""Carrying out one webhook delivery: claim the row, check the target, POST, record."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from plugins.jobs.metrics import DELIVERIES, DELIVERY_FAILURES
from plugins.jobs.signing import signature, webhook_secret
from plugins.jobs.ssrf import TargetRefused, resolve_target

if TYPE_CHECKING:
    from plugins.jobs.host import JobHost

log = logging.getLogger(__name__)

CLAIM = """
    UPDATE tessera.webhook_deliveries
       SET status = 'delivering', attempts = attempts + 1, lease_expires_at = now() + $2
     WHERE id = $1
       AND ((status = 'pending' AND next_attempt_at <= now())
         OR (status = 'delivering' AND lease_expires_at < now()))
    RETURNING id, webhook_id, payload, attempts
"""


def backoff(host: JobHost, attempts: int) -> float:
    """Exponential, capped, with jitter (half to full of the exponential delay)."""
    config = host.config
    delay = min(config.backoff_max_seconds, config.backoff_seconds * 2 ** (attempts - 1))
    return delay * (0.5 + random.random() / 2)


async def deliver(host: JobHost, delivery_id: int) -> None:
    config = host.config
    lease = timedelta(seconds=config.delivery_timeout + config.lease_margin)
    pool = host.tessera.db.pool
    async with pool.acquire() as conn:
        claimed = await conn.fetchrow(CLAIM, delivery_id, lease)
        if claimed is None:
            return  # done, not due, or another worker has it
        webhook = await conn.fetchrow(
            "SELECT url, secret_salt, active FROM tessera.webhooks WHERE id = $1",
            claimed["webhook_id"],
        )
    if webhook is None or not webhook["active"]:
        await _finish(host, delivery_id, "failed", None, "the webhook was deleted or disabled")
        return
    try:
        host_name, address = await resolve_target(webhook["url"], config.deny_private_targets)
    except TargetRefused as refused:
        await _finish(host, delivery_id, "failed", None, f"target refused: {refused}")
        return
    body = orjson.dumps(
        {"delivery_id": delivery_id, "sent_at": int(time.time()), **claimed["payload"]}
    )
    secret = webhook_secret(host.tessera.secret_key, webhook["secret_salt"])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Tessera-Webhooks/1",
        "X-Tessera-Signature": signature(secret, body),
        "X-Tessera-Delivery": str(delivery_id),
        "X-Tessera-Timestamp": str(int(time.time())),
        "X-Tessera-Event": claimed["payload"].get("type", ""),
    }
    status_code, error = await _post(host, webhook["url"], host_name, address, body, headers)
    if error is None:
        await _finish(host, delivery_id, "succeeded", status_code, None)
    elif claimed["attempts"] >= config.max_attempts:
        await _finish(host, delivery_id, "failed", status_code, error)
    else:
        delay = backoff(host, claimed["attempts"])
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE tessera.webhook_deliveries SET status = 'pending', lease_expires_at = NULL,"
                " next_attempt_at = now() + $2, last_status_code = $3, last_error = $4"
                " WHERE id = $1 AND status = 'delivering'",
                delivery_id,
                timedelta(seconds=delay),
                status_code,
                error,
            )
        DELIVERIES.labels("retrying").inc()
        await host.enqueue_deliveries([delivery_id], delay_seconds=delay)


async def _post(
    host: JobHost, url: str, host_name: str, address: str, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str | None]:
    """POST to the checked address; ``(status, None)`` on 2xx, else ``(status?, error)``."""
    target = httpx.URL(url)
    pinned = target.copy_with(host=address)
    headers = {**headers, "Host": target.netloc.decode()}
    extensions: dict[str, Any] = {"sni_hostname": host_name} if target.scheme == "https" else {}
    try:
        assert host.http is not None
        response = await host.http.post(
            pinned,
            content=body,
            headers=headers,
            timeout=host.config.delivery_timeout,
            extensions=extensions,
        )
    except httpx.TimeoutException:
        return None, f"timed out after {host.config.delivery_timeout:g}s"
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}: {response.text[:200]}"


async def _finish(
    host: JobHost, delivery_id: int, status: str, status_code: int | None, error: str | None
) -> None:
    async with host.tessera.db.pool.acquire() as conn:
        await conn.execute(
            "UPDATE tessera.webhook_deliveries SET status = $2, lease_expires_at = NULL,"
            " last_status_code = $3, last_error = $4,"
            " delivered_at = CASE WHEN $2 = 'succeeded' THEN now() ELSE delivered_at END"
            " WHERE id = $1 AND status <> 'succeeded'",
            delivery_id,
            status,
            status_code,
            error,
        )
    DELIVERIES.labels(status).inc()
    if status == "failed":
        DELIVERY_FAILURES.inc()
        log.warning("webhook delivery %s failed: %s", delivery_id, error)
