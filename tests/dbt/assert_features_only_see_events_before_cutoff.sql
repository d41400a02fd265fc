-- A feature row whose customer's latest activity before the cutoff is on or
-- after the cutoff would mean the windows leaked future events.
select
    customer_cutoff_id,
    days_since_last_activity
from {{ ref('customer_features') }}
where days_since_last_activity < 1
