"""Service rules: accounts, review, TTS validation. Knows no HTTP; talks to the stores."""
