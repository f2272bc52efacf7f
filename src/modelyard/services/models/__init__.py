"""Model versions: what the registry understands of a pushed model (format, architecture,
parameters, precision, quantization, license, files) and per-file access.

- ``service.py``: :class:`ModelService`, indexing on push, reads, per-file streaming
- ``extract.py``: manifest -> facts, bounded; ``packaging.py``: ModelPack, Docker model, KitOps,
  images; ``safetensors.py``, ``gguf.py``, ``hfconfig.py``, ``docs.py``: the files read
- ``tarindex.py``: member index of tar layers; ``source.py``: bounded reads of blobs
"""

from __future__ import annotations

from modelyard.services.models.extract import Limits
from modelyard.services.models.service import FileAccess, ModelService

__all__ = ["FileAccess", "Limits", "ModelService"]
