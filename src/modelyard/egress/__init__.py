"""Outbound HTTP of the server (webhook POSTs): the transports the services are given by
``bootstrap.py``, so that nothing below ``api/`` imports an HTTP library."""
