from tests.notify.conftest import memory_channels  # noqa: F401 - shared fixture
