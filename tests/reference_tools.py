"""Optional reference evaluators: imported when they work here, otherwise their tests skip with the reason.

xtcocotools (the AIC/CrowdPose fork of pycocotools) is not in the ``dev`` extra: its only wheel on PyPI (1.14.3)
was built against numpy 1.x and fails to import beside numpy 2 (``numpy.dtype size changed``), which a fresh
install picks today. Built from source it works with numpy 2::

    pip install --no-build-isolation --no-binary xtcocotools xtcocotools

The behaviours we compare with it (OKS scale ``0.53 * w * h``, dropping all-zero-score detections) are also
checked against pycocotools on inputs rewritten to those rules (``xtcocotools_rules_via_pycocotools`` in the
COCO AP tests), so the exactness checks stay when xtcocotools cannot be imported.
"""

from __future__ import annotations

import pytest


def xtcocotools_modules():
    """``(xtcocotools.coco, xtcocotools.cocoeval)`` or a pytest skip naming why they cannot be used here."""
    try:
        import xtcocotools.coco as xc
        import xtcocotools.cocoeval as xe
    except Exception as exc:  # ImportError, or ValueError from a wheel built against another numpy ABI
        pytest.skip(
            f"xtcocotools unusable here ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            "install it with `pip install --no-build-isolation --no-binary xtcocotools xtcocotools`"
        )
    return xc, xe
