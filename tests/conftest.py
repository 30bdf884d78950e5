pytest_plugins = ["tests.fixtures.gogs", "tests.fixtures.postgres"]
