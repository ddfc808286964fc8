"""The web app's templates (``templates/``) and static assets (``static/``), served by routes/pages.py."""

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
