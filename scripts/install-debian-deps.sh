#!/usr/bin/env bash
# Debian packages the project uses, by profile:
#   serve: ffmpeg (audio decode check and telephony renditions): what the server itself runs.
#   dev (default): also wrk (the load generator of `make bench`), espeak-ng (the console's spoken
#   TTS previews), chromium, chromium-driver and a CJK font (the console's browser tests and their
#   screenshots), redis-server (the dependency-fault tests start and stop their own Redis).
# Idempotent and quiet when everything is present; skipped (with a note) where apt-get is absent
# or we are not root, since the code paths that need these tools say so at run time.
set -euo pipefail
profile="${1:-dev}"
case "$profile" in
  serve) packages=(ffmpeg) ;;
  dev) packages=(ffmpeg wrk espeak-ng chromium chromium-driver fonts-wqy-zenhei redis-server) ;;
  *) echo "usage: $0 [serve|dev]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debian-deps: apt-get not found; please install: ${missing[*]}" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "install-debian-deps: not root; please install: ${missing[*]}" >&2; exit 0; fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
