{{
    config(
        materialized='incremental',
        partition_by=['event_date'],
    )
}}

{%- set new_days = dates_with_new_batches(
    ref('stg_sparkify__events'), 'event_date', 'batch_id'
) %}

with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    {{ where_new_days('event_date', new_days) }}

),

event_dates as (

    select
        event_date,
        count(*) as count_events,
        count(distinct customer_id) as count_customers,
        count_if(customer_id is null) as count_anonymous_events,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,
        max(batch_id) as batch_id

    from events
    group by event_date

)

select * from event_dates
