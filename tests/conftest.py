pytest_plugins = ["tests.temporal_fixture", "tests.redis_fixture", "tests.postgres_fixture"]
