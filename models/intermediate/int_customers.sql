with

events as (

    select * from {{ ref('stg_sparkify__events') }}

),

customer_events as (

    select * from events where customer_id is not null

),

customers as (

    select
        customer_id,
        max_by(first_name, event_at) as first_name,
        max_by(last_name, event_at) as last_name,
        max_by(gender, event_at) as gender,
        max_by(location, event_at) as location,
        max_by(state, event_at) as state,
        max_by(user_agent, event_at) as user_agent,
        max_by(level, event_at) as level,
        min(registered_at) as registered_at,
        min(event_at) as first_event_at,
        max(case when not is_churn_event then event_at end) as last_active_at,
        min(case when is_cancellation then event_at end) as cancelled_at

    from customer_events
    group by customer_id

)

select * from customers
