from tests.unit.audit.audit_helpers import writer  # noqa: F401  (the fixture)
