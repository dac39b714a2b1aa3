"""The notification outbox: what to send to whom, on which channel, and what happened.

Domains enqueue notifications inside their own transaction (``services.enqueue_*``); the
scheduler's delivery job (``jobs.send_due_deliveries``) sends them after commit, through the
transports of the ``notifications`` library wired from the configuration (``channels``).
See docs/notifications.md for the design and the guarantees.
"""
