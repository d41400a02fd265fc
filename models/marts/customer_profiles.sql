with

customers as (

    select * from {{ ref('int_customers') }}

),

windows as (

    select * from {{ ref('int_customers__activity_windows') }}

),

cutoffs as (

    select * from {{ ref('int_cutoffs') }}

),

latest_windows as (

    select windows.*
    from windows
    inner join cutoffs
        on windows.cutoff_date = cutoffs.cutoff_date
    where cutoffs.is_scoring_cutoff

),

profiles as (

    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.gender,
        customers.location,
        customers.state,
        customers.level,
        customers.registered_at,
        customers.first_event_at,
        customers.last_active_at,
        customers.cancelled_at,
        customers.cancelled_at is not null as is_cancelled,
        cutoffs.cutoff_date as as_of_date,
        greatest(
            datediff(
                coalesce(to_date(customers.cancelled_at), cutoffs.cutoff_date),
                to_date(
                    coalesce(customers.registered_at, customers.first_event_at)
                )
            ),
            0
        ) as tenure_days,
        {% for window in ['7d', '28d', 'prev_28d'] %}
        {% for measure in [
            'count_sessions', 'count_songs', 'listening_seconds',
            'count_thumbs_up', 'count_thumbs_down', 'count_adverts',
            'count_errors',
        ] %}
        coalesce(latest_windows.{{ measure }}_{{ window }}, 0)
            as {{ measure }}_{{ window }}{{ "," if not loop.last }}
        {% endfor %}{{ "," if not loop.last }}
        {% endfor %}

    from customers
    cross join cutoffs
    left join latest_windows
        on customers.customer_id = latest_windows.customer_id
    where cutoffs.is_scoring_cutoff

)

select * from profiles
