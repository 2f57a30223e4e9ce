ALTER TABLE qbo_table_state DROP COLUMN reloaded_at;
ALTER TABLE qbo_table_state DROP COLUMN synced_at;
