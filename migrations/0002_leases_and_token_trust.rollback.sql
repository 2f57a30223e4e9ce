DROP TABLE qbo_proxy_secret;
DROP TABLE qbo_token_trust;
ALTER TABLE qbo_table_state DROP COLUMN load_lease_owner;
ALTER TABLE qbo_table_state DROP COLUMN load_lease_until;
