"""Wire models: the JSON that crosses HTTP, shared by the server and every client.

``api/`` validates requests and renders responses with these models; ``client/``, the CLI,
the SDK and the Pulumi provider import them to build requests and read responses. They depend
on pydantic and ``domain/`` only, so a client never loads the server's stack.
"""
