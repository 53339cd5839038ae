-- Migration 6 as it shipped first (faa6758, 2026-12-05 04:43), before 63dbf02 rewrote it to keep
-- rows per database session: a database migrated by it has these shared rows. Test fixture for
-- migration 7, which converts them (postgres.test.ts).
      -- Daily totals were a GROUP BY over every record of the period: an account with 200,000
      -- records today cost each /v1/usage (any key may call it) 64-69 ms of database time, and
      -- every account's day grows with the whole day's traffic. They are kept here instead, added by
      -- a statement trigger in the transaction that inserts the records, from any instance and any
      -- version, so they are exactly the records' sums whenever those are visible. A batch touches
      -- each of its (account, day, model, surface) rows once, in key order: two instances' batches
      -- wait for each other on a row they share, and never deadlock.
      CREATE TABLE usage_daily (
        account_id    text NOT NULL,
        day           date NOT NULL,
        model         text NOT NULL,
        surface       text NOT NULL,
        requests      bigint NOT NULL,
        prompt_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        credits       bigint NOT NULL,
        PRIMARY KEY (account_id, day, model, surface)
      );
      -- Every account's totals for a range of days (the admin API without an account).
      CREATE INDEX usage_daily_day ON usage_daily (day);
      CREATE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO usage_daily AS d (account_id, day, model, surface, requests, prompt_tokens, output_tokens, credits)
            SELECT account_id, day, model, surface, COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
            FROM inserted GROUP BY account_id, day, model, surface
            ORDER BY account_id COLLATE "C", day, model COLLATE "C", surface COLLATE "C"
          ON CONFLICT (account_id, day, model, surface) DO UPDATE SET
            requests = d.requests + excluded.requests,
            prompt_tokens = d.prompt_tokens + excluded.prompt_tokens,
            output_tokens = d.output_tokens + excluded.output_tokens,
            credits = d.credits + excluded.credits;
          RETURN NULL;
        END;
      $$;
      -- Inserts wait from here to the commit (an instance of the previous version included), so
      -- the totals below and the trigger's additions see every record exactly once.
      LOCK TABLE usage_records IN SHARE MODE;
      -- Only the rows an INSERT … ON CONFLICT DO NOTHING actually inserted are in the transition table.
      CREATE TRIGGER usage_records_daily AFTER INSERT ON usage_records
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION usage_daily_add();
      INSERT INTO usage_daily (account_id, day, model, surface, requests, prompt_tokens, output_tokens, credits)
        SELECT account_id, day, model, surface, COUNT(*), SUM(prompt_tokens), SUM(output_tokens), SUM(credits)
        FROM usage_records GROUP BY account_id, day, model, surface;
    
