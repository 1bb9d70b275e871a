"""The VMS voice-resource service description: what travels on the wire, declared once.

Every action with its parameters and result shape, the resource Types and States, the record
fields, every error code with its HTTP status, and the request-signing algorithm. Both the
server and the client are driven by these declarations; this layer imports nothing of vmsres
outside itself and needs only the standard library and orjson.
"""

SERVICE = "vms"
API_VERSION = "2022-01-01"
