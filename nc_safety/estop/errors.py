"""The error class of the e-stop package."""

from __future__ import annotations


class EstopError(Exception):
    """Raised for an invalid e-stop setting, a malformed message or a refused reset.

    Every message names the offending value and what to do about it.
    """
