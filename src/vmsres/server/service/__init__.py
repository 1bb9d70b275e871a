"""The service layer: the rules of the resource service, behind every front door.

Accounts and their keys, the resource library (listing, TTS templates, renaming, deleting),
review policy and rules, audio ingestion, request rates, quotas and leases, ClientToken
idempotency, events (webhooks and the audit trail), operators, and the operator actions shared by
the admin API, the console and the CLI (admin.py). services.py builds one process's service objects
over one database. The service knows no HTTP: the wire actions, the admin API and the console call
it, and it reaches data only through vmsres.server.store, vmsres.server.blobs and
vmsres.server.audio; failures of those are mapped to the documented wire errors here (outages.py).
"""
