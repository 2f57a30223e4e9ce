-- depends: 0001_cache_tables
-- Cross-instance single flight and token trust: several proxies share one Postgres, and
-- state that decides what is served lives here, not in process memory (design.md).

-- A whole-table load holds the lease; others wait for the table to become complete.
-- Renewed per page, so a crashed loader's lease simply runs out.
ALTER TABLE qbo_table_state ADD COLUMN load_lease_until timestamptz;
ALTER TABLE qbo_table_state ADD COLUMN load_lease_owner text;

-- Bearer tokens Intuit accepted for a realm, as keyed hashes (HMAC-SHA256 with the secret
-- below): never the token itself (design.md, promise 4).
CREATE TABLE qbo_token_trust (
    realm_id    text        NOT NULL,
    fingerprint bytea       NOT NULL,
    accepted_at timestamptz NOT NULL,
    PRIMARY KEY (realm_id, fingerprint)
);

-- One random key shared by every instance, so their fingerprints agree.
CREATE TABLE qbo_proxy_secret (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret bytea   NOT NULL
);
