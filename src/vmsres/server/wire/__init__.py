"""The wire protocol: ASGI entry, signature check, parameter merging, the response envelope."""
