-- The event log of thread event streams (POST /threads/{id}/stream/events): the protocol events of the
-- runs started through /threads/{id}/commands, numbered per thread so that a client reconnecting with the
-- last number it saw (`since`) gets everything after it, from any API process. No foreign key: pruned by age.
CREATE TABLE thread_event (
    thread_id  uuid NOT NULL,
    seq        bigint NOT NULL,
    run_id     uuid NOT NULL,
    event      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, seq)
);
CREATE INDEX thread_event_created_at ON thread_event (created_at);
