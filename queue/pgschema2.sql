-- skiff-queue on PostgreSQL: from schema version 1 to version 2, run
-- after queue/pgschema.sql on a new database and alone on one at
-- version 1, in the same transaction that sets skiff.meta's version.
--
-- Version 2: viewer tokens (the web view, docs/protocol.md 5.9), which
-- DELETE /v1/tokens/{id} revokes like registration tokens; the job list
-- filters by name and pages with an offset; a job's JWS for the view's
-- step timeline (GET /v1/jobs/{id}/steps).

CREATE TABLE skiff.viewer_tokens (
  id text PRIMARY KEY,
  hash bytea NOT NULL UNIQUE,
  description text NOT NULL,
  created bigint NOT NULL,
  revoked bigint);

CREATE FUNCTION skiff.op_viewer_create(tid text, th bytea, descr text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  now_s bigint := skiff.ms() / 1000;
BEGIN
  INSERT INTO skiff.viewer_tokens (id, hash, description, created)
    VALUES (tid, th, descr, now_s) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN skiff.err(409, 'conflict', 'the viewer token exists');
  END IF;
  RETURN skiff.ok(201, jsonb_build_object('id', tid, 'description', descr,
    'created', now_s));
END $$;

CREATE FUNCTION skiff.op_viewer_list() RETURNS jsonb LANGUAGE sql
STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('tokens', coalesce(
    (SELECT jsonb_agg(jsonb_build_object('id', id,
      'description', description, 'created', created, 'revoked', revoked)
      ORDER BY created, id)
     FROM (SELECT * FROM skiff.viewer_tokens ORDER BY created, id
           LIMIT 10000) t), '[]'))) $$;

CREATE FUNCTION skiff.op_viewer_auth(th bytea) RETURNS jsonb LANGUAGE sql
STABLE AS $$
  SELECT CASE WHEN EXISTS (SELECT 1 FROM skiff.viewer_tokens
      WHERE hash = th AND revoked IS NULL)
    THEN skiff.ok(200, NULL)
    ELSE skiff.err(401, 'unauthorized', 'viewer token is not valid') END $$;

CREATE FUNCTION skiff.op_job_jws(jid text) RETURNS jsonb LANGUAGE sql
STABLE AS $$
  SELECT coalesce((SELECT skiff.ok(200, jsonb_build_object('jws', jws))
    FROM skiff.jobs WHERE id = jid),
    skiff.err(404, 'not_found', format('no job ''%s''', jid))) $$;

DROP FUNCTION IF EXISTS skiff.op_jobs(text, text, int);
CREATE FUNCTION skiff.op_jobs(p text, st text, nm text, lim int, skip int)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('jobs', coalesce(
    (SELECT jsonb_agg(skiff.job_json(j) ORDER BY j.seq DESC)
     FROM (SELECT * FROM skiff.jobs
           WHERE (p IS NULL OR pool = p) AND (st IS NULL OR state = st)
             AND (nm IS NULL OR strpos(name, nm) > 0)
           ORDER BY seq DESC LIMIT lim OFFSET skip) j), '[]'))) $$;

-- Revoking a registration token revokes the agents it registered; a
-- viewer token has none.
CREATE OR REPLACE FUNCTION skiff.op_token_revoke(tid text, skew bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  aid text;
  n int := 0;
BEGIN
  UPDATE skiff.reg_tokens SET revoked = skiff.ms() / 1000
    WHERE id = tid AND revoked IS NULL;
  IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM skiff.reg_tokens
      WHERE id = tid) THEN
    UPDATE skiff.viewer_tokens SET revoked = skiff.ms() / 1000
      WHERE id = tid AND revoked IS NULL;
    IF FOUND OR EXISTS (SELECT 1 FROM skiff.viewer_tokens
        WHERE id = tid) THEN
      RETURN skiff.ok(204, jsonb_build_object('agents', 0));
    END IF;
    RETURN skiff.err(404, 'not_found', format('no token ''%s''', tid));
  END IF;
  FOR aid IN SELECT id FROM skiff.agents
      WHERE reg_token = tid AND state = 'active' ORDER BY id LOOP
    PERFORM skiff.drop_agent(aid, 'revoked', skew);
    n := n + 1;
  END LOOP;
  RETURN skiff.ok(204, jsonb_build_object('agents', n));
END $$;
