-- Resources of the Agent Server API. Checkpoints and the store have their own tables
-- (langgraph-checkpoint-postgres migrates them).

CREATE TABLE assistant (
    assistant_id uuid PRIMARY KEY,
    graph_id     text NOT NULL,
    name         text NOT NULL,
    description  text,
    config       jsonb NOT NULL DEFAULT '{}',
    context      jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assistant_graph_id ON assistant (graph_id);
CREATE INDEX assistant_metadata ON assistant USING gin (metadata jsonb_path_ops);

CREATE TABLE assistant_version (
    assistant_id uuid NOT NULL REFERENCES assistant ON DELETE CASCADE,
    version      integer NOT NULL,
    graph_id     text NOT NULL,
    name         text NOT NULL,
    description  text,
    config       jsonb NOT NULL DEFAULT '{}',
    context      jsonb NOT NULL DEFAULT '{}',
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (assistant_id, version)
);

CREATE TABLE thread (
    thread_id     uuid PRIMARY KEY,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    metadata      jsonb NOT NULL DEFAULT '{}',
    config        jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'idle',
    "values"      jsonb,
    interrupts    jsonb NOT NULL DEFAULT '{}',
    error         jsonb,
    -- The one run executing on this thread; claims take the thread row lock, so two workers
    -- can never both start a run on one thread.
    active_run_id uuid,
    -- Threads made for stateless runs are deleted with their run unless on_completion=keep.
    ephemeral     boolean NOT NULL DEFAULT false,
    expires_at    timestamptz
);
CREATE INDEX thread_metadata ON thread USING gin (metadata jsonb_path_ops);
CREATE INDEX thread_created_at ON thread (created_at);
CREATE INDEX thread_expires_at ON thread (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE run (
    run_id             uuid PRIMARY KEY,
    thread_id          uuid NOT NULL REFERENCES thread ON DELETE CASCADE,
    assistant_id       uuid NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    status             text NOT NULL DEFAULT 'pending',
    metadata           jsonb NOT NULL DEFAULT '{}',
    kwargs             jsonb NOT NULL DEFAULT '{}',
    multitask_strategy text NOT NULL DEFAULT 'reject',
    -- queue bookkeeping
    available_at       timestamptz NOT NULL DEFAULT now(),
    attempt            integer NOT NULL DEFAULT 0,
    lease_owner        text,
    lease_expires_at   timestamptz,
    -- what the run ended with, for /wait and /join after the thread moved on or was deleted
    output             jsonb
);
CREATE INDEX run_thread ON run (thread_id, created_at);
CREATE INDEX run_pending ON run (available_at, created_at) WHERE status = 'pending';
CREATE INDEX run_running_lease ON run (lease_expires_at) WHERE status = 'running';

-- A cancel asked of a running run: the worker executing it sees this at its next heartbeat even
-- when the broker's signal was lost. 'interrupt' or 'rollback'.
ALTER TABLE run ADD COLUMN cancel_action text;
