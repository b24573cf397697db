"""OpenCDP: a self-hosted customer data platform for orders.

Wire-compatible with the order side of Sitecore CDP (data model 2.1).
"""

__version__ = "0.1.0"
