"""The embedded reference backend: a canonical, local implementation of the Quilt API.

It is a separate world reached only over HTTP: nothing else in quilt_verify imports its
internals, and it imports nothing from the rest of quilt_verify.
"""

from .server import ReferenceServer, serve_forever

__all__ = ["ReferenceServer", "serve_forever"]
