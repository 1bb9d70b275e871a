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
import threading
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


# Stands in ``args`` for the second output pipe of run_ffmpeg(side_output=True): its file
# descriptor number is only known once the pipe exists.
SIDE_PIPE = "{side-pipe}"


@dataclass(frozen=True, slots=True)
class FfmpegResult:
    returncode: int
    stdout: bytes
    stderr: str
    side: bytes = b""  # what ffmpeg wrote to SIDE_PIPE


def run_ffmpeg(
    args: Sequence[str], data: bytes, timeout: float, *, side_output: bool = False
) -> FfmpegResult | None:
    """Run ffmpeg with ``data`` on its standard input.

    With ``side_output``, ``SIDE_PIPE`` in ``args`` names a second pipe besides standard output,
    read into ``FfmpegResult.side``: one ffmpeg run can then hand back two outputs.

    Returns None when ffmpeg is not there, could not be started, or ran out of time (it is killed
    then, so this never hangs). Callers decide what "could not run" means for them.
    """
    exe = ffmpeg_path()
    if exe is None:
        return None
    side_read, side_write = os.pipe() if side_output else (-1, -1)
    pipe_name = f"pipe:{side_write}"
    # -nostdin only turns off ffmpeg's keyboard commands; it still reads pipe:0 as its input.
    command = [exe, "-hide_banner", "-nostdin", "-loglevel", "error"]
    command += [pipe_name if arg == SIDE_PIPE else arg for arg in args]
    side = bytearray()
    reader: threading.Thread | None = None
    try:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(side_write,) if side_output else (),
            )
        except OSError as exc:
            log.warning("ffmpeg could not be started (%s): %s", exe, exc)
            return None
        if side_output:
            os.close(side_write)
            side_write = -1
            # Read while ffmpeg runs: a full pipe would stop it writing, and so finishing.
            reader = threading.Thread(target=_drain, args=(side_read, side), daemon=True)
            reader.start()
        with process:
            try:
                stdout, stderr = process.communicate(data, timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                log.warning("ffmpeg took longer than %.0f s and was stopped: %s", timeout, " ".join(args))
                return None
        if reader is not None:
            reader.join()
    finally:
        for fd in (side_write,) if reader is not None else (side_read, side_write):
            if fd >= 0:
                os.close(fd)
    return FfmpegResult(process.returncode, stdout, stderr.decode("utf-8", "replace").strip(), bytes(side))


def _drain(fd: int, into: bytearray) -> None:
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(1 << 16):
            into += chunk
