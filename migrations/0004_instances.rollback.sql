DROP TABLE qbo_instances;
DROP SEQUENCE qbo_purge_seq;
