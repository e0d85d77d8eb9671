"""Webhooks: the URL policy (policy.py) and the delivery of the outbox (delivery.py)."""
