-- Cron jobs: a run payload queued on a schedule, on a thread (thread_id) or each time on a new one.
-- A thread's or an assistant's crons go with it.
CREATE TABLE cron (
    cron_id          uuid PRIMARY KEY,
    assistant_id     uuid NOT NULL REFERENCES assistant ON DELETE CASCADE,
    thread_id        uuid REFERENCES thread ON DELETE CASCADE,
    user_id          text,
    schedule         text NOT NULL,
    timezone         text,
    payload          jsonb NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}',
    -- stateless crons: 'delete' (each firing's thread goes with its run) or 'keep'; NULL on a thread
    on_run_completed text,
    enabled          boolean NOT NULL DEFAULT true,
    -- metadata the threads of its firings get: its creator's (custom auth), as a run they queued would give
    owner            jsonb NOT NULL DEFAULT '{}',
    end_time         timestamptz,
    -- the next tick of the schedule; a scheduler claims the cron (FOR UPDATE SKIP LOCKED) once it is past,
    -- and moves it to the tick after its clock in the transaction that queues the run
    next_run_date    timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cron_due ON cron (next_run_date) WHERE enabled;
CREATE INDEX cron_thread ON cron (thread_id);
CREATE INDEX cron_assistant ON cron (assistant_id);
CREATE INDEX cron_metadata ON cron USING gin (metadata jsonb_path_ops);
