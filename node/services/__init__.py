"""The use cases. Each changes state in one database transaction and appends its ledger
entry in that same transaction. cli/ and federation/ call these, never store/ directly."""
