"""Contract tests for Tessera's drivers, one class per kind, for pytest.

A driver (built in or third party) proves it keeps its kind's contract by subclassing the
class and providing the fixtures its docstring names::

    from kernel.testing import StorageBackendContract

    class TestMyBackend(StorageBackendContract):
        @pytest.fixture
        def storage_backend(self, tessera):
            return MyBackend(tessera)

The classes need ``pytest`` and ``pytest-asyncio`` (with ``asyncio_mode = "auto"``):
``pip install 'tessera[testing]'``. Nothing in the kernel imports this package, so a
deployment never needs pytest.
"""

from kernel.testing.event_bus import EventBusContract
from kernel.testing.field_type import FieldTypeContract
from kernel.testing.storage import StorageBackendContract
from kernel.testing.transport import TransportContract

__all__ = [
    "EventBusContract",
    "FieldTypeContract",
    "StorageBackendContract",
    "TransportContract",
]
