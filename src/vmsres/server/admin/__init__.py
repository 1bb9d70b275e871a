"""The admin API: JSON REST for operators under /admin/v1, beside the wire endpoint."""
