"""What people read afterwards: the monthly report, post-mortem drafts, terminal views.
"""
