"""The pull-through cache (issue #15): rules (``rules.py``), the pull path (``cache.py``) and one
shared download per cold blob (``flight.py``)."""

from modelyard.services.proxy.cache import PullThrough
from modelyard.services.proxy.rules import ProxyRules

__all__ = ["ProxyRules", "PullThrough"]
