"""The vmsres server, in layers that depend one way only.

``wire`` (ASGI endpoint, signature check, envelope) calls ``actions`` (one handler per protocol
action), which call ``service`` (the rules: accounts, resources, review, ingest, limits, events),
which uses ``store`` (SQL through SQLAlchemy Core), ``blobs`` (disk or S3) and ``audio``. The
``admin`` API and the ``console`` are other front doors onto ``service``; they never reach the
store. ``settings`` and ``serve`` put the pieces together. The ``vmsres`` command line that
drives it is a layer above, in vmsres.cli.
"""
