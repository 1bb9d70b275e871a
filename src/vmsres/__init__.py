"""vmsres: a self-hostable, wire-compatible Volcengine VMS voice-resource service."""

SERVICE = "vms"
API_VERSION = "2022-01-01"

__version__ = "0.1.0"
