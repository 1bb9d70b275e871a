"""Running ffmpeg on bytes in memory, bounded in time.

ffmpeg is optional: everything that uses it has a documented behaviour without it. The binary is
found on PATH, or named by ``VMSRES_FFMPEG`` (a path or a command name); setting that variable to
an empty string turns ffmpeg off, which is how the pure-Python paths are exercised on a machine
that has it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from vmsres.server.audio._common import log

ENV_VAR = "VMSRES_FFMPEG"


def ffmpeg_path() -> str | None:
    """The ffmpeg executable to run, or None when there is none (or it is turned off)."""
    configured = os.environ.get(ENV_VAR)
    if configured is None:
        return shutil.which("ffmpeg")
    if not configured.strip():
        return None
    return shutil.which(configured.strip())


def ffmpeg_available() -> bool:
    """Whether ffmpeg can be run: the decode check and the telephony rendition need it."""
    return ffmpeg_path() is not None


@dataclass(frozen=True, slots=True)
class FfmpegResult:
    returncode: int
    stdout: bytes
    stderr: str


def run_ffmpeg(args: Sequence[str], data: bytes, timeout: float) -> FfmpegResult | None:
    """Run ffmpeg with ``data`` on its standard input.

    Returns None when ffmpeg is not there, could not be started, or ran out of time (it is killed
    then: ``subprocess.run`` kills the child on timeout, so this never hangs). Callers decide what
    "could not run" means for them.
    """
    exe = ffmpeg_path()
    if exe is None:
        return None
    # -nostdin only turns off ffmpeg's keyboard commands; it still reads pipe:0 as its input.
    command = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", *args]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        log.warning("ffmpeg took longer than %.0f s and was stopped: %s", timeout, " ".join(args))
        return None
    except OSError as exc:
        log.warning("ffmpeg could not be started (%s): %s", exe, exc)
        return None
    return FfmpegResult(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace").strip())
