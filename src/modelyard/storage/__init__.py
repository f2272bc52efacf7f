"""Blob storage: content-addressed bytes and in-progress uploads, nothing else.

Repositories, links, manifests and tags are metadata; the store never sees them.
"""
