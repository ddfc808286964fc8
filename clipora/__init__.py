"""Clipora: long video in, short face-aware captioned clips out.

This package is the composition root (DESIGN.md section 1): it wires the stages into the
engine for the CLI (and, later, the gateway's app factory).
"""

__version__ = "0.1.0"
