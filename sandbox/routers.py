"""Sends the sandbox's models to the `sandbox` database (settings: SANDBOX_DATABASE_URL)."""

SANDBOX_DATABASE = "sandbox"


class SandboxRouter:
    def db_for_read(self, model, **hints) -> str | None:
        return SANDBOX_DATABASE if model._meta.app_label == "sandbox" else None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints) -> bool | None:
        # A sandbox record never points at a shop record, nor the reverse.
        return (obj1._meta.app_label == "sandbox") == (obj2._meta.app_label == "sandbox")

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return (db == SANDBOX_DATABASE) == (app_label == "sandbox")
