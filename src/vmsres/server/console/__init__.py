"""The operator console: review queue, playback, search, accounts and keys in the browser.

app.py is a FastAPI application of module-level endpoints rendering the Jinja2 templates in
templates/ (with static/ for the stylesheet and script); every change goes through the service's
AdminOps, and ops.py adds what only the console needs (search across accounts, audio bytes, spoken
previews). session.py signs the session cookies and CSRF tokens. Labels of Types and States come
from vmsres.protocol.records; the console never touches the store.
"""
