-- The columns that hold a graph's values (checkpoints and their blobs, pending writes, the store, a thread's
-- values, a run's input and output, stored stream events) compress with lz4 instead of pglz, PostgreSQL's
-- default: a value over about 2 kB is compressed as it is written, and pglz cost PostgreSQL a third of its CPU
-- per run of an agent whose history grows each turn (bench/RESULTS.md). Only the catalog changes; values already
-- stored stay as they are and read the same. A server built without lz4 (the embedded one), or one this cannot
-- alter, keeps pglz: nothing else depends on it. Each change needs its table to itself for a moment: a table busy
-- for over 2 s (a rolling deploy under load) keeps pglz too, rather than hold up the queries queued behind it.
SET LOCAL lock_timeout = '2s';
DO $$
DECLARE
    target text;
BEGIN
    FOREACH target IN ARRAY ARRAY[
        'checkpoints.checkpoint', 'checkpoint_blobs.blob', 'checkpoint_writes.blob', 'store.value',
        'thread."values"', 'thread.interrupts', 'run.kwargs', 'run.output', 'run_event.data', 'thread_event.event',
        'webhook_outbox.payload'
    ] LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %s SET COMPRESSION lz4',
                           split_part(target, '.', 1), split_part(target, '.', 2));
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'keeping pglz for %: %', target, SQLERRM;
        END;
    END LOOP;
END $$;
