-- Retrain deliveries no longer carry the webhook secret (it is resolved at send time from
-- the encrypted rule); strip it from rows written before, and from saved groups' alerts.
UPDATE deliveries
SET body = (body - 'secret')
    || jsonb_build_object('signed', coalesce(body ->> 'secret', '') <> '',
                          'rule_id', body -> 'payload' ->> 'rule_id')
WHERE kind = 'remediation' AND body ? 'secret';

UPDATE dispatch
SET body = jsonb_set(body, '{alerts}', (
    SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(a -> 'remediation') = 'object'
                                   THEN jsonb_set(a, '{remediation}', (a -> 'remediation') - 'webhook_secret')
                                   ELSE a END), '[]'::jsonb)
    FROM jsonb_array_elements(body -> 'alerts') AS a))
WHERE body ? 'alerts';

UPDATE deliveries
SET body = jsonb_set(body, '{alerts}', (
    SELECT coalesce(jsonb_agg(CASE WHEN jsonb_typeof(a -> 'remediation') = 'object'
                                   THEN jsonb_set(a, '{remediation}', (a -> 'remediation') - 'webhook_secret')
                                   ELSE a END), '[]'::jsonb)
    FROM jsonb_array_elements(body -> 'alerts') AS a))
WHERE kind = 'notification' AND body ? 'alerts';
