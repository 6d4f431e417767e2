"""The plugin ``jobs``: durable webhooks and no-code workflows on dramatiq.

State lives in PostgreSQL (deliveries and runs are rows); dramatiq only carries "work on
row N" messages. A dispatcher turns outbox events into deliveries and runs, actors carry
them out with retries, and a sweeper re-enqueues what is overdue, so a lost message or a
killed worker delays work but never loses it.
"""
