-- put(): the jids it makes are UUID v7 (time-ordered) instead of v4, like
-- the ones clew_core::engine::new_jid makes: a random jid put each new job
-- on a random page of the jobs' primary key and of history_jid. Only the
-- line that makes `new_jid` differs from migration 0002; the rest of the
-- function is restated because CREATE OR REPLACE takes the whole body.
CREATE OR REPLACE FUNCTION put(queue TEXT, klass TEXT, data JSONB, options JSONB DEFAULT '{}')
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
    -- A UUID v7 in 32 hex digits, as clew_core::engine::new_jid makes them:
    -- the first 48 bits are the Unix time in milliseconds, the version
    -- nibble becomes 7 (bits 52 and 53 of a v4 UUID's 0100 set), the rest
    -- stays random.
    new_jid := COALESCE(options ->> 'jid', encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM clock_timestamp())
                                                * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex'));
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
