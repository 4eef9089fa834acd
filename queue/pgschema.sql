-- skiff-queue on PostgreSQL: schema version 1 (docs/queue.md, "The
-- PostgreSQL store"); queue/pgschema2.sql is run after it and takes the
-- schema to version 2.
--
-- Every operation of the queue is one function call, so that any replica
-- answers any request in one round trip and each operation is one
-- transaction. Functions never raise for bad input: they answer
--   {"s": status, "b": body}                  success
--   {"s": status, "code": c, "msg": m, ...}   error (docs/protocol.md 1)
-- so that an error never aborts the other log appends of a group commit.
--
-- Times: unix seconds in the API columns, milliseconds from the
-- database's clock (skiff.ms()) for deadlines, so that replicas with
-- skewed clocks still agree. Replicas learn of changes by NOTIFY:
--   skiff_pool  payload: pool   a job may be leasable there
--   skiff_log   payload: job    bytes appended, or the attempt changed
--   skiff_agent payload: agent  deregistered or revoked
-- Lock order, to keep clear of deadlocks: agent, lease, job, log.

CREATE SCHEMA skiff;

CREATE TABLE skiff.jobs (
  seq bigserial PRIMARY KEY,
  id text NOT NULL UNIQUE,
  pool text NOT NULL,
  name text NOT NULL,
  labels text[] NOT NULL,
  jws text NOT NULL,
  exp bigint NOT NULL,
  state text NOT NULL,
  attempt int NOT NULL,
  max_attempts int NOT NULL,
  agent text,
  created bigint NOT NULL,
  leased bigint,
  completed bigint,
  cancel_requested boolean NOT NULL DEFAULT false,
  cancel_reason text,
  result text,
  exit_codes jsonb NOT NULL DEFAULT '[]',
  reason_code text,
  reason text,
  excluded text[] NOT NULL DEFAULT '{}',
  queued_ms bigint NOT NULL);
CREATE INDEX jobs_queued ON skiff.jobs (pool, seq) WHERE state = 'queued';
CREATE INDEX jobs_queued_exp ON skiff.jobs (exp) WHERE state = 'queued';
CREATE INDEX jobs_pool ON skiff.jobs (pool, seq);
CREATE INDEX jobs_state ON skiff.jobs (state, seq);
CREATE INDEX jobs_completed ON skiff.jobs (completed)
  WHERE completed IS NOT NULL;

CREATE TABLE skiff.leases (
  id text PRIMARY KEY,
  job text NOT NULL,
  attempt int NOT NULL,
  agent text NOT NULL,
  created bigint NOT NULL,
  acked boolean NOT NULL DEFAULT false,
  state text NOT NULL,
  ended bigint,
  deadline_ms bigint NOT NULL);
CREATE INDEX leases_due ON skiff.leases (deadline_ms) WHERE state = 'active';
CREATE INDEX leases_agent ON skiff.leases (agent) WHERE state = 'active';
CREATE INDEX leases_job ON skiff.leases (job);

CREATE TABLE skiff.agents (
  id text PRIMARY KEY,
  token_hash bytea NOT NULL UNIQUE,
  name text NOT NULL,
  pool text NOT NULL,
  labels text[] NOT NULL,
  capacity int NOT NULL,
  version text NOT NULL,
  registered bigint NOT NULL,
  last_seen bigint NOT NULL,
  state text NOT NULL,
  reg_token text NOT NULL);
CREATE INDEX agents_reg_token ON skiff.agents (reg_token);
CREATE INDEX agents_pool ON skiff.agents (pool, registered);

CREATE TABLE skiff.reg_tokens (
  id text PRIMARY KEY,
  pool text NOT NULL,
  hash bytea NOT NULL UNIQUE,
  description text NOT NULL,
  created bigint NOT NULL,
  revoked bigint);
CREATE INDEX reg_tokens_pool ON skiff.reg_tokens (pool);

-- One row per attempt that has a log; its bytes are chunk rows, each
-- starting at the length before it was appended.
CREATE TABLE skiff.logs (
  job text NOT NULL,
  attempt int NOT NULL,
  length bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (job, attempt));
-- A follow (GET .../log?wait=S) some replica holds, until until_ms:
-- appends notify skiff_log only for jobs that have one.
CREATE TABLE skiff.follows (
  id text PRIMARY KEY,
  job text NOT NULL,
  until_ms bigint NOT NULL);
CREATE INDEX follows_job ON skiff.follows (job);
CREATE INDEX follows_until ON skiff.follows (until_ms);
CREATE TABLE skiff.log_chunks (
  job text NOT NULL,
  attempt int NOT NULL,
  off bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (job, attempt, off));

-- received is the upload's offset; sha_state the running SHA-256 state
-- (libsodium's crypto_hash_sha256_state) over those bytes, so that any
-- replica goes on with the next PUT; digest is set once received = size.
CREATE TABLE skiff.uploads (
  id text PRIMARY KEY,
  job text NOT NULL,
  attempt int NOT NULL,
  lease text NOT NULL,
  name text NOT NULL,
  size bigint NOT NULL,
  state text NOT NULL,
  sha256 text,
  created bigint NOT NULL,
  received bigint NOT NULL DEFAULT 0,
  sha_state bytea,
  digest text,
  UNIQUE (job, attempt, name));
CREATE TABLE skiff.upload_chunks (
  upload text NOT NULL,
  off bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (upload, off));
-- Logs compress well and lz4 is cheap; artifacts are mostly compressed
-- already: no second compression.
ALTER TABLE skiff.log_chunks ALTER COLUMN data SET COMPRESSION lz4;
ALTER TABLE skiff.upload_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Counters of /metrics that must count once whichever replica acted.
CREATE TABLE skiff.counters (
  pool text NOT NULL,
  key text NOT NULL,
  n bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (pool, key));

-- ---- helpers ----

CREATE FUNCTION skiff.ms() RETURNS bigint LANGUAGE sql VOLATILE AS $$
  SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

CREATE FUNCTION skiff.rand_id(prefix text) RETURNS text LANGUAGE sql
VOLATILE AS $$
  SELECT prefix || replace(gen_random_uuid()::text, '-', '') $$;

CREATE FUNCTION skiff.ok(s int, b jsonb) RETURNS jsonb LANGUAGE sql
IMMUTABLE AS $$ SELECT jsonb_build_object('s', s, 'b', b) $$;

CREATE FUNCTION skiff.err(s int, code text, msg text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('s', s, 'code', code, 'msg', msg) $$;

CREATE FUNCTION skiff.unauthorized() RETURNS jsonb LANGUAGE sql IMMUTABLE
AS $$ SELECT skiff.err(401, 'unauthorized',
  'agent token is unknown, revoked or deregistered') $$;

CREATE FUNCTION skiff.bump(p text, k text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO skiff.counters (pool, key, n) VALUES (p, k, 1)
  ON CONFLICT (pool, key) DO UPDATE SET n = skiff.counters.n + 1 $$;

CREATE FUNCTION skiff.log_length(j text, a int) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT length FROM skiff.logs
    WHERE job = j AND attempt = a), 0) $$;

CREATE FUNCTION skiff.job_json(j skiff.jobs) RETURNS jsonb LANGUAGE sql
STABLE AS $$
  SELECT jsonb_build_object(
    'id', j.id, 'name', j.name, 'pool', j.pool,
    'labels', to_jsonb(j.labels), 'state', j.state,
    'attempt', j.attempt, 'max_attempts', j.max_attempts,
    'agent', j.agent, 'created', j.created, 'leased', j.leased,
    'completed', j.completed, 'exp', j.exp,
    'cancel_requested', j.cancel_requested,
    'cancel_reason', j.cancel_reason, 'result', j.result,
    'exit_codes', j.exit_codes, 'reason_code', j.reason_code,
    'reason', j.reason, 'log_length', skiff.log_length(j.id, j.attempt)) $$;

-- The agent holding token hash h, or a row of NULLs. last_seen is
-- written at most every seen_every seconds.
CREATE FUNCTION skiff.auth(h bytea, seen_every int) RETURNS skiff.agents
LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents;
  now_s bigint := skiff.ms() / 1000;
BEGIN
  SELECT * INTO a FROM skiff.agents WHERE token_hash = h AND state = 'active';
  IF FOUND AND a.last_seen <= now_s - seen_every THEN
    UPDATE skiff.agents SET last_seen = now_s WHERE id = a.id;
    a.last_seen := now_s;
  END IF;
  RETURN a;
END $$;

-- Ends a job without a result from an agent (or with one: complete).
CREATE FUNCTION skiff.end_job(jid text, st text, code text, why text,
  codes jsonb DEFAULT '[]') RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  p text;
BEGIN
  UPDATE skiff.jobs SET state = st, completed = skiff.ms() / 1000,
    result = st, exit_codes = codes, reason_code = code, reason = why
    WHERE id = jid RETURNING pool INTO p;
  PERFORM skiff.bump(p, 'completed_' || st);
  PERFORM pg_notify('skiff_log', jid);
END $$;

-- NULL when lid is the caller's active lease (locked, and acknowledged
-- by this request if it was not yet: any lease-scoped request
-- acknowledges); otherwise the error: unknown (404), another agent's
-- (403) or ended (410).
CREATE FUNCTION skiff.lease_check(a skiff.agents, lid text, ttl_ms bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  l skiff.leases;
BEGIN
  SELECT * INTO l FROM skiff.leases WHERE id = lid FOR UPDATE;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no lease ''%s''', lid));
  ELSIF l.agent <> a.id THEN
    RETURN skiff.err(403, 'forbidden',
      format('lease ''%s'' belongs to another agent', lid));
  ELSIF l.state <> 'active' THEN
    RETURN skiff.err(410, 'lease_lost',
      format('lease ''%s'' has ended (%s)', lid, l.state));
  ELSIF NOT l.acked THEN
    UPDATE skiff.leases SET acked = true, deadline_ms = skiff.ms() + ttl_ms
      WHERE id = lid;
    UPDATE skiff.jobs SET state = 'running',
      excluded = CASE WHEN a.id = ANY (excluded) THEN excluded
                 ELSE excluded || a.id END
      WHERE id = l.job;
  END IF;
  RETURN NULL;
END $$;

-- Hands job j (locked by the caller) to agent a.
CREATE FUNCTION skiff.hand_out(j skiff.jobs, a skiff.agents, ack_ms bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  lid text := skiff.rand_id('lse_');
  now_ms bigint := skiff.ms();
BEGIN
  UPDATE skiff.jobs SET state = 'leased', agent = a.id,
    leased = now_ms / 1000 WHERE seq = j.seq;
  INSERT INTO skiff.leases (id, job, attempt, agent, created, state,
    deadline_ms) VALUES (lid, j.id, j.attempt, a.id, now_ms / 1000,
    'active', now_ms + ack_ms);
  RETURN jsonb_build_object('lease', lid, 'job', j.id, 'attempt', j.attempt,
    'jws', j.jws, 'pickup_ms', now_ms - j.queued_ms, 'agent', a.id,
    'pool', j.pool);
END $$;

CREATE FUNCTION skiff.has_room(a skiff.agents) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT (SELECT count(*) FROM skiff.leases
    WHERE agent = a.id AND state = 'active') < a.capacity $$;

-- The oldest queued job agent a can take, leased to it; NULL when none.
-- The agent row is locked first, so that two polls of one agent on two
-- replicas never pass its capacity.
CREATE FUNCTION skiff.take(a skiff.agents, ack_ms bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
BEGIN
  PERFORM 1 FROM skiff.agents WHERE id = a.id FOR UPDATE;
  IF NOT skiff.has_room(a) THEN
    RETURN NULL;
  END IF;
  SELECT * INTO j FROM skiff.jobs
    WHERE pool = a.pool AND state = 'queued' AND labels <@ a.labels
      AND NOT (a.id = ANY (excluded))
    ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN skiff.hand_out(j, a, ack_ms);
END $$;

-- What becomes of the job when lease l ends without a result (kind
-- 'ack': never acknowledged, the same attempt again; 'ttl': the attempt
-- counts). The caller holds the lease row locked.
CREATE FUNCTION skiff.expire(l skiff.leases, kind text, skew bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  nxt text;
  att int;
  now_ms bigint := skiff.ms();
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = l.job FOR UPDATE;
  UPDATE skiff.leases SET state = 'expired', ended = now_ms / 1000
    WHERE id = l.id;
  PERFORM skiff.bump(j.pool, 'expired_' || kind);
  -- The agent has a free slot: its held polls may take another job.
  PERFORM pg_notify('skiff_pool', j.pool);
  IF j.state NOT IN ('leased', 'running') OR j.attempt <> l.attempt THEN
    RETURN;
  END IF;
  att := j.attempt;
  IF j.cancel_requested THEN
    nxt := 'canceled';
  ELSIF kind = 'ttl' AND j.attempt >= j.max_attempts THEN
    nxt := 'lost';
  ELSE
    IF kind = 'ttl' THEN
      att := att + 1;
    END IF;
    nxt := CASE WHEN now_ms / 1000 >= j.exp + skew THEN 'expired'
           ELSE 'queued' END;
  END IF;
  IF nxt = 'queued' THEN
    UPDATE skiff.jobs SET state = 'queued', agent = NULL, attempt = att,
      queued_ms = now_ms WHERE id = j.id;
    PERFORM pg_notify('skiff_log', j.id);
  ELSE
    PERFORM skiff.end_job(j.id, nxt, nxt, CASE nxt
      WHEN 'canceled' THEN
        'canceled; the lease ended before the agent completed the job'
      WHEN 'lost' THEN 'every attempt''s lease expired'
      ELSE 'exp passed while the job was waiting for a new lease' END);
  END IF;
END $$;

-- An agent leaves (deregistered) or is revoked: its leases go back at
-- once, and every replica wakes its held polls.
CREATE FUNCTION skiff.drop_agent(aid text, st text, skew bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  l skiff.leases;
BEGIN
  UPDATE skiff.agents SET state = st WHERE id = aid AND state = 'active';
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  FOR l IN SELECT * FROM skiff.leases WHERE agent = aid AND state = 'active'
      ORDER BY id FOR UPDATE LOOP
    PERFORM skiff.expire(l, CASE WHEN l.acked THEN 'ttl' ELSE 'ack' END,
      skew);
  END LOOP;
  PERFORM pg_notify('skiff_agent', aid);
  RETURN true;
END $$;

-- ---- agent operations (docs/protocol.md section 4) ----

CREATE FUNCTION skiff.op_register(rh bytea, aid text, ah bytea, nm text,
  lbls text[], cap int, ver text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  t skiff.reg_tokens;
  now_s bigint := skiff.ms() / 1000;
BEGIN
  SELECT * INTO t FROM skiff.reg_tokens WHERE hash = rh;
  IF NOT FOUND OR t.revoked IS NOT NULL THEN
    RETURN skiff.err(401, 'unauthorized',
      'registration token is unknown or revoked');
  END IF;
  INSERT INTO skiff.agents (id, token_hash, name, pool, labels, capacity,
    version, registered, last_seen, state, reg_token)
    VALUES (aid, ah, nm, t.pool, lbls, cap, ver, now_s, now_s, 'active',
    t.id);
  RETURN skiff.ok(201, jsonb_build_object('agent_id', aid, 'pool', t.pool));
END $$;

-- A lease request: 200 with the lease, or 204 with the agent and pool
-- the replica then holds the poll for.
CREATE FUNCTION skiff.op_lease(h bytea, seen_every int, ack_ms bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  r jsonb;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  r := skiff.take(a, ack_ms);
  IF r IS NULL THEN
    RETURN jsonb_build_object('s', 204, 'agent', a.id, 'pool', a.pool);
  END IF;
  RETURN skiff.ok(200, r);
END $$;

-- Queued jobs of pool p to the polls a replica holds, oldest poll first
-- (polls: their agent ids in that order; one agent may hold several).
-- Answers [{"i": index into polls, 1-based, "lease": {...}}, ...].
CREATE FUNCTION skiff.op_dispatch(p text, polls text[], ack_ms bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  a skiff.agents;
  pick bigint;
  used bigint[] := '{}';
  out jsonb := '[]';
BEGIN
  FOR j IN SELECT * FROM skiff.jobs WHERE pool = p AND state = 'queued'
      ORDER BY seq LIMIT 256 LOOP
    pick := NULL;
    SELECT w.i INTO pick
      FROM unnest(polls) WITH ORDINALITY AS w(id, i)
      JOIN skiff.agents g ON g.id = w.id
      WHERE g.state = 'active' AND g.pool = p AND j.labels <@ g.labels
        AND NOT (g.id = ANY (j.excluded)) AND NOT (w.i = ANY (used))
        AND skiff.has_room(g)
      ORDER BY w.i LIMIT 1;
    CONTINUE WHEN pick IS NULL;
    -- Only a job that is handed out is locked; one taken meanwhile is
    -- skipped.
    PERFORM 1 FROM skiff.jobs WHERE seq = j.seq AND state = 'queued'
      FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    SELECT * INTO a FROM skiff.agents WHERE id = polls[pick] FOR UPDATE;
    CONTINUE WHEN a.state <> 'active' OR NOT skiff.has_room(a);
    SELECT * INTO j FROM skiff.jobs WHERE seq = j.seq;
    used := used || pick;
    out := out || jsonb_build_array(jsonb_build_object('i', pick,
      'lease', skiff.hand_out(j, a, ack_ms)));
    EXIT WHEN cardinality(used) = cardinality(polls);
  END LOOP;
  RETURN out;
END $$;

CREATE FUNCTION skiff.op_heartbeat(h bytea, seen_every int, lid text,
  ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  l skiff.leases;
  e jsonb;
  j skiff.jobs;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO l FROM skiff.leases WHERE id = lid;
  UPDATE skiff.leases SET deadline_ms = skiff.ms() + ttl_ms WHERE id = lid;
  SELECT * INTO j FROM skiff.jobs WHERE id = l.job;
  RETURN skiff.ok(200, jsonb_build_object('cancel', j.cancel_requested,
    'cancel_reason', coalesce(j.cancel_reason, '')));
END $$;

-- Bytes at offset off of the lease's log (inflated already). Bytes the
-- queue has are skipped, so a resend is harmless.
CREATE FUNCTION skiff.op_log_append(h bytea, seen_every int, lid text,
  p_off bigint, p_data bytea, ttl_ms bigint, max_log bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  l skiff.leases;
  e jsonb;
  len bigint;
  skip bigint;
  n bigint := length(p_data);
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO l FROM skiff.leases WHERE id = lid;
  INSERT INTO skiff.logs (job, attempt) VALUES (l.job, l.attempt)
    ON CONFLICT DO NOTHING;
  SELECT length INTO len FROM skiff.logs
    WHERE job = l.job AND attempt = l.attempt FOR UPDATE;
  IF p_off > len THEN
    RETURN skiff.err(409, 'offset_mismatch', format('log offset %s is past '
      'the end (length %s)', p_off, len)) || jsonb_build_object('length', len);
  END IF;
  skip := len - p_off;
  IF n > skip THEN
    IF n - skip > max_log - len THEN
      RETURN skiff.err(413, 'too_large', format('the log of this attempt '
        'would pass %s bytes', max_log))
        || jsonb_build_object('limit', max_log);
    END IF;
    INSERT INTO skiff.log_chunks (job, attempt, off, data)
      VALUES (l.job, l.attempt, len, substring(p_data FROM (skip + 1)::int));
    len := len + n - skip;
    UPDATE skiff.logs SET length = len
      WHERE job = l.job AND attempt = l.attempt;
    -- Only followed jobs are worth a notification (each costs every
    -- replica a message). Seen under the log row's lock, so a follow
    -- registered meanwhile either sees these bytes or is seen here.
    IF EXISTS (SELECT 1 FROM skiff.follows
        WHERE job = l.job AND until_ms > skiff.ms()) THEN
      PERFORM pg_notify('skiff_log', l.job);
    END IF;
  END IF;
  RETURN skiff.ok(200, jsonb_build_object('length', len));
END $$;

-- Only the authentication and lease checks of a lease-scoped request:
-- what answers first when the body itself is refused (bad gzip).
CREATE FUNCTION skiff.op_lease_check(h bytea, seen_every int, lid text,
  ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  l skiff.leases;
  e jsonb;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  RETURN coalesce(skiff.lease_check(a, lid, ttl_ms), skiff.ok(200, '{}'));
END $$;

CREATE FUNCTION skiff.op_complete(h bytea, seen_every int, lid text,
  res text, codes jsonb, rcode text, rsn text, loglen bigint, ttl_ms bigint)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  l skiff.leases;
  e jsonb;
  len bigint;
  p text;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  SELECT * INTO l FROM skiff.leases WHERE id = lid;
  IF FOUND AND l.agent = a.id AND l.state = 'completed' THEN
    -- Complete is idempotent: the stored result again.
    RETURN skiff.ok(200, jsonb_build_object('state',
      (SELECT state FROM skiff.jobs WHERE id = l.job)));
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO l FROM skiff.leases WHERE id = lid;
  len := skiff.log_length(l.job, l.attempt);
  IF loglen <> len THEN
    RETURN skiff.err(409, 'offset_mismatch', format('log_length %s is not '
      'the server''s length %s', loglen, len))
      || jsonb_build_object('length', len);
  END IF;
  PERFORM skiff.end_job(l.job, res, nullif(rcode, ''), nullif(rsn, ''),
    codes);
  UPDATE skiff.leases SET state = 'completed', ended = skiff.ms() / 1000
    WHERE id = lid;
  SELECT pool INTO p FROM skiff.jobs WHERE id = l.job;
  PERFORM pg_notify('skiff_pool', p);
  RETURN skiff.ok(200, jsonb_build_object('state', res));
END $$;

CREATE FUNCTION skiff.op_deregister(h bytea, skew bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, 1 << 30);
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  PERFORM skiff.drop_agent(a.id, 'deregistered', skew);
  RETURN skiff.ok(204, NULL);
END $$;

-- The answer of a lease handed out never reached its agent: back to the
-- queue now rather than at the end of the ack window.
CREATE FUNCTION skiff.op_undelivered(lid text, skew bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  l skiff.leases;
BEGIN
  SELECT * INTO l FROM skiff.leases
    WHERE id = lid AND state = 'active' AND NOT acked FOR UPDATE;
  IF FOUND THEN
    PERFORM skiff.expire(l, 'ack', skew);
  END IF;
  RETURN skiff.ok(200, to_jsonb(FOUND));
END $$;

-- ---- artifacts (docs/protocol.md sections 4.5 and 5.4) ----

CREATE FUNCTION skiff.upload_answer(u skiff.uploads) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN u.state = 'committed'
    THEN jsonb_build_object('upload', u.id, 'complete', true)
    ELSE jsonb_build_object('upload', u.id, 'offset', u.received) END $$;

CREATE FUNCTION skiff.op_art_create(h bytea, seen_every int, lid text,
  nm text, sz bigint, ttl_ms bigint, max_art bigint, max_total bigint,
  max_count bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  l skiff.leases;
  e jsonb;
  u skiff.uploads;
  cnt bigint;
  total bigint;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  e := skiff.lease_check(a, lid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO l FROM skiff.leases WHERE id = lid;
  SELECT * INTO u FROM skiff.uploads
    WHERE job = l.job AND attempt = l.attempt AND name = nm;
  IF FOUND THEN
    -- The same name again: the existing upload and its offset.
    IF u.size <> sz THEN
      RETURN skiff.err(409, 'conflict', format('artifact ''%s'' exists with '
        'size %s', nm, u.size));
    END IF;
    RETURN skiff.ok(200, skiff.upload_answer(u));
  END IF;
  IF sz > max_art THEN
    RETURN skiff.err(413, 'too_large', format('artifact of %s bytes is over '
      'the per-file cap', sz)) || jsonb_build_object('limit', max_art);
  END IF;
  SELECT count(*), coalesce(sum(size), 0) INTO cnt, total
    FROM skiff.uploads WHERE job = l.job AND attempt = l.attempt;
  IF cnt + 1 > max_count THEN
    RETURN skiff.err(413, 'too_large', format('the job already has %s '
      'artifacts', cnt)) || jsonb_build_object('limit', max_count);
  END IF;
  IF sz > max_total - total THEN
    RETURN skiff.err(413, 'too_large', format('the job''s artifacts would '
      'pass %s bytes in all', max_total))
      || jsonb_build_object('limit', max_total);
  END IF;
  INSERT INTO skiff.uploads (id, job, attempt, lease, name, size, state,
    created, digest)
    VALUES (skiff.rand_id('upl_'), l.job, l.attempt, l.id, nm, sz, 'open',
    skiff.ms() / 1000,
    CASE WHEN sz = 0 THEN encode(sha256(''::bytea), 'hex') END)
    RETURNING * INTO u;
  RETURN skiff.ok(201, skiff.upload_answer(u));
END $$;

-- NULL when uid is an upload of the caller's active lease (the upload
-- row then locked); otherwise the error.
CREATE FUNCTION skiff.upload_check(h bytea, seen_every int, uid text,
  ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  a skiff.agents := skiff.auth(h, seen_every);
  u skiff.uploads;
  e jsonb;
BEGIN
  IF a.id IS NULL THEN
    RETURN skiff.unauthorized();
  END IF;
  SELECT * INTO u FROM skiff.uploads WHERE id = uid;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no upload ''%s''', uid));
  END IF;
  e := skiff.lease_check(a, u.lease, ttl_ms);
  IF e IS NULL THEN
    PERFORM 1 FROM skiff.uploads WHERE id = uid FOR UPDATE;
  END IF;
  RETURN e;
END $$;

-- Before a PUT's body: the offset must be the server's. Answers the
-- running hash state the PUT goes on from. Chunks past the offset (a PUT
-- cut short on another replica) are dropped.
CREATE FUNCTION skiff.op_put_begin(h bytea, seen_every int, uid text,
  p_off bigint, gz boolean, clen bigint, ttl_ms bigint)
RETURNS TABLE (r jsonb, hstate bytea) LANGUAGE plpgsql AS $$
DECLARE
  u skiff.uploads;
  e jsonb;
BEGIN
  e := skiff.upload_check(h, seen_every, uid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN QUERY SELECT e, NULL::bytea;
    RETURN;
  END IF;
  SELECT * INTO u FROM skiff.uploads WHERE id = uid;
  IF u.state = 'committed' THEN
    RETURN QUERY SELECT skiff.err(409, 'conflict',
      format('upload ''%s'' is already committed', uid)), NULL::bytea;
    RETURN;
  END IF;
  IF p_off <> u.received THEN
    RETURN QUERY SELECT skiff.err(409, 'offset_mismatch', format('upload '
      'offset %s is not the server''s offset %s', p_off, u.received))
      || jsonb_build_object('length', u.received), NULL::bytea;
    RETURN;
  END IF;
  IF NOT gz AND clen > u.size - u.received THEN
    RETURN QUERY SELECT skiff.err(413, 'too_large', format('%s bytes at '
      'offset %s pass the declared size', clen, p_off))
      || jsonb_build_object('limit', u.size), NULL::bytea;
    RETURN;
  END IF;
  DELETE FROM skiff.upload_chunks WHERE upload = uid AND off >= u.received;
  RETURN QUERY SELECT skiff.ok(200, jsonb_build_object('offset', u.received,
    'size', u.size)), u.sha_state;
END $$;

-- A piece of a PUT: stored only if the upload is still at offset off
-- (a concurrent PUT that got there first wins; this one is told so).
CREATE FUNCTION skiff.op_put_chunk(uid text, p_off bigint, p_data bytea,
  st bytea, dig text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  u skiff.uploads;
BEGIN
  SELECT * INTO u FROM skiff.uploads WHERE id = uid FOR UPDATE;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no upload ''%s''', uid));
  END IF;
  IF u.state = 'committed' OR u.received <> p_off THEN
    RETURN skiff.err(409, 'offset_mismatch', format('upload ''%s'' moved '
      'to offset %s during this PUT', uid, u.received))
      || jsonb_build_object('length', u.received);
  END IF;
  IF p_off + length(p_data) > u.size THEN
    RETURN skiff.err(413, 'too_large', format('the bytes pass the declared '
      'size of %s', u.size)) || jsonb_build_object('limit', u.size);
  END IF;
  INSERT INTO skiff.upload_chunks (upload, off, data) VALUES (uid, p_off, p_data);
  UPDATE skiff.uploads SET received = p_off + length(p_data), sha_state = st,
    digest = dig WHERE id = uid;
  RETURN skiff.ok(200, jsonb_build_object('offset', p_off + length(p_data)));
END $$;

-- A refused PUT leaves nothing behind: back to where it started.
CREATE FUNCTION skiff.op_put_rollback(uid text, start bigint, st bytea)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM skiff.upload_chunks WHERE upload = uid AND off >= start;
  UPDATE skiff.uploads SET received = start, sha_state = st,
    digest = CASE WHEN size = 0 THEN digest END
    WHERE id = uid AND received >= start AND state = 'open';
  RETURN skiff.ok(200, '{}');
END $$;

CREATE FUNCTION skiff.op_upload_get(h bytea, seen_every int, uid text,
  ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  u skiff.uploads;
  e jsonb;
BEGIN
  e := skiff.upload_check(h, seen_every, uid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO u FROM skiff.uploads WHERE id = uid;
  RETURN skiff.ok(200, jsonb_build_object('offset', u.received,
    'size', u.size, 'complete', u.state = 'committed'));
END $$;

CREATE FUNCTION skiff.op_art_commit(h bytea, seen_every int, uid text,
  want text, ttl_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  u skiff.uploads;
  e jsonb;
BEGIN
  e := skiff.upload_check(h, seen_every, uid, ttl_ms);
  IF e IS NOT NULL THEN
    RETURN e;
  END IF;
  SELECT * INTO u FROM skiff.uploads WHERE id = uid;
  IF u.state = 'committed' THEN
    IF u.sha256 = want THEN
      RETURN skiff.ok(200, jsonb_build_object('name', u.name, 'size', u.size,
        'sha256', u.sha256));
    END IF;
    RETURN skiff.err(422, 'digest_mismatch', format('upload ''%s'' was '
      'committed with SHA-256 %s', uid, u.sha256));
  END IF;
  IF u.received <> u.size OR u.digest IS NULL THEN
    RETURN skiff.err(409, 'conflict', format('upload ''%s'' has %s of its %s '
      'bytes', uid, u.received, u.size));
  END IF;
  IF u.digest <> want THEN
    -- The bytes are discarded, the upload starts again.
    DELETE FROM skiff.upload_chunks WHERE upload = uid;
    UPDATE skiff.uploads SET received = 0, sha_state = NULL,
      digest = CASE WHEN size = 0 THEN digest END WHERE id = uid;
    RETURN skiff.err(422, 'digest_mismatch', format('the SHA-256 of the %s '
      'bytes stored is %s, not %s; the upload was discarded', u.size,
      u.digest, want));
  END IF;
  UPDATE skiff.uploads SET state = 'committed', sha256 = u.digest
    WHERE id = uid;
  RETURN skiff.ok(200, jsonb_build_object('name', u.name, 'size', u.size,
    'sha256', u.digest));
END $$;

-- ---- admin operations (docs/protocol.md section 5) ----

CREATE FUNCTION skiff.op_submit(jid text, p text, nm text, lbls text[],
  p_jws text, p_exp bigint, max_att int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  now_ms bigint := skiff.ms();
BEGIN
  INSERT INTO skiff.jobs (id, pool, name, labels, jws, exp, state, attempt,
    max_attempts, created, queued_ms)
    VALUES (jid, p, nm, lbls, p_jws, p_exp, 'queued', 1, max_att, now_ms / 1000,
    now_ms)
    ON CONFLICT (id) DO NOTHING RETURNING * INTO j;
  IF NOT FOUND THEN
    RETURN skiff.err(409, 'conflict', format('a job with id ''%s'' exists',
      jid));
  END IF;
  PERFORM pg_notify('skiff_pool', p);
  RETURN skiff.ok(201, skiff.job_json(j));
END $$;

CREATE FUNCTION skiff.op_job(jid text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no job ''%s''', jid));
  END IF;
  RETURN skiff.ok(200, skiff.job_json(j));
END $$;

-- skiff.op_jobs: queue/pgschema2.sql (version 2).

CREATE FUNCTION skiff.op_cancel(jid text, why text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid FOR UPDATE;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no job ''%s''', jid));
  END IF;
  IF j.state = 'queued' THEN
    PERFORM skiff.end_job(jid, 'canceled', 'canceled',
      coalesce(nullif(why, ''), 'canceled while queued'));
  ELSIF j.state IN ('leased', 'running') THEN
    IF NOT j.cancel_requested THEN
      UPDATE skiff.jobs SET cancel_requested = true, cancel_reason = why
        WHERE id = jid;
    END IF;
  ELSE
    RETURN skiff.err(409, 'conflict', format('job ''%s'' has ended', jid));
  END IF;
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  RETURN skiff.ok(202, skiff.job_json(j));
END $$;

-- A range of an attempt's log (attempt 0: the current one), at most maxn
-- bytes from off. With fid, a follow that parks when there is nothing to
-- read is registered (until wait_ms from now) under the log row's share
-- lock: an append running meanwhile either committed first (and its
-- bytes are read here) or waits for this registration (and notifies).
CREATE FUNCTION skiff.op_log_read(jid text, att int, p_off bigint, maxn int,
  fid text, wait_ms bigint)
RETURNS TABLE (r jsonb, bytes bytea) LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  a int;
  len bigint;
  done boolean;
  first bigint;
  buf bytea;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  IF NOT FOUND THEN
    RETURN QUERY SELECT skiff.err(404, 'not_found',
      format('no job ''%s''', jid)), NULL::bytea;
    RETURN;
  END IF;
  IF att > j.attempt THEN
    RETURN QUERY SELECT skiff.err(404, 'not_found', format('job ''%s'' has '
      'no attempt %s (it is at attempt %s)', jid, att, j.attempt)),
      NULL::bytea;
    RETURN;
  END IF;
  a := CASE WHEN att > 0 THEN att ELSE j.attempt END;
  done := j.state NOT IN ('queued', 'leased', 'running') OR a < j.attempt;
  IF fid IS NOT NULL AND NOT done THEN
    INSERT INTO skiff.logs (job, attempt) VALUES (jid, a)
      ON CONFLICT DO NOTHING;
    PERFORM 1 FROM skiff.logs WHERE job = jid AND attempt = a FOR SHARE;
    INSERT INTO skiff.follows (id, job, until_ms)
      VALUES (fid, jid, skiff.ms() + wait_ms)
      ON CONFLICT (id) DO UPDATE SET until_ms = EXCLUDED.until_ms;
  END IF;
  len := skiff.log_length(jid, a);
  IF p_off > len THEN
    RETURN QUERY SELECT skiff.err(416, 'offset_mismatch', format('log offset '
      '%s is past the end (length %s)', p_off, len))
      || jsonb_build_object('length', len), NULL::bytea;
    RETURN;
  END IF;
  SELECT min(c.off), string_agg(c.data, ''::bytea ORDER BY c.off)
    INTO first, buf
    FROM skiff.log_chunks c
    WHERE c.job = jid AND c.attempt = a AND c.off < p_off + maxn
      AND c.off + length(c.data) > p_off;
  IF buf IS NOT NULL THEN
    buf := substring(buf FROM (p_off - first + 1)::int FOR maxn);
  END IF;
  RETURN QUERY SELECT skiff.ok(200, jsonb_build_object('attempt', a,
    'length', len, 'complete', done, 'state', j.state)), buf;
END $$;

CREATE FUNCTION skiff.op_art_list(jid text, att int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  a int;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no job ''%s''', jid));
  END IF;
  a := CASE WHEN att > 0 THEN att ELSE j.attempt END;
  RETURN skiff.ok(200, jsonb_build_object('attempt', a, 'artifacts',
    coalesce((SELECT jsonb_agg(jsonb_build_object('name', name, 'size', size,
      'sha256', sha256) ORDER BY name) FROM skiff.uploads
      WHERE job = jid AND attempt = a AND state = 'committed'), '[]')));
END $$;

CREATE FUNCTION skiff.op_art_open(jid text, att int, nm text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  j skiff.jobs;
  a int;
  u skiff.uploads;
BEGIN
  SELECT * INTO j FROM skiff.jobs WHERE id = jid;
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('no job ''%s''', jid));
  END IF;
  a := CASE WHEN att > 0 THEN att ELSE j.attempt END;
  SELECT * INTO u FROM skiff.uploads
    WHERE job = jid AND attempt = a AND name = nm AND state = 'committed';
  IF NOT FOUND THEN
    RETURN skiff.err(404, 'not_found', format('job ''%s'' attempt %s has no '
      'artifact ''%s''', jid, a, nm));
  END IF;
  RETURN skiff.ok(200, jsonb_build_object('upload', u.id, 'size', u.size,
    'sha256', u.sha256));
END $$;

-- Bytes [off, off + maxn) of a committed upload.
CREATE FUNCTION skiff.op_art_read(uid text, p_off bigint, maxn int)
RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT substring(string_agg(c.data, ''::bytea ORDER BY c.off)
    FROM (p_off - min(c.off) + 1)::int FOR maxn)
  FROM skiff.upload_chunks c
  WHERE c.upload = uid AND c.off < p_off + maxn
    AND c.off + length(c.data) > p_off $$;

CREATE FUNCTION skiff.op_agents(p text, lease_wait bigint) RETURNS jsonb
LANGUAGE sql STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('agents', coalesce(
    (SELECT jsonb_agg(jsonb_build_object(
      'id', g.id, 'name', g.name, 'pool', g.pool,
      'labels', to_jsonb(g.labels), 'capacity', g.capacity,
      'version', g.version,
      'state', CASE WHEN g.state <> 'active' THEN 'gone'
        WHEN cardinality(g.jobs) > 0 THEN 'busy'
        WHEN skiff.ms() / 1000 - g.last_seen <= 3 * lease_wait THEN 'idle'
        ELSE 'gone' END,
      'jobs', to_jsonb(g.jobs),
      'registered', g.registered, 'last_seen', g.last_seen)
      ORDER BY g.registered DESC, g.id)
     FROM (SELECT a.*, ARRAY(SELECT l.job FROM skiff.leases l
             WHERE l.agent = a.id AND l.state = 'active' ORDER BY l.id) AS jobs
           FROM skiff.agents a WHERE p IS NULL OR a.pool = p
           ORDER BY a.registered DESC, a.id LIMIT 10000) g), '[]'))) $$;

CREATE FUNCTION skiff.op_agent_revoke(aid text, skew bigint) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM skiff.agents WHERE id = aid) THEN
    RETURN skiff.err(404, 'not_found', format('no agent ''%s''', aid));
  END IF;
  PERFORM skiff.drop_agent(aid, 'revoked', skew);
  RETURN skiff.ok(204, NULL);
END $$;

CREATE FUNCTION skiff.op_token_create(tid text, p text, th bytea,
  descr text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  now_s bigint := skiff.ms() / 1000;
BEGIN
  INSERT INTO skiff.reg_tokens (id, pool, hash, description, created)
    VALUES (tid, p, th, descr, now_s) ON CONFLICT DO NOTHING;
  IF NOT FOUND THEN
    RETURN skiff.err(409, 'conflict', 'the registration token exists');
  END IF;
  RETURN skiff.ok(201, jsonb_build_object('id', tid, 'pool', p,
    'description', descr, 'created', now_s));
END $$;

CREATE FUNCTION skiff.op_token_list(p text) RETURNS jsonb LANGUAGE sql
STABLE AS $$
  SELECT skiff.ok(200, jsonb_build_object('tokens', coalesce(
    (SELECT jsonb_agg(jsonb_build_object('id', id, 'pool', pool,
      'description', description, 'created', created, 'revoked', revoked)
      ORDER BY created, id) FROM skiff.reg_tokens WHERE pool = p), '[]'))) $$;

-- skiff.op_token_revoke: queue/pgschema2.sql (version 2).

-- ---- timers, retention, metrics ----

-- Ends what is due: leases past their ack window or TTL, queued jobs past
-- exp. Every replica runs it; a row another replica is ending is skipped
-- (SKIP LOCKED), and one it ended no longer matches: each end happens,
-- and is counted, once. Answers how many were ended, when the next is
-- due, and which of the pools given have queued jobs.
CREATE FUNCTION skiff.op_sweep(skew bigint, lim int, pools text[])
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  l skiff.leases;
  j skiff.jobs;
  n int := 0;
  now_ms bigint := skiff.ms();
  nxt bigint;
BEGIN
  FOR l IN SELECT * FROM skiff.leases
      WHERE state = 'active' AND deadline_ms <= now_ms
      ORDER BY deadline_ms LIMIT lim FOR UPDATE SKIP LOCKED LOOP
    PERFORM skiff.expire(l, CASE WHEN l.acked THEN 'ttl' ELSE 'ack' END,
      skew);
    n := n + 1;
  END LOOP;
  FOR j IN SELECT * FROM skiff.jobs
      WHERE state = 'queued' AND exp <= now_ms / 1000 - skew
      ORDER BY exp LIMIT lim FOR UPDATE SKIP LOCKED LOOP
    PERFORM skiff.end_job(j.id, 'expired', 'expired',
      'exp passed while the job was queued');
    n := n + 1;
  END LOOP;
  DELETE FROM skiff.follows WHERE id IN (SELECT id FROM skiff.follows
    WHERE until_ms < now_ms ORDER BY until_ms LIMIT lim);
  nxt := least(
    (SELECT min(deadline_ms) FROM skiff.leases WHERE state = 'active'),
    (SELECT (min(exp) + skew) * 1000 FROM skiff.jobs WHERE state = 'queued'));
  RETURN jsonb_build_object('n', n, 'next_ms', nxt - skiff.ms(),
    'queued', coalesce((SELECT jsonb_agg(p) FROM unnest(pools) p
      WHERE EXISTS (SELECT 1 FROM skiff.jobs
        WHERE pool = p AND state = 'queued')), '[]'));
END $$;

-- Deletes at most lim jobs that ended before cutoff and whose exp is at
-- or before exp_max (so the same JWS is refused as expired if submitted
-- again), with everything that refers to them.
CREATE FUNCTION skiff.op_retain(cutoff bigint, exp_max bigint, lim int)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  ids text[];
BEGIN
  SELECT array_agg(id) INTO ids FROM (
    SELECT id FROM skiff.jobs
    WHERE completed < cutoff AND exp <= exp_max
      AND state NOT IN ('queued', 'leased', 'running')
    ORDER BY completed, seq LIMIT lim FOR UPDATE SKIP LOCKED) d;
  IF ids IS NULL THEN
    RETURN jsonb_build_object('n', 0);
  END IF;
  DELETE FROM skiff.upload_chunks WHERE upload IN
    (SELECT id FROM skiff.uploads WHERE job = ANY (ids));
  DELETE FROM skiff.uploads WHERE job = ANY (ids);
  DELETE FROM skiff.log_chunks WHERE job = ANY (ids);
  DELETE FROM skiff.follows WHERE job = ANY (ids);
  DELETE FROM skiff.logs WHERE job = ANY (ids);
  DELETE FROM skiff.leases WHERE job = ANY (ids);
  DELETE FROM skiff.jobs WHERE id = ANY (ids);
  RETURN jsonb_build_object('n', cardinality(ids));
END $$;

-- What /metrics shows from the shared state.
CREATE FUNCTION skiff.op_stats(lease_wait bigint) RETURNS jsonb
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
    'artifact_bytes', (SELECT coalesce(sum(received), 0) FROM skiff.uploads))) $$;
