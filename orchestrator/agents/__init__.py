"""Agents for Tier 2 and 3: OpenHands conversations whose tools run in our sandboxes."""

import os

# Before OpenHands is first imported: it must not configure logging itself. Its automatic
# set-up adds a console handler that bypasses our redaction and lowers every quiet
# library's level to INFO, which makes SQLAlchemy log each statement with its parameters.
os.environ.setdefault("LOG_AUTO_CONFIG", "false")
