"""The Gradio web app (`hybridgen ui`); needs the `ui` extra: `pip install "hybridgen[ui]"`."""

from hybridgen.ui.app import build_app

__all__ = ["build_app"]
