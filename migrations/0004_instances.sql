-- depends: 0002_leases_and_token_trust
-- Instances keeping answers in memory: each acknowledges every purge it has applied, and
-- a write waits for the acknowledgements before it answers (design.md, promise 2).

CREATE SEQUENCE qbo_purge_seq;

CREATE TABLE qbo_instances (
    id        text        PRIMARY KEY,
    -- Written every second on the instance's LISTEN connection; an instance whose
    -- heartbeat is old is not waited for (and stops serving from memory by itself).
    heartbeat timestamptz NOT NULL,
    -- The highest purge sequence number this instance has applied to its memory.
    acked_seq bigint      NOT NULL
);
