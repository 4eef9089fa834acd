-- skiff-queue on PostgreSQL: from schema version 2 to version 3, run
-- after queue/pgschema2.sql on a new database and alone on one at
-- version 2, in the same transaction that sets skiff.meta's version.
--
-- outputs (issue 13)
-- A job's output variables, sent with complete (docs/protocol.md 4.6)
-- and shown in one job's status (5.2), not in the job list. The 9-argument
-- skiff.op_complete stays for replicas of the version before, still
-- running while the others are upgraded; the new one takes the outputs.
-- Idempotent, so that a database set back to version 2 by hand (or by a
-- test) migrates again.

ALTER TABLE skiff.jobs ADD COLUMN IF NOT EXISTS outputs jsonb NOT NULL DEFAULT '{}';

CREATE OR REPLACE FUNCTION skiff.op_job(jid text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no job ''%s''', jid));
  END IF;
  RETURN skiff.ok(200, skiff.job_json(j)
    || jsonb_build_object('outputs', j.outputs));
END $$;

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
