"""The one schema, in SQLAlchemy Core. Alembic migrations under store/migrations create it.

Times are integer epoch seconds (UTC): portable between SQLite and PostgreSQL, cheap to index,
and formatted for the wire (China time) at the edge.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # None: the server's --review policy applies.
    sa.Column("review_policy", sa.String(32), nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # Per-account overrides of the serve defaults (None: the default applies). Rates are
    # "N/s[:burst]" or "off"; quotas are counts, -1 meaning unlimited.
    sa.Column("rate_per_key", sa.String(32), nullable=True),
    sa.Column("rate_per_account", sa.String(32), nullable=True),
    sa.Column("max_resources", sa.BigInteger, nullable=True),
    sa.Column("max_storage_bytes", sa.BigInteger, nullable=True),
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key", sa.String(128), primary_key=True),
    sa.Column(
        "account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    # Sealed by vmsres.server.masterkey ("vmsk1:<key id>:..."), never plaintext (migration 0006_secrets).
    sa.Column("secret_key", sa.String(512), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("resource_key", sa.String(32), nullable=False, unique=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("state", sa.SmallInteger, nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    # casefold()ed name: the Keyword filter matches on it, the same on every database.
    sa.Column("name_folded", sa.String(512), nullable=False),
    sa.Column("suffix", sa.String(8), nullable=False, server_default=""),
    sa.Column("duration", sa.Integer, nullable=False, server_default="0"),
    sa.Column("remark", sa.String(1024), nullable=False, server_default=""),
    sa.Column("tts_content", sa.Text, nullable=True),
    sa.Column("tts_options", sa.Text, nullable=True),
    sa.Column("reject_reason", sa.Text, nullable=True),
    # Who decided the State: "auto:<rule>", an operator's name, "reviewer:<name>" (the admin
    # token's decisions), "forced:admin" or "fixture".
    sa.Column("reviewed_by", sa.String(128), nullable=True),
    sa.Column("reviewed_at", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # Audio resources: the FileName (upload) or Name (fetch) that made them, unique per account,
    # and what analysis measured. NULL for TTS templates.
    sa.Column("file_name", sa.String(256), nullable=True),
    sa.Column("source_url", sa.Text, nullable=True),
    sa.Column("audio_format", sa.String(8), nullable=True),
    sa.Column("codec", sa.String(32), nullable=True),
    sa.Column("sample_rate", sa.Integer, nullable=True),
    sa.Column("channels", sa.Integer, nullable=True),
    sa.Column("duration_ms", sa.BigInteger, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("blob_key", sa.String(512), nullable=True),
    sa.Column("rendition_key", sa.String(512), nullable=True),
    # The telephony rendition waits for ffmpeg (migration 0010_rendition_pending).
    sa.Column("rendition_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    # Levels measured from the audio (migration 0012_audio_levels, docs/audio.md): NULL where not
    # measured. The waveform is the hex of its bucket levels. levels_pending: ffmpeg has not
    # measured them yet (it was missing), so loudness at least is still to come.
    sa.Column("peak_dbfs", sa.Float, nullable=True),
    sa.Column("loudness_lufs", sa.Float, nullable=True),
    sa.Column("true_peak_dbtp", sa.Float, nullable=True),
    sa.Column("silence_share", sa.Float, nullable=True),
    sa.Column("waveform", sa.Text, nullable=True),
    sa.Column("levels_pending", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_resources_listing", "account_id", "type", "created_at", "id"),
    sa.Index("ix_resources_listing_state", "account_id", "type", "state", "created_at", "id"),
    # The review queue across accounts, oldest first (migration 0013_review_queue).
    sa.Index("ix_resources_review_queue", "state", "created_at", "id", "account_id", "type"),
    sa.Index("uq_resources_account_id_file_name", "account_id", "file_name", unique=True),
    sa.Index(
        "ix_resources_rendition_pending",
        "id",
        # SQLAlchemy writes the test as "= 1" on SQLite, whose planner needs that same form.
        sqlite_where=sa.text("rendition_pending = 1"),
        postgresql_where=sa.text("rendition_pending"),
    ),
    sa.Index(
        "ix_resources_levels_pending",
        "id",
        sqlite_where=sa.text("levels_pending = 1"),
        postgresql_where=sa.text("levels_pending"),
    ),
)

# One row per upload URL handed out. The token in the URL names the row by its nonce; the row
# says whether bytes arrived, and the staging blob holds them until commit or collection.
uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("file_name", sa.String(256), nullable=False),
    # issued -> uploaded -> committed; collected once expired and never committed.
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("staging_key", sa.String(512), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_uploads_account_id_file_name", "account_id", "file_name"),
    sa.Index("ix_uploads_expires_at", "expires_at"),
)

# Secrets every server process of one deployment must share (e.g. the upload-token key).
server_secrets = sa.Table(
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

# Per-account webhook target; the secret signs every delivery to it.
account_webhooks = sa.Table(
    "account_webhooks",
    metadata,
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    # Sealed under the master key, bound to account_id (migration 0008_secrets_holds). 2048: a
    # 256-character secret may be 1 KiB of UTF-8 before sealing and base64 add to it.
    sa.Column("secret", sa.String(2048), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# One row per event and target. A row stays 'pending' until delivered or given up ('failed');
# next_attempt_ms doubles as the claim lease, so a worker that dies mid-send frees it by itself.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(32), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    # No foreign key: the log of what was sent outlives the account it was sent for.
    sa.Column("account_name", sa.String(64), nullable=False),
    sa.Column("resource_key", sa.String(32), nullable=True),
    sa.Column("url", sa.String(2048), nullable=False),
    # The webhook's secret when the event was queued, sealed again bound to event_id.
    sa.Column("secret", sa.String(2048), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_ms", sa.BigInteger, nullable=False),
    sa.Column("give_up_ms", sa.BigInteger, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Index("ix_webhook_deliveries_due", "state", "next_attempt_ms"),
    sa.Index("ix_webhook_deliveries_account", "account_name", "id"),
)

# Append-only: the code never updates or deletes a row (no foreign keys, so nothing cascades).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", sa.BigInteger, nullable=False),
    # "key" (a wire request), "admin" (the admin API), "cli" (a local store command), "system".
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("account_name", sa.String(64), nullable=True),
    sa.Column("access_key", sa.String(128), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("resource_key", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    # "ok" or the error code.
    sa.Column("outcome", sa.String(64), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index("ix_audit_log_account", "account_name", "id"),
    sa.Index("ix_audit_log_resource", "resource_key", "id"),
)

# Maintained by triggers (migration 0004_scale) inside every writing transaction: the exact
# number of resources per (account, type, state), so Type/State Totals are one lookup.
resource_counts = sa.Table(
    "resource_counts",
    metadata,
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("type", sa.SmallInteger, primary_key=True),
    sa.Column("state", sa.SmallInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# SQLite only: the FTS5 trigram index over resources.name_folded (rowid = resources.id).
resources_fts = sa.table("resources_fts", sa.column("rowid", sa.Integer), sa.column("resources_fts"))

# Maintained by triggers (migration 0007_ngrams): one row per distinct 1- and 2-character gram
# of each resource's name_folded, keyed (account_id, type, gram, created_at, id), so a keyword
# of 1-2 characters is one range of this key, already in listing order.
resource_grams = sa.table(
    "resource_grams",
    sa.column("account_id", sa.BigInteger),
    sa.column("type", sa.SmallInteger),
    sa.column("gram", sa.Text),
    sa.column("created_at", sa.BigInteger),
    sa.column("id", sa.BigInteger),
    sa.column("state", sa.SmallInteger),
)

# ClientToken answers: one row per (account, token). result NULL means the first request is still
# running; rows past expires_at count as absent and are deleted by garbage collection.
idempotency_tokens = sa.Table(
    "idempotency_tokens",
    metadata,
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("params_sha256", sa.String(64), nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
)

# A dialer's "in use" lease on a resource. A lease past expires_at no longer counts; nothing needs
# to delete it (reads compare the expiry), a new lease simply overwrites it.
resource_leases = sa.Table(
    "resource_leases",
    metadata,
    sa.Column("resource_key", sa.String(32), primary_key=True),
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_resource_leases_account_id_expires_at", "account_id", "expires_at"),
)

# One row per running `vmsres backup`. While any row's expires_at is ahead, deletes leave their
# blobs to garbage collection and garbage collection deletes nothing, so every blob the backup's
# snapshot references is still there when the backup copies it. A backup renews its row as it
# goes and deletes it at the end; a killed backup's row simply expires.
backup_holds = sa.Table(
    "backup_holds",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
)

# Maintained by triggers (migration 0009_positions): resources per (account, type, state) in
# CreateTime blocks of four sizes (level i: created_at >> (25, 20, 15, 10)[i]), so a deep Offset
# is found by summing a few blocks instead of walking the listing (docs/search.md).
resource_blocks = sa.Table(
    "resource_blocks",
    metadata,
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("type", sa.SmallInteger, primary_key=True),
    sa.Column("level", sa.SmallInteger, primary_key=True),
    sa.Column("block", sa.BigInteger, primary_key=True),
    sa.Column("state", sa.SmallInteger, primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Changed by triggers (migration 0009_positions): gen with every insert, update or delete of the
# account's resources, lease_gen with every change to its leases. Per-worker caches of query
# results are valid while they stay the same.
resource_generations = sa.Table(
    "resource_generations",
    metadata,
    sa.Column("account_id", BigId, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("gen", sa.BigInteger, nullable=False),
    sa.Column("lease_gen", sa.BigInteger, nullable=False),
)

# One row (id 1), changed by triggers with every write to accounts or access_keys: the
# per-worker cache of verified keys is valid while it stays the same.
credential_generation = sa.Table(
    "credential_generation",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("gen", sa.BigInteger, nullable=False),
)

# People who review or administer through the console and the admin API (migration
# 0011_operators). Only the sha256 of a personal token is kept. ``generation`` grows when the
# operator is disabled or given a new token: console sessions opened before that end.
operators = sa.Table(
    "operators",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    # "reviewer" or "admin".
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("generation", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)
