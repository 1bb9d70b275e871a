"""The operator console: review queue, playback, search, accounts and keys in the browser."""
