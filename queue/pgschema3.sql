-- skiff-queue on PostgreSQL: from schema version 2 to version 3, run
-- after queue/pgschema2.sql on a new database and alone on one at
-- version 2, in the same transaction that sets skiff.meta's version.
--
-- outputs (issue 13)
-- A job's output variables, sent with complete (docs/protocol.md 4.6)
-- and shown in a job's status (5.2), not in the job list. The 9-argument
-- skiff.op_complete stays for replicas of the version before, still
-- running while the others are upgraded; the new one takes the outputs.
-- Idempotent, so that a database set back to version 2 by hand (or by a
-- test) migrates again.

ALTER TABLE skiff.jobs ADD COLUMN IF NOT EXISTS outputs jsonb NOT NULL DEFAULT '{}';

-- Every status of one job has them (GET /v1/jobs/{id}, the answers of
-- submit and cancel), as on SQLite; the list leaves them out.
CREATE OR REPLACE FUNCTION skiff.job_json(j skiff.jobs) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', j.id, 'name', j.name, 'pool', j.pool,
    'labels', to_jsonb(j.labels), 'state', j.state,
    'attempt', j.attempt, 'max_attempts', j.max_attempts,
    'agent', j.agent, 'created', j.created, 'leased', j.leased,
    'completed', j.completed, 'exp', j.exp,
    'cancel_requested', j.cancel_requested,
    'cancel_reason', j.cancel_reason, 'result', j.result,
    'exit_codes', j.exit_codes, 'reason_code', j.reason_code,
    'reason', j.reason, 'log_length', skiff.log_length(j.id, j.attempt),
    'outputs', j.outputs) $$;

CREATE OR REPLACE FUNCTION skiff.op_jobs(p text, st text, nm text, lim int,
  skip int)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('jobs', coalesce(
    (SELECT jsonb_agg(skiff.job_json(j) - 'outputs' ORDER BY j.seq DESC)
     FROM (SELECT * FROM skiff.jobs
           WHERE (p IS NULL OR pool = p) AND (st IS NULL OR state = st)
             AND (nm IS NULL OR strpos(name, nm) > 0)
           ORDER BY seq DESC LIMIT lim OFFSET skip) j), '[]'))) $$;

CREATE OR REPLACE FUNCTION skiff.op_complete(h bytea, seen_every int, lid text,
  res text, codes jsonb, rcode text, rsn text, loglen bigint, ttl_ms bigint,
  outs jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  was text;
  ans jsonb;
BEGIN
  SELECT state INTO was FROM skiff.leases WHERE id = lid;
  ans := skiff.op_complete(h, seen_every, lid, res, codes, rcode, rsn,
    loglen, ttl_ms);
  -- Only the complete that ended the lease sets them: a repeated one
  -- answers the stored result and changes nothing.
  IF was = 'active' AND (ans->>'s')::int = 200 AND outs IS NOT NULL THEN
    UPDATE skiff.jobs SET outputs = outs
      WHERE id = (SELECT job FROM skiff.leases
                  WHERE id = lid AND state = 'completed');
  END IF;
  RETURN ans;
END $$;
