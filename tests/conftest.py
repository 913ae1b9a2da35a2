"""For every suite: an xdist controller's side of the process-leak check (tests/leaks.py).

Nothing here arms the check: tests/unit's and tests/console's conftests do, in the
process that runs their tests; this reports what their xdist workers found.
"""

from tests.leaks import pytest_sessionfinish, pytest_testnodedown  # noqa: F401
