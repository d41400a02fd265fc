with

daily as (

    select * from {{ ref('int_customers__daily_activity') }}

),

changes as (

    select * from {{ ref('int_subscription_changes') }}

),

activity as (

    select
        customer_id,
        max_by(first_name, last_event_at) as first_name,
        max_by(last_name, last_event_at) as last_name,
        max_by(gender, last_event_at) as gender,
        max_by(location, last_event_at) as location,
        max_by(state, last_event_at) as state,
        max_by(user_agent, last_event_at) as user_agent,
        max_by(device_type, last_event_at) as device_type,
        max_by(os_family, last_event_at) as os_family,
        max_by(browser, last_event_at) as browser,
        max_by(level_at_day_end, last_event_at) as level,
        min(registered_at) as registered_at,
        min(first_event_at) as first_event_at,
        max(last_event_at) as last_active_at

    from daily
    group by customer_id

),

cancellations as (

    select
        customer_id,
        min(changed_at) as cancelled_at

    from changes
    where change_kind = 'cancellation'
    group by customer_id

),

customers as (

    select
        activity.*,
        cancellations.cancelled_at

    from activity
    left join cancellations
        on activity.customer_id = cancellations.customer_id

)

select * from customers
