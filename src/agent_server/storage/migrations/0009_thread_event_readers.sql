-- The threads someone follows with thread event streams (a stream opened or a command sent lately): only the
-- runs of these threads log protocol events in thread_event, so other runs write nothing per event. Pruned
-- with thread_event (by age); no foreign key, as a stream may be opened on a thread a command creates next.
CREATE TABLE thread_event_reader (
    thread_id uuid PRIMARY KEY,
    seen_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thread_event_reader_seen_at ON thread_event_reader (seen_at);
