"""Data preparation (FS2K pack), face template and pack reader."""
