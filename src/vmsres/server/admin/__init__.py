"""The admin API: JSON REST for operators under /admin/v1, beside the wire endpoint.

operations.py declares every admin operation once (its service.admin.AdminOps method, HTTP method,
path, parameters and result); app.py builds the FastAPI routes, and so the OpenAPI document, from
that table, remote.py the client the CLI uses against a running server, and the CLI its store
subcommands. tokens.py keeps and checks the admin token. Like the console, this layer
goes through the service (AdminOps) and never touches the store.
"""
