"""The scheduler: questionnaires opened and closed on time, the reminder ladder, and the job
runner (``flask scheduler run`` / ``run-once``) that also flushes the notification outbox.

The database is the source of truth: due work is rows with indexed due times (assignments'
``opens_at``/``closes_at``, reminders' ``due_at``, deliveries' ``next_attempt_at``), claimed
with ``FOR UPDATE SKIP LOCKED``; APScheduler only says "look again now".
"""
