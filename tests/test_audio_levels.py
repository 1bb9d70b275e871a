"""Audio levels (docs/audio.md "Levels, loudness and waveform"): measured from real audio at
commit, stored, shown by the admin API and the console, used by the review rules; the waveform is
measured once; the console's TTS preview follows Speed and Volume."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import shutil
import stat
import struct
import threading
import uuid
import wave
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.audio_factory import make_mp3, make_silence, make_wav, require_ffmpeg
from tests.conftest import official_vms_service
from tests.console_support import TOKEN, login
from tests.servers import RunningServer, migrate_to, run_cli, skip_unless_ci, start_server
from tests.wire_client import signed_request
from vmsres.server.audio import analyze_audio, measure_levels
from vmsres.server.audio.silence import peak_dbfs
from vmsres.server.masterkey import load_keyring
from vmsres.server.service.review import MeasuredLevels, ReviewRules, check_levels

ENV = "VMSRES_FFMPEG"


# --- the measurement itself ---------------------------------------------------------------------


def test_a_sine_at_minus_20_dbfs_measures_its_peak_and_loudness() -> None:
    require_ffmpeg()
    # A 1 kHz sine of amplitude 0.1 peaks at -20 dBFS; EBU R128 gives a full-scale 1 kHz sine in
    # one channel -3.01 LUFS, so this one about -23 LUFS.
    data = make_wav(3.0, sample_rate=48000, freq=1000.0, amplitude=0.1)
    levels = measure_levels(data, analyze_audio(data))
    assert levels.complete
    assert levels.peak_dbfs is not None and abs(levels.peak_dbfs + 20.0) <= 0.1
    assert levels.loudness_lufs is not None and abs(levels.loudness_lufs + 23.0) <= 0.5
    assert levels.true_peak_dbtp is not None and abs(levels.true_peak_dbtp + 20.0) <= 0.5
    assert levels.silence_share == 0.0
    assert levels.waveform is not None and len(levels.waveform) == 240
    # Every bucket holds a peak of 0.1 of full scale: 25 or 26 of 255.
    assert set(levels.waveform) <= {25, 26}


@pytest.mark.parametrize("ffmpeg", [True, False], ids=["ffmpeg", "no-ffmpeg"])
def test_half_silent_audio_has_a_silence_share_of_one_half(
    ffmpeg: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if ffmpeg:
        require_ffmpeg()
    else:
        monkeypatch.setenv(ENV, "")
    data = make_wav(4.0, signal="silence_then_noise", silence_seconds=2.0, amplitude=0.5)
    levels = measure_levels(data, analyze_audio(data))
    assert levels.silence_share is not None and abs(levels.silence_share - 0.5) <= 0.03
    assert levels.peak_dbfs is not None and abs(levels.peak_dbfs + 6.02) <= 0.1
    assert levels.waveform is not None
    assert max(levels.waveform[:110]) == 0 and min(levels.waveform[130:]) > 64
    # Without ffmpeg there is no loudness, and the levels wait for it.
    assert (levels.loudness_lufs is not None) is ffmpeg
    assert levels.complete is ffmpeg


def test_without_ffmpeg_an_mp3_is_left_unmeasured(monkeypatch: pytest.MonkeyPatch) -> None:
    require_ffmpeg()
    data = make_mp3(2.0)
    monkeypatch.setenv(ENV, "")
    levels = measure_levels(data, analyze_audio(data))
    assert (levels.peak_dbfs, levels.loudness_lufs, levels.silence_share, levels.waveform) == (None,) * 4
    assert not levels.complete


def test_level_rules_name_the_level_and_skip_what_was_not_measured() -> None:
    rules = ReviewRules(max_silence_share=0.5, min_loudness_lufs=-30, max_loudness_lufs=-10, max_peak_dbfs=-1)
    quiet = check_levels(rules, MeasuredLevels(peak_dbfs=-30, loudness_lufs=-41.2, silence_share=0.1))
    assert quiet is not None and quiet.rule == "audio-loudness"
    assert quiet.reason == "the audio is too quiet: -41.2 LUFS, below the minimum -30 LUFS"
    silent = check_levels(rules, MeasuredLevels(silence_share=0.8))
    assert silent is not None and silent.reason == "80% of the audio is silence; at most 50% may be"
    hot = check_levels(rules, MeasuredLevels(peak_dbfs=-0.1, loudness_lufs=-12))
    assert hot is not None and hot.rule == "audio-peak"
    assert check_levels(rules, MeasuredLevels()) is None
    assert check_levels(rules, MeasuredLevels(peak_dbfs=-3, loudness_lufs=-20, silence_share=0.5)) is None
    with pytest.raises(ValueError):
        ReviewRules(max_silence_share=1.5)
    with pytest.raises(ValueError):
        ReviewRules(min_loudness_lufs=3)


# --- through a server ---------------------------------------------------------------------------


def _commit(server: RunningServer, data: bytes) -> str:
    name = f"prompt-{uuid.uuid4().hex[:8]}.wav"
    vms = official_vms_service(server)
    url = vms.get_resource_upload_url({"FileName": name})["Result"]["UploadUrl"]
    assert httpx.put(url, content=data).status_code == 200
    committed = signed_request(server, "CommitResourceUpload", {"FileName": name})
    assert committed.status_code == 200, committed.text
    return str(committed.json()["Result"]["ResourceKey"])


def _admin(server: RunningServer, path: str) -> dict[str, object]:
    answer = httpx.get(
        f"{server.url}/admin/v1{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def test_levels_are_stored_at_commit_and_shown_by_the_admin_api(
    tmp_path: Path, database_url: str | None
) -> None:
    require_ffmpeg()
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN], database_url=database_url)
    try:
        data = make_wav(3.0, sample_rate=48000, channels=2, freq=1000.0, amplitude=0.1)
        key = _commit(server, data)
        facts = _admin(server, f"/resources/{key}")
        assert facts["Codec"] == "pcm_s16le" and facts["SampleRate"] == 48000 and facts["Channels"] == 2
        assert facts["SizeBytes"] == len(data) and facts["DurationMs"] == 3000
        assert abs(float(facts["PeakDbfs"]) + 20.0) <= 0.1  # type: ignore[arg-type]
        # Two channels carry twice the power of one: 3 LU louder than the mono sine.
        assert abs(float(facts["LoudnessLufs"]) + 20.0) <= 0.5  # type: ignore[arg-type]
        assert facts["SilenceShare"] == 0.0 and facts["LevelsPending"] is False
        [(waveform,)] = server.sql("SELECT waveform FROM resources WHERE resource_key = :k", {"k": key})
        assert len(bytes.fromhex(waveform)) == 240
        # The wire answer is Volcengine's record, unchanged: none of this is in it.
        listed = signed_request(server, "QueryOpenGetResource", {"Type": 0})
        [record] = listed.json()["Result"]["Records"]
        assert "PeakDbfs" not in record and "Codec" not in record
    finally:
        server.stop()


def test_without_ffmpeg_loudness_is_pending_then_measured_by_the_rebuild(tmp_path: Path) -> None:
    require_ffmpeg()
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN], env={ENV: ""})
    try:
        key = _commit(server, make_wav(4.0, signal="silence_then_noise", silence_seconds=2.0))
        facts = _admin(server, f"/resources/{key}")
        # What Python can read of a 16-bit WAV is there; loudness waits for ffmpeg.
        assert facts["LevelsPending"] is True and facts["LoudnessLufs"] is None
        assert abs(float(facts["SilenceShare"]) - 0.5) <= 0.03  # type: ignore[arg-type]
        env = {k: v for k, v in os.environ.items() if k != ENV}
        rebuilt = run_cli("renditions", "rebuild", "--json", *server.store_args(), env=env)
        assert json.loads(rebuilt.stdout)["levels_measured"] == 1
        facts = _admin(server, f"/resources/{key}")
        assert facts["LevelsPending"] is False and facts["LoudnessLufs"] is not None
    finally:
        server.stop()


def test_review_rules_refuse_too_quiet_and_too_silent_audio(tmp_path: Path) -> None:
    require_ffmpeg()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"min_loudness_lufs": -35, "max_silence_share": 0.6}))
    server = start_server(tmp_path / "data", ["--review", "auto", "--review-rules", str(rules)])
    try:
        # -46 dBFS peak: above the silence threshold (-50), but about -49 LUFS.
        quiet = _commit(server, make_wav(3.0, freq=1000.0, amplitude=0.005))
        sparse = _commit(server, make_wav(5.0, signal="silence_then_noise", silence_seconds=4.0))
        fine = _commit(server, make_wav(3.0, freq=1000.0, amplitude=0.3))
        rows = {
            key: (state, by, reason)
            for key, state, by, reason in server.sql(
                "SELECT resource_key, state, reviewed_by, reject_reason FROM resources", {}
            )
        }
        state, by, reason = rows[quiet]
        assert (state, by) == (2, "auto:audio-loudness") and "too quiet" in reason and "LUFS" in reason
        state, by, reason = rows[sparse]
        assert (state, by) == (
            2,
            "auto:audio-silence-share",
        ) and "of the audio is silence; at most 60% may be" in reason
        assert rows[fine][:2] == (1, "auto:audio-valid")
    finally:
        server.stop()


def _counting_ffmpeg(tmp_path: Path) -> tuple[Path, Path]:
    """An ffmpeg that counts its runs in a file, then runs the real one."""
    real = require_ffmpeg()
    counter = tmp_path / "ffmpeg-runs"
    counter.write_text("")
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho run >> "{counter}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, counter


def test_the_waveform_is_measured_once_and_served_as_a_cacheable_svg(tmp_path: Path) -> None:
    wrapper, counter = _counting_ffmpeg(tmp_path)
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN], env={ENV: str(wrapper)})
    try:
        key = _commit(server, make_wav(2.0, amplitude=0.5))
        # As migration 0012 leaves a resource stored before it: no levels, waiting.
        server.sql(
            "UPDATE resources SET waveform = NULL, peak_dbfs = NULL, loudness_lufs = NULL, "
            "levels_pending = true WHERE resource_key = :k",
            {"k": key},
        )
        runs = len(counter.read_text().splitlines())
        client, _ = login(server)
        first = client.get(f"/console/waveform/{key}.svg")
        assert first.status_code == 200 and first.headers["content-type"] == "image/svg+xml"
        assert first.headers["cache-control"] == "private, no-cache" and first.headers["etag"]
        assert first.text.startswith("<svg") and "style" not in first.text
        assert len(counter.read_text().splitlines()) == runs + 1
        page = client.get(f"/console/resources/{key}")
        assert f'src="/console/waveform/{key}.svg"' in page.text
        assert "img-src 'self'" in page.headers["content-security-policy"]
        again = client.get(f"/console/waveform/{key}.svg")
        assert again.content == first.content
        unchanged = client.get(
            f"/console/waveform/{key}.svg", headers={"If-None-Match": first.headers["etag"]}
        )
        assert unchanged.status_code == 304
        # Measured once: the page and the later requests read what the first one stored.
        assert len(counter.read_text().splitlines()) == runs + 1
        [(pending, peak)] = server.sql(
            "SELECT levels_pending, peak_dbfs FROM resources WHERE resource_key = :k", {"k": key}
        )
        assert not pending and abs(peak + 6.02) <= 0.1
        assert client.get("/console/waveform/" + "0" * 32 + ".svg").status_code == 404
    finally:
        server.stop()


def test_the_resource_page_shows_duration_format_and_levels(tmp_path: Path) -> None:
    require_ffmpeg()
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN])
    try:
        key = _commit(server, make_wav(2.5, sample_rate=16000, freq=1000.0, amplitude=0.1))
        client, _ = login(server)
        page = client.get(f"/console/resources/{key}").text
        assert '<dd id="duration">0:02.5 (.wav)</dd>' in page
        assert "pcm_s16le, 16000 Hz, mono, 78.2 KiB" in page
        assert "peak -20.0 dBFS" in page and "LUFS" in page and "silence 0%" in page
        assert '<span class="duration" data-kind="original">0:02.5</span>' in page
    finally:
        server.stop()


# --- the TTS preview ----------------------------------------------------------------------------


def _preview(server: RunningServer, client: httpx.Client, options: dict[str, float]) -> bytes:
    vms = official_vms_service(server)
    created = vms.create_tts(
        {
            "Name": f"t-{uuid.uuid4().hex[:8]}",
            "TtsTemplateContent": "Your verification code is one two three four",
            "TtsOption": json.dumps(options),
        }
    )
    answer = client.get(f"/console/audio/{created['Result']['ResourceKey']}/preview")
    assert answer.status_code == 200, answer.text
    return answer.content


def test_the_tts_preview_follows_the_templates_speed_and_volume(tmp_path: Path) -> None:
    skip_unless_ci(None if shutil.which("espeak-ng") else "espeak-ng is not installed", "espeak-ng")
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN])
    try:
        client, _ = login(server)
        normal = analyze_audio(_preview(server, client, {"Speed": 1}))
        fast = analyze_audio(_preview(server, client, {"Speed": 2}))
        slow = analyze_audio(_preview(server, client, {"Speed": 0.5}))
        assert fast.duration_seconds < 0.7 * normal.duration_seconds
        assert slow.duration_seconds > 1.5 * normal.duration_seconds
        loud = peak_dbfs(_preview(server, client, {"Volume": 2}))
        soft = peak_dbfs(_preview(server, client, {"Volume": 0.3}))
        assert loud is not None and soft is not None and loud > soft + 6
    finally:
        server.stop()


def test_migration_marks_audio_stored_before_it_pending_and_the_rebuild_measures_it(
    tmp_path: Path, database_url: str | None
) -> None:
    """A store from before 0012_audio_levels: its audio has no levels until the rebuild."""
    require_ffmpeg()
    data = tmp_path / "data"
    server = start_server(data, database_url=database_url)
    try:
        key = _commit(server, make_wav(2.0, freq=1000.0, amplitude=0.1))
        tts = official_vms_service(server).create_tts({"Name": "t", "TtsTemplateContent": "hi"})
        tts_key = tts["Result"]["ResourceKey"]
    finally:
        server.stop()
    keyring = load_keyring(data, None, create=False)
    migrate_to(server.store_url, "0011_operators", keyring, downgrade=True)
    migrate_to(server.store_url, "head", keyring)
    query = "SELECT resource_key, levels_pending, peak_dbfs, waveform FROM resources"
    rows = {k: (bool(pending), peak, wave) for k, pending, peak, wave in server.sql(query, {})}
    assert rows == {key: (True, None, None), tts_key: (False, None, None)}
    rebuilt = run_cli("renditions", "rebuild", "--json", *server.store_args())
    assert json.loads(rebuilt.stdout)["levels_measured"] == 1
    rows = {k: (bool(pending), peak, wave) for k, pending, peak, wave in server.sql(query, {})}
    pending, peak, wave = rows[key]
    assert not pending and abs(peak + 20.0) <= 0.1 and len(bytes.fromhex(wave)) == 240


def test_fetched_audio_is_measured_too(tmp_path: Path) -> None:
    require_ffmpeg()
    served = tmp_path / "www"
    served.mkdir()
    (served / "quiet.wav").write_bytes(make_wav(2.0, freq=1000.0, amplitude=0.1))
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN, "--fetch-allow-host", "127.0.0.1"])
    try:
        with _static_files(served) as base:
            fetched = signed_request(server, "FetchResource", {"Url": f"{base}/quiet.wav", "Name": "quiet"})
        assert fetched.status_code == 200, fetched.text
        facts = _admin(server, f"/resources/{fetched.json()['Result']['ResourceKey']}")
        assert abs(float(facts["PeakDbfs"]) + 20.0) <= 0.1  # type: ignore[arg-type]
        assert abs(float(facts["LoudnessLufs"]) + 23.0) <= 0.5  # type: ignore[arg-type]
    finally:
        server.stop()


@contextlib.contextmanager
def _static_files(directory: Path) -> Iterator[str]:
    """A loopback HTTP server of ``directory``'s files, for FetchResource to download."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_a_clip_shorter_than_one_loudness_block_has_no_loudness_and_passes_the_loudness_rule() -> None:
    """EBU R128 integrates 400 ms blocks: ffmpeg answers its -70 LUFS floor for a shorter clip,
    which is no measurement (a loud 50 ms beep is not "too quiet")."""
    require_ffmpeg()
    data = make_wav(0.05, sample_rate=16000, freq=1000.0, amplitude=0.5)
    levels = measure_levels(data, analyze_audio(data))
    assert levels.complete and levels.loudness_lufs is None
    assert levels.peak_dbfs is not None and abs(levels.peak_dbfs + 6.02) <= 0.1
    rules = ReviewRules(min_loudness_lufs=-35)
    assert check_levels(rules, MeasuredLevels(levels.peak_dbfs, levels.loudness_lufs, 0.0)) is None
    # A clip just long enough for one block is measured.
    data = make_wav(0.5, sample_rate=16000, freq=1000.0, amplitude=0.5)
    levels = measure_levels(data, analyze_audio(data))
    assert levels.loudness_lufs is not None and abs(levels.loudness_lufs + 9.0) <= 0.5


def test_the_tts_preview_clamps_or_ignores_any_speed_and_volume(tmp_path: Path) -> None:
    """Options stored as given (a fixture, a restored backup) may hold any JSON: the preview and
    the page still answer, with out-of-range values clamped and others not heard."""
    skip_unless_ci(None if shutil.which("espeak-ng") else "espeak-ng is not installed", "espeak-ng")
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN])
    try:
        client, _ = login(server)
        options = [
            '{"Speed": 1' + "0" * 400 + "}",
            '{"Volume": -1' + "0" * 400 + "}",
            '{"Speed": 0, "Volume": "loud"}',
            '{"Speed": 1e308, "Volume": [1]}',
            "not json",
        ]
        fixtures = [
            {
                "ResourceKey": uuid.uuid4().hex,
                "Account": "acme",
                "Type": 1,
                "State": 0,
                "Name": f"t{i}",
                "TtsTemplateContent": "one two",
                "TtsOptions": option,
            }
            for i, option in enumerate(options)
        ]
        stored = httpx.post(
            f"{server.url}/admin/v1/fixtures", json=fixtures, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert stored.status_code == 200, stored.text
        for fixture in fixtures:
            key = fixture["ResourceKey"]
            answer = client.get(f"/console/audio/{key}/preview")
            assert answer.status_code == 200, (fixture["TtsOptions"][:40], answer.text)
            assert client.get(f"/console/resources/{key}").status_code == 200
            assert client.get(f"/console/waveform/{key}.svg").status_code == 404
    finally:
        server.stop()


def _stereo_wav(left: list[int], right: list[int], rate: int = 16000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<hh", a, b) for a, b in zip(left, right, strict=True)))
    return out.getvalue()


@pytest.mark.parametrize("ffmpeg", [True, False], ids=["ffmpeg", "no-ffmpeg"])
def test_stereo_silence_share_and_waveform_follow_the_loudest_channel(
    ffmpeg: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Channels in opposite phase cancel in a mono mix: the audio is loud, not silent, and one
    silent channel does not halve the waveform."""
    if ffmpeg:
        require_ffmpeg()
    else:
        monkeypatch.setenv(ENV, "")
    sine = [round(16384 * math.sin(2 * math.pi * 1000 * i / 16000)) for i in range(32000)]
    # Computed here from the samples written: 16384 of 32768 is -6.02 dBFS, 128 of 255 levels.
    expected_peak = 20 * math.log10(max(abs(s) for s in sine) / 32768)
    antiphase = _stereo_wav(sine, [-s for s in sine])
    levels = measure_levels(antiphase, analyze_audio(antiphase))
    assert levels.peak_dbfs is not None and abs(levels.peak_dbfs - expected_peak) <= 0.1
    assert levels.silence_share == 0.0
    assert levels.waveform is not None and min(levels.waveform) >= 120
    one_silent = _stereo_wav(sine, [0] * len(sine))
    levels = measure_levels(one_silent, analyze_audio(one_silent))
    assert levels.silence_share == 0.0
    assert levels.waveform is not None and min(levels.waveform) >= 120


def test_the_page_of_digitally_silent_audio_says_so_instead_of_minus_200(tmp_path: Path) -> None:
    require_ffmpeg()
    server = start_server(tmp_path / "data", ["--admin-token", TOKEN])
    try:
        key = _commit(server, make_silence(1.0))
        client, _ = login(server)
        page = client.get(f"/console/resources/{key}").text
        levels = page.split('<dd id="levels">', 1)[1].split("</dd>", 1)[0]
        assert "-200" not in levels
        assert "peak −∞ dBFS (digital silence)" in levels and "silence 100%" in levels
        # The admin API keeps the number (-200 is documented), which JSON can carry.
        assert _admin(server, f"/resources/{key}")["PeakDbfs"] == -200.0
    finally:
        server.stop()
