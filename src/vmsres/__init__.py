"""vmsres: a self-hostable, wire-compatible Volcengine VMS voice-resource service.

The package is laid out in layers (docs/architecture.md walks through them):

- ``vmsres.protocol``: the service description (actions, parameters, result shapes, Types and
  States, error codes, request signing); standard library and orjson only.
- ``vmsres.client``: the Python client and ``vmsres res``; imports the protocol only.
- ``vmsres.server``: the server (wire, actions, service rules, store, blobs, audio, admin API,
  console, settings and the serve command).
- ``vmsres.testing``: the server in a thread of a test process (``VmsServer``) and the pytest
  plugin with its fixtures (docs/testing.md); it sits on the server side.
- ``vmsres.ops``: operations tools that work on a stopped or running store (backup, restore,
  master-key rotation).
"""

__version__ = "0.1.0"
