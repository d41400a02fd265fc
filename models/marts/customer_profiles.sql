{%- set measures = [
    'count_sessions', 'count_songs', 'listening_seconds', 'count_thumbs_up',
    'count_thumbs_down', 'count_adverts', 'count_errors',
] -%}

with

customers as (

    select * from {{ ref('int_customers') }}

),

scoring as (

    select cutoff_date as as_of_date
    from {{ ref('int_cutoffs') }}
    where is_scoring_cutoff

),

recent_days as (

    -- The 56 days before the scoring cutoff: the last 7 and 28 of them and
    -- the 28 before those, so an agent can compare a customer with the
    -- customer's own previous weeks.
    select
        daily.*,
        datediff(scoring.as_of_date, daily.activity_date) as days_before_cutoff

    from {{ ref('int_customers__daily_activity') }} as daily
    inner join scoring
        on
            daily.activity_date < scoring.as_of_date
            and daily.activity_date >= date_sub(scoring.as_of_date, 56)

),

recent_activity as (

    select
        customer_id,
        {% for measure in measures %}
        {{ window_sum(measure, 1, 7) }} as {{ measure }}_7d,
        {{ window_sum(measure, 1, 28) }} as {{ measure }}_28d,
        {{ window_sum(measure, 29, 56) }} as {{ measure }}_prev_28d
        {%- if not loop.last %},{% endif %}
        {% endfor %}

    from recent_days
    group by customer_id

),

profiles as (

    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.gender,
        customers.location,
        customers.state,
        customers.device_type,
        customers.os_family,
        customers.browser,
        customers.level,
        customers.registered_at,
        customers.first_event_at,
        customers.last_active_at,
        customers.cancelled_at,
        customers.cancelled_at is not null as is_cancelled,
        scoring.as_of_date,
        greatest(
            datediff(
                coalesce(to_date(customers.cancelled_at), scoring.as_of_date),
                to_date(
                    coalesce(customers.registered_at, customers.first_event_at)
                )
            ),
            0
        ) as tenure_days,
        {% for window in ['7d', '28d', 'prev_28d'] %}
        {% set last_window = loop.last %}
        {% for measure in measures %}
        {% set column = measure ~ '_' ~ window %}
        coalesce(recent_activity.{{ column }}, 0) as {{ column }}
        {%- if not (loop.last and last_window) %},{% endif %}
        {% endfor %}
        {% endfor %}

    from customers
    cross join scoring
    left join recent_activity
        on customers.customer_id = recent_activity.customer_id

)

select * from profiles
