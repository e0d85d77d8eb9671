-- Failed executions of a run (lost leases, our database failing under it), counted apart from
-- `attempt` (every claim) so that graceful hand-backs on shutdown never end a healthy run.
ALTER TABLE run ADD COLUMN failures integer NOT NULL DEFAULT 0;

-- At most one running run per thread, whatever the code above this does.
CREATE UNIQUE INDEX run_one_running_per_thread ON run (thread_id) WHERE status = 'running';
