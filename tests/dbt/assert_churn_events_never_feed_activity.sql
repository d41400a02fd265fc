-- The label's own events (Cancel, Cancellation Confirmation, Cancelled
-- sessions) must never show up as activity.
with

churn_events as (

    select
        customer_id,
        event_date
    from {{ ref('stg_sparkify__events') }}
    where is_churn_event

),

activity_only_from_churn_events as (

    select
        daily.customer_id,
        daily.activity_date
    from {{ ref('int_customers__daily_activity') }} as daily
    inner join churn_events
        on
            daily.customer_id = churn_events.customer_id
            and daily.activity_date = churn_events.event_date
    left join {{ ref('stg_sparkify__events') }} as other_events
        on
            daily.customer_id = other_events.customer_id
            and daily.activity_date = other_events.event_date
            and not other_events.is_churn_event
    where other_events.event_id is null

)

select * from activity_only_from_churn_events
