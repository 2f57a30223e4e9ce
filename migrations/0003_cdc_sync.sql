-- depends: 0002_leases_and_token_trust
-- Incremental refresh through Intuit's CDC endpoint (qbproxy/cdc.py explains the argument).

-- Intuit's time (the `time` of the answer the rows came from) before which the rows reflect
-- every change: the next CDC asks for changes since then, minus sync.safety_margin_seconds.
-- NULL: never loaded whole (since this migration); the next refresh is a whole load.
ALTER TABLE qbo_table_state ADD COLUMN synced_at timestamptz;
-- When the last whole-table load started (database clock). CDC refreshes in between; a
-- whole reload comes at least daily as a backstop. A CDC that lands changes also bumps
-- `generation`, so nothing keyed by generation outlives the rows it was built from.
ALTER TABLE qbo_table_state ADD COLUMN reloaded_at timestamptz;
