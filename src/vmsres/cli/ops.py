"""``vmsres backup``, ``vmsres restore`` and ``vmsres keys rotate-master-key``: the ops tools."""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tarfile
from pathlib import Path

from vmsres.cli.store import FAILURES, fail, print_result, require_store, settings_from
from vmsres.ops.backup import BackupError, backup, restore
from vmsres.ops.rotation import rotate_master_key
from vmsres.server import backends
from vmsres.server.blobs import BlobStorageError

BACKUP_FAILURES: tuple[type[Exception], ...] = (
    *FAILURES,
    BackupError,
    BlobStorageError,
    tarfile.TarError,
    sqlite3.Error,
    ValueError,
)


def _backup_or_restore(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        if args.command == "backup":
            require_store(settings, create=False)
            done = backup(settings, Path(args.file))
            human = (
                f"backed up {done['Resources']} resources and {done['Blobs']} blobs "
                f"({done['BlobBytes']} bytes) to {done['File']}"
            )
            if done["DroppedMissingBlobs"]:
                print(
                    f"vmsres: warning: {done['DroppedMissingBlobs']} resources were left out: "
                    "their audio vanished before it was copied",
                    file=sys.stderr,
                )
        else:
            backends.check(settings)
            done = restore(settings, Path(args.file), force=args.force)
            human = (
                f"restored {done['Resources']} resources and {done['BlobCount']} blobs into "
                f"{done['Database']} (audio in {done['Blobs']})"
            )
    except BACKUP_FAILURES as error:
        return fail(error)
    print_result(args, done, human)
    return 0


def _rotate_master_key(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        require_store(settings, create=False)
        report = rotate_master_key(settings, Path(args.new_key_file))
    except FAILURES as error:
        return fail(error)
    print_result(
        args,
        report,
        f"re-encrypted {report['Secrets']} secrets and {report['WebhookSecrets']} webhook secrets "
        f"under master key {report['KeyId']}"
        + (f"; installed it as {report['InstalledAs']}" if report["InstalledAs"] else ""),
    )
    return 0


def run_ops(args: argparse.Namespace) -> int:
    """Run a parsed backup, restore or rotate-master-key (vmsres.cli parses the command line)."""
    if args.command in ("backup", "restore"):
        return _backup_or_restore(args)
    return _rotate_master_key(args)
