"""Notification: what a page says, the channels that carry it, the outbox and its
exactly-once delivery, one-click ack links, escaping, and the PagerDuty two-way sync.
"""
