"""The HTTP side: the incident API, the ack-link pages, the gateway's one error shape,
the 503 when the store is down, and API tokens. Free of Chalice; ``app.py`` routes to it.
"""
