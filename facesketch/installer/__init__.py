"""The installer behind install.py (standard library only)."""
