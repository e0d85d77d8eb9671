-- Events of runs created with stream_resumable=true, kept for a bounded time so that a client
-- that reconnects (Last-Event-ID) gets every event it missed. No foreign key: they outlive
-- temporary threads and are pruned by age.
CREATE TABLE run_event (
    run_id     uuid NOT NULL,
    seq        integer NOT NULL,
    event      text NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_event_created_at ON run_event (created_at);
