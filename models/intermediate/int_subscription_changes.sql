{{
    config(
        materialized='incremental',
        partition_by=['change_date'],
    )
}}

{%- set new_days = dates_with_new_batches(
    ref('int_event_dates'), 'event_date', 'batch_id'
) %}

with

events as (

    select * from {{ ref('stg_sparkify__events') }}
    {{ where_new_days('event_date', new_days) }}

),

changes as (

    select
        event_id,
        customer_id,
        event_at as changed_at,
        case page
            when 'Submit Upgrade' then 'upgrade'
            when 'Submit Downgrade' then 'downgrade'
            when 'Cancellation Confirmation' then 'cancellation'
        end as change_kind,
        batch_id,
        event_date as change_date

    from events
    where
        customer_id is not null
        and (is_level_change or is_cancellation)

)

select * from changes
