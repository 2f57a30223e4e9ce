DROP TABLE qbo_report;
DROP TABLE qbo_report_state;
