"""quilt-verify: live verification and conformance suite for the Quilt backend HTTP API."""

__version__ = "0.1.0"
