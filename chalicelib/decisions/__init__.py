"""Pure decisions of the pipeline: classification, the incident decision, escalation,
communication duties, on-call and business hours, PagerDuty alert keys, word matching.

Each module is a set of pure functions of its inputs and ``now``; none does I/O.
"""
