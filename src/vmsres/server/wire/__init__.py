"""The wire layer: the signed Volcengine OpenAPI endpoint as a plain ASGI application.

app.py routes ``/?Action=...&Version=...`` requests (and the health checks, the unsigned upload and
download byte endpoints of transfer.py, and the mounted admin API and console), checks the request
signature against the account's key, merges query and body parameters, validates them against
the protocol's ActionSpec and calls the matching function of vmsres.server.actions. envelope.py is
the only place where a raised vmsres.protocol.errors exception becomes a response: the Volcengine
envelope with ResponseMetadata, the error code and its HTTP status. access_log.py writes one JSON
line per request. This layer knows HTTP and the protocol; the rules themselves live in the service.
"""
