"""The usage ledger: one record per request, journaled locally, batch-written to a store; reports over it."""
