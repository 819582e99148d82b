-- Plumbing check for tests/bench/anomaly_quality.py, not a detector: flags
-- the hours of the attack period in which a consumer made more than 8 times
-- its median calls per active hour before that period (and more than 40).
-- It returns the columns of anomalies(), one row per consumer-hour.
WITH hourly AS (
    SELECT hour, consumer, sum(calls) AS calls
    FROM consumer_activity
    GROUP BY hour, consumer
),
usual AS (
    SELECT consumer, median(calls) AS median_calls
    FROM hourly
    WHERE hour < TIMESTAMP '{start}'
    GROUP BY consumer
)
SELECT
    h.hour AS bucket_start,
    h.hour + INTERVAL '1 hour' AS bucket_end,
    h.consumer,
    CAST(NULL AS VARCHAR) AS endpoint,
    'volume_spike' AS kind,
    CAST(h.calls AS DOUBLE) / greatest(u.median_calls, 1) AS score,
    CAST(h.calls AS DOUBLE) AS observed,
    CAST(u.median_calls AS DOUBLE) AS expected,
    concat(h.calls, ' calls in the hour against a median of ', u.median_calls,
           ' per active hour before the attack period') AS explanation
FROM hourly h
JOIN usual u ON u.consumer = h.consumer
WHERE h.hour >= TIMESTAMP '{start}'
  AND h.hour < TIMESTAMP '{end}'
  AND h.calls > 8 * greatest(u.median_calls, 5)
ORDER BY h.consumer, h.hour
