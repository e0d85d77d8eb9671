-- The queue's housekeeping looks for leftover threads of stateless runs every few seconds:
-- without this index that is a scan of every thread.
CREATE INDEX thread_ephemeral ON thread (thread_id) WHERE ephemeral;
