"""Pure types of the registry: no I/O, no HTTP, no database.

Everything here can be imported by every other layer; nothing here imports them.
"""
