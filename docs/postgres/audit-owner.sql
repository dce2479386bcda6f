-- The audit log owned by a role of its own, so that the service's role cannot erase its tracks.
--
-- A trigger refuses to delete an audit entry younger than audit_policy.min_age (90 days unless
-- changed) and another refuses every UPDATE, but a table's owner may drop its triggers, and the
-- owner of its schema may drop the table. Run this once, after `monitor migrate`, as a superuser
-- (or the role that owns the schema), connected to the service's database:
--     psql "$ADMIN_URL" -v service_role=monitor -v audit_owner=monitor_audit -f audit-owner.sql
-- The service's role keeps owning every other table, creating tables in the schema (migrations,
-- the log's daily partitions) and dropping its own; of the audit log it may append and read
-- entries and delete those past the policy's age (the history retention), and nothing more: no
-- UPDATE, no TRUNCATE, no disabling the triggers, no dropping the table, no change to the
-- policy. Migrations that alter these two tables (the release notes say so) run as a superuser.
--
-- To keep entries longer or shorter (never under a day), as the audit owner or a superuser:
--     UPDATE audit_policy SET min_age = interval '400 days';

\set ON_ERROR_STOP on

SELECT format('CREATE ROLE %I NOLOGIN', :'audit_owner')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'audit_owner') \gexec

-- the schema: owned by the audit owner, open to the service for what it creates
SELECT format('ALTER SCHEMA %I OWNER TO %I', current_schema(), :'audit_owner') \gexec
SELECT format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', current_schema(), :'service_role') \gexec

ALTER TABLE audit_log OWNER TO :"audit_owner";   -- its id sequence follows it
ALTER TABLE audit_policy OWNER TO :"audit_owner";
REVOKE ALL ON audit_log, audit_policy FROM :"service_role";
REVOKE ALL ON SEQUENCE audit_log_id_seq FROM :"service_role";
GRANT SELECT, INSERT, DELETE ON audit_log TO :"service_role";
GRANT USAGE ON SEQUENCE audit_log_id_seq TO :"service_role";
GRANT SELECT ON audit_policy TO :"service_role";
