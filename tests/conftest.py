pytest_plugins = ["tests.temporal_fixture"]
