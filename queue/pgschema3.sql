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

-- caches (issue 13)
--
-- Caches that outlive the VM (docs/protocol.md 4.9). Saving one is an
-- upload (the PUT, resume and commit functions of version 1) whose job is
-- 'cache:' || pool, which no job id can be (ids have no ':'), attempt 0
-- and the key as name: UNIQUE (job, attempt, name) keeps one upload per
-- key and pool, and neither the job's artifacts nor retention see it. Its
-- commit (a trigger) makes the cache and evicts the pool's least recently
-- used past the cap the creating replica named. last_used is strictly
-- increasing within a pool (milliseconds, bumped past the newest), so
-- that the order of uses is exact. The committed upload row stays (a
-- retried commit answers as before) and goes with its cache.
-- Idempotent, like the outputs above.

CREATE TABLE IF NOT EXISTS skiff.caches (
  id text PRIMARY KEY,
  pool text NOT NULL,
  key text NOT NULL,
  size bigint NOT NULL,
  sha256 text NOT NULL,
  created bigint NOT NULL,
  last_used bigint NOT NULL,
  UNIQUE (pool, key));
CREATE INDEX IF NOT EXISTS caches_lru ON skiff.caches (pool, last_used);

-- The pool cap each cache upload is to be committed under.
CREATE TABLE IF NOT EXISTS skiff.cache_uploads (
  id text PRIMARY KEY,
  pool text NOT NULL,
  max_pool bigint NOT NULL);

CREATE OR REPLACE FUNCTION skiff.cache_next_use(p text) RETURNS bigint
LANGUAGE sql AS $$
  SELECT greatest(skiff.ms(),
    coalesce((SELECT max(last_used) + 1 FROM skiff.caches WHERE pool = p), 0))
$$;

CREATE OR REPLACE FUNCTION skiff.cache_drop(cid text) RETURNS void
LANGUAGE sql AS $$
  DELETE FROM skiff.upload_chunks WHERE upload = cid;
  DELETE FROM skiff.uploads WHERE id = cid;
  DELETE FROM skiff.caches WHERE id = cid;
$$;

CREATE OR REPLACE FUNCTION skiff.op_cache_create(h bytea, seen_every int,
  lid text, k text, sz bigint, ttl_ms bigint, max_cache bigint,
  max_pool bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  e jsonb;
  u skiff.uploads;
  cj text;
  other skiff.leases;
  gone text[];
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  -- One creator at a time per pool: the checks below then hold.
  PERFORM pg_advisory_xact_lock(hashtext('skiff.caches:' || a.pool));
  IF EXISTS (SELECT 1 FROM skiff.caches WHERE pool = a.pool AND key = k) THEN
    RETURN skiff.ok(200, jsonb_build_object('exists', true, 'key', k));
  END IF;
  cj := 'cache:' || a.pool;
  -- The pool's cache uploads whose lease ended uncommitted go (a job that
  -- failed or was lost mid-upload), so that their bytes do not stay; also
  -- those whose lease retention has deleted.
  SELECT coalesce(array_agg(x.id), '{}') INTO gone FROM (
    SELECT u2.id FROM skiff.uploads u2
      LEFT JOIN skiff.leases l ON l.id = u2.lease
    WHERE u2.job = cj AND u2.state <> 'committed' AND u2.lease <> lid
      AND (l.id IS NULL OR l.state <> 'active') LIMIT 64) x;
  DELETE FROM skiff.upload_chunks WHERE upload = ANY (gone);
  DELETE FROM skiff.uploads WHERE id = ANY (gone);
  DELETE FROM skiff.cache_uploads WHERE id = ANY (gone);
  SELECT * INTO u FROM skiff.uploads WHERE job = cj AND attempt = 0
    AND name = k FOR UPDATE;
  IF FOUND AND u.lease = lid THEN
    -- This lease again (a retry): its upload and offset.
    IF u.size <> sz THEN
      RETURN skiff.err(409, 'conflict', format('cache ''%s'' is being saved '
        'with size %s', k, u.size));
    END IF;
    RETURN skiff.ok(200, skiff.upload_answer(u));
  END IF;
  IF FOUND THEN
    SELECT * INTO other FROM skiff.leases WHERE id = u.lease;
    IF FOUND AND other.state = 'active' THEN
      -- Another job saves the same key right now: it wins.
      RETURN skiff.ok(200, jsonb_build_object('exists', true, 'key', k,
        'saving', true));
    END IF;
    -- Left by a lease that ended: it never will be committed.
    DELETE FROM skiff.upload_chunks WHERE upload = u.id;
    DELETE FROM skiff.uploads WHERE id = u.id;
    DELETE FROM skiff.cache_uploads WHERE id = u.id;
  END IF;
  -- An agent saves its job's caches one after the other: more open at
  -- once is an agent filling the disk past every cap (JOB_MAX_CACHES).
  IF (SELECT count(*) FROM skiff.uploads WHERE job = cj AND lease = lid
      AND state <> 'committed') >= 4 THEN
    RETURN skiff.err(409, 'conflict', 'the lease already has 4 caches '
      'being saved');
  END IF;
  IF sz > max_cache THEN
    RETURN skiff.err(413, 'too_large', format('cache of %s bytes is over the '
      'per-cache cap', sz)) || jsonb_build_object('limit', max_cache);
  END IF;
  IF sz > max_pool THEN
    RETURN skiff.err(413, 'too_large', format('cache of %s bytes is over the '
      'pool''s cap', sz)) || jsonb_build_object('limit', max_pool);
  END IF;
  INSERT INTO skiff.uploads (id, job, attempt, lease, name, size, state,
    created, digest)
    VALUES (skiff.rand_id('upl_'), cj, 0, lid, k, sz, 'open',
    skiff.ms() / 1000,
    CASE WHEN sz = 0 THEN encode(sha256(''::bytea), 'hex') END)
    RETURNING * INTO u;
  INSERT INTO skiff.cache_uploads VALUES (u.id, a.pool, max_pool);
  RETURN skiff.ok(201, skiff.upload_answer(u));
END $$;

CREATE OR REPLACE FUNCTION skiff.cache_committed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  cu skiff.cache_uploads;
  total bigint;
  lru skiff.caches;
BEGIN
  SELECT * INTO cu FROM skiff.cache_uploads WHERE id = NEW.id;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  DELETE FROM skiff.cache_uploads WHERE id = NEW.id;
  PERFORM pg_advisory_xact_lock(hashtext('skiff.caches:' || cu.pool));
  INSERT INTO skiff.caches (id, pool, key, size, sha256, created, last_used)
    VALUES (NEW.id, cu.pool, NEW.name, NEW.size, NEW.sha256, skiff.ms(),
    skiff.cache_next_use(cu.pool))
    ON CONFLICT DO NOTHING;
  FOR i IN 1 .. 1000 LOOP
    SELECT coalesce(sum(size), 0) INTO total FROM skiff.caches
      WHERE pool = cu.pool;
    EXIT WHEN total <= cu.max_pool;
    SELECT * INTO lru FROM skiff.caches WHERE pool = cu.pool
      ORDER BY last_used, id LIMIT 1;
    EXIT WHEN NOT FOUND OR lru.id = NEW.id;
    PERFORM skiff.cache_drop(lru.id);
  END LOOP;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS cache_committed ON skiff.uploads;
CREATE TRIGGER cache_committed AFTER UPDATE OF state ON skiff.uploads
  FOR EACH ROW WHEN (NEW.state = 'committed' AND OLD.state <> 'committed'
    AND NEW.job LIKE 'cache:%')
  EXECUTE FUNCTION skiff.cache_committed();

CREATE OR REPLACE FUNCTION skiff.op_cache_find(h bytea, seen_every int, lid text,
  k text, rks text[], ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  e jsonb;
  c skiff.caches;
  rk text;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO c FROM skiff.caches WHERE pool = a.pool AND key = k;
  IF NOT FOUND THEN
    FOREACH rk IN ARRAY coalesce(rks, '{}'::text[]) LOOP
      SELECT * INTO c FROM skiff.caches WHERE pool = a.pool
        AND left(key, length(rk)) = rk ORDER BY created DESC, id DESC LIMIT 1;
      EXIT WHEN FOUND;
    END LOOP;
  END IF;
  IF c.id IS NULL THEN
    RETURN skiff.ok(200, jsonb_build_object('cache', NULL));
  END IF;
  UPDATE skiff.caches SET last_used = skiff.cache_next_use(a.pool)
    WHERE id = c.id;
  RETURN skiff.ok(200, jsonb_build_object('cache', c.id, 'key', c.key,
    'size', c.size, 'sha256', c.sha256));
END $$;

-- A download answers like an artifact's (op_art_open); another pool's
-- cache is 403, as a 404 on a lease-scoped path reads as the lease gone.
CREATE OR REPLACE FUNCTION skiff.op_cache_open(h bytea, seen_every int, lid text,
  cid text, ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  e jsonb;
  c skiff.caches;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO c FROM skiff.caches WHERE id = cid AND pool = a.pool;
  IF NOT FOUND THEN
    RETURN skiff.err(403, 'forbidden', format('no cache ''%s'' in this pool',
      cid));
  END IF;
  RETURN skiff.ok(200, jsonb_build_object('upload', c.id, 'size', c.size,
    'sha256', c.sha256));
END $$;

CREATE OR REPLACE FUNCTION skiff.op_caches_list(p text, max_pool bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('pool', p,
    'bytes', (SELECT coalesce(sum(size), 0) FROM skiff.caches WHERE pool = p),
    'limit', max_pool,
    'caches', coalesce((SELECT jsonb_agg(jsonb_build_object('id', id,
      'key', key, 'size', size, 'sha256', sha256, 'created', created / 1000,
      'last_used', last_used / 1000) ORDER BY last_used DESC)
      FROM (SELECT * FROM skiff.caches WHERE pool = p
            ORDER BY last_used DESC LIMIT 10000) t), '[]'))) $$;

CREATE OR REPLACE FUNCTION skiff.op_cache_delete(p text, cid text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM skiff.caches WHERE id = cid AND pool = p) THEN
    RETURN skiff.err(404, 'not_found', format('pool ''%s'' has no cache '
      '''%s''', p, cid));
  END IF;
  PERFORM skiff.cache_drop(cid);
  RETURN skiff.ok(204, NULL);
END $$;

-- /metrics: skiff_stored_bytes gains kind "caches"; a cache's upload (and
-- the bytes of one being saved) no longer counts as an artifact's. The
-- function of version 1 with those two changes.
CREATE OR REPLACE FUNCTION skiff.op_stats(lease_wait bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object(
    'pools', coalesce((SELECT jsonb_object_agg(pool, s) FROM (
      SELECT pool, jsonb_build_object(
        'queued', count(*) FILTER (WHERE state = 'queued'),
        'leased', count(*) FILTER (WHERE state IN ('leased', 'running'))) s
      FROM skiff.jobs WHERE state IN ('queued', 'leased', 'running')
      GROUP BY pool) x), '{}'),
    'counters', coalesce((SELECT jsonb_agg(jsonb_build_array(pool, key, n))
      FROM skiff.counters), '[]'),
    'agents', coalesce((SELECT jsonb_object_agg(pool, jsonb_build_object(
        'busy', busy, 'idle', idle)) FROM (
      SELECT pool, count(*) FILTER (WHERE b) busy,
        count(*) FILTER (WHERE NOT b AND
          last_seen >= skiff.ms() / 1000 - 3 * lease_wait) idle
      FROM (SELECT a.pool, a.last_seen, EXISTS (SELECT 1 FROM skiff.leases l
          WHERE l.agent = a.id AND l.state = 'active') b
        FROM skiff.agents a WHERE a.state = 'active') y
      GROUP BY pool) x), '{}'),
    'log_bytes', (SELECT coalesce(sum(length), 0) FROM skiff.logs),
    'artifact_bytes', (SELECT coalesce(sum(received), 0) FROM skiff.uploads
      WHERE job NOT LIKE 'cache:%'),
    'cache_bytes', (SELECT coalesce(sum(size), 0) FROM skiff.caches))) $$;
