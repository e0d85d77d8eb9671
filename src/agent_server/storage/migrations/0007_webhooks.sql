-- When an execution of a run started (its webhook's `run_started_at`).
ALTER TABLE run ADD COLUMN started_at timestamptz;

-- Webhooks to deliver (an outbox): a row is written in the transaction that ends its run, so a worker
-- that dies right after cannot lose it; any process running the queue delivers it, and deletes it once
-- delivered or given up on. A claim pushes `available_at` past a lease: the row of a deliverer that
-- died is due again then. No foreign key: a delivery outlives its run (rolled back, thread deleted).
CREATE TABLE webhook_outbox (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- sent as the Idempotency-Key
    run_id       uuid NOT NULL,
    url          text NOT NULL,
    payload      jsonb NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    available_at timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_outbox_available_at ON webhook_outbox (available_at);
