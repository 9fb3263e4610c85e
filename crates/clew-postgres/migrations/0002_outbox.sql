-- clew PostgreSQL schema, version 2: transactional enqueue.
--
-- An application puts a job inside its own transaction by calling
-- `put(queue, klass, data, options)` of this schema (or, from Rust,
-- clew_postgres::put_in). That only inserts a row into `put_outbox`; the job
-- exists once that transaction commits and the store *drains* the outbox:
-- every command's transaction, right after taking the command lock, deletes
-- the committed rows and runs each as a real put (clew_core::logic, the same
-- code as every other put), so history, events and the lifecycle `enqueued`
-- event are made exactly as for any put. A rolled-back transaction leaves no
-- row, so no job. A row the put logic refuses moves to `put_rejected`.

-- Puts committed by applications and not yet drained, in `id` order.
CREATE TABLE put_outbox (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jid         TEXT COLLATE "C" NOT NULL,
    queue       TEXT NOT NULL,
    klass       TEXT NOT NULL,
    data        TEXT NOT NULL,                 -- the JSON text, verbatim
    options     JSONB NOT NULL DEFAULT '{}',   -- priority, tags, delay, retries, depends, metadata, worker
    origin_host TEXT NOT NULL DEFAULT COALESCE(host(inet_client_addr()), 'localhost'),
    origin_pid  BIGINT NOT NULL DEFAULT 0,
    enqueued_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Puts the drain refused (the put logic returned an error), with the error.
CREATE TABLE put_rejected (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    jid         TEXT COLLATE "C" NOT NULL,
    queue       TEXT NOT NULL,
    klass       TEXT NOT NULL,
    data        TEXT NOT NULL,
    options     JSONB NOT NULL,
    origin_host TEXT NOT NULL,
    origin_pid  BIGINT NOT NULL,
    enqueued_at TIMESTAMPTZ NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    error       TEXT NOT NULL
);
CREATE INDEX put_rejected_jid ON put_rejected (jid);

-- The LISTEN/NOTIFY channel of this schema: `clew_<schema>`, or
-- `clew_<md5 of the schema>` when that would pass PostgreSQL's 63-byte
-- limit. Payloads: `put` (a put waits in the outbox) or the latest event
-- sequence number a command committed. The store reads the name from here.
CREATE FUNCTION notify_channel() RETURNS TEXT
LANGUAGE sql STABLE
SET search_path FROM CURRENT
AS $$
    SELECT CASE WHEN octet_length('clew_' || current_schema()) <= 63
                THEN 'clew_' || current_schema()
                ELSE 'clew_' || md5(current_schema()) END
$$;

-- put(queue, klass, data, options): enqueues a job when the calling
-- transaction commits; returns its jid. Checks what it can at once (names
-- non-empty, option names and JSON types) and raises a clear error
-- (SQLSTATE 22023) naming the argument; the put logic checks the rest when
-- the outbox is drained. `data` is jsonb, so its key order and whitespace are
-- PostgreSQL's (normalized), not the caller's text; Rust's put_in keeps the
-- text verbatim.
CREATE FUNCTION put(queue TEXT, klass TEXT, data JSONB, options JSONB DEFAULT '{}')
RETURNS TEXT
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
    key      TEXT;
    value    JSONB;
    new_jid  TEXT;
BEGIN
    IF queue IS NULL OR queue = '' THEN
        RAISE EXCEPTION 'put(): argument "queue" is missing (a non-empty queue name)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF klass IS NULL OR klass = '' THEN
        RAISE EXCEPTION 'put(): argument "klass" is missing (a non-empty job class)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF data IS NULL THEN
        RAISE EXCEPTION 'put(): argument "data" is missing (a JSON value, for example ''{}'')'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    options := COALESCE(options, '{}');
    IF jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'put(): argument "options" must be a JSON object, got %', options
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR key, value IN SELECT * FROM jsonb_each(options) LOOP
        CASE key
        WHEN 'jid', 'worker' THEN
            IF jsonb_typeof(value) <> 'string' THEN
                RAISE EXCEPTION 'put(): option "%" must be a non-empty string, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF value #>> '{}' = '' THEN
                RAISE EXCEPTION 'put(): option "%" must be a non-empty string, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        WHEN 'priority', 'retries' THEN
            -- Nested, not OR-ed: SQL does not promise to evaluate left to right.
            IF jsonb_typeof(value) <> 'number' THEN
                RAISE EXCEPTION 'put(): option "%" must be an integer, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF value::numeric <> trunc(value::numeric)
               OR value::numeric NOT BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
                RAISE EXCEPTION 'put(): option "%" must be an integer, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF key = 'retries' AND value::numeric < 0 THEN
                RAISE EXCEPTION 'put(): option "retries" must not be negative, got %', value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        WHEN 'delay' THEN
            IF jsonb_typeof(value) <> 'number' THEN
                RAISE EXCEPTION 'put(): option "delay" must be a number of seconds, got %', value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF value::numeric < 0 THEN
                RAISE EXCEPTION 'put(): option "delay" must not be negative, got %', value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        WHEN 'tags', 'depends' THEN
            IF jsonb_typeof(value) <> 'array' THEN
                RAISE EXCEPTION 'put(): option "%" must be a JSON array of strings, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            IF EXISTS (
                   SELECT 1 FROM jsonb_array_elements(value) AS e(item)
                   WHERE jsonb_typeof(e.item) <> 'string') THEN
                RAISE EXCEPTION 'put(): option "%" must be a JSON array of strings, got %', key, value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        WHEN 'metadata' THEN
            IF jsonb_typeof(value) <> 'object' THEN
                RAISE EXCEPTION 'put(): option "metadata" must be a JSON object, got %', value
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSE
            RAISE EXCEPTION 'put(): unknown option "%" (known: jid, priority, tags, delay, retries, depends, metadata, worker)', key
                USING ERRCODE = 'invalid_parameter_value';
        END CASE;
    END LOOP;
    new_jid := COALESCE(options ->> 'jid', replace(gen_random_uuid()::text, '-', ''));
    IF options -> 'depends' ? new_jid THEN
        RAISE EXCEPTION 'put(): option "depends": job % cannot depend on itself', new_jid
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO put_outbox (jid, queue, klass, data, options)
    VALUES (new_jid, queue, klass, data::text, options - 'jid');
    PERFORM pg_notify(notify_channel(), 'put');
    RETURN new_jid;
END
$$;
