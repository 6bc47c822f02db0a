"""The fake `tablestore.OTSClient` bench swaps in: tests/support/ots.py's, under the name the
cold-start child imports (`bench.fakes.FakeOTSClient`)."""

from tests.support.ots import FakeOTSClient

__all__ = ["FakeOTSClient"]
