"""Realtime subscriptions: permission-checked event streams that transports serve."""

from kernel.subscriptions.service import SubscriptionService
from kernel.subscriptions.stream import Subscription, SubscriptionClosed

__all__ = ["Subscription", "SubscriptionClosed", "SubscriptionService"]
