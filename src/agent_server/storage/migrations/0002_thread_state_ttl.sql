-- When a thread's state (values, interrupts) last changed, and the TTL it was given.

ALTER TABLE thread
    ADD COLUMN state_updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN ttl_strategy     text,
    ADD COLUMN ttl_minutes      double precision;

CREATE FUNCTION thread_state_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.state_updated_at := now();
    RETURN NEW;
END $$;

-- Whoever writes a thread's values or interrupts (a run ending, a state update) moves state_updated_at.
CREATE TRIGGER thread_state_updated BEFORE UPDATE OF "values", interrupts ON thread
    FOR EACH ROW EXECUTE FUNCTION thread_state_updated();

CREATE INDEX thread_updated_at ON thread (updated_at);
