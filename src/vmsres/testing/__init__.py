"""Test tools for projects that use the VMS voice-resource API: a real vmsres server in-process.

``VmsServer`` starts one in a background thread; the pytest plugin (vmsres.testing.pytest_plugin,
registered through the ``pytest11`` entry point) gives the fixtures ``vms_server``,
``vms_account``, ``vms_sdk`` and ``vms_client``. See docs/testing.md.
"""

from vmsres.testing.server import Account, VmsServer, VmsServerError

__all__ = ["Account", "VmsServer", "VmsServerError"]
