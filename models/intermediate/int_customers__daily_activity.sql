{{
    config(
        materialized='incremental',
        partition_by=['activity_date'],
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

customer_events as (

    -- Logged-out and guest events belong to nobody; the label's own events
    -- (Cancel, Cancellation Confirmation, Cancelled sessions) must never
    -- become activity.
    select *
    from events
    where customer_id is not null and not is_churn_event

),

daily as (

    select
        customer_id,
        event_date as activity_date,

        ----------  measures, summed over windows downstream
        count(*) as count_events,
        count(distinct session_id) as count_sessions,
        count_if(is_song_play) as count_songs,
        coalesce(sum(song_length_seconds), 0) as listening_seconds,
        count_if(page = 'Thumbs Up') as count_thumbs_up,
        count_if(page = 'Thumbs Down') as count_thumbs_down,
        count_if(page = 'Roll Advert') as count_adverts,
        count_if(page = 'Error') as count_errors,
        count_if(page = 'Help') as count_help_visits,
        count_if(page = 'Settings') as count_settings_visits,
        count_if(page = 'Downgrade') as count_downgrade_visits,
        count_if(page = 'Add Friend') as count_friends_added,
        count_if(page = 'Add to Playlist') as count_playlist_adds,
        -- Distinct artists do not add up over days, so the day keeps the
        -- set of them, as 64-bit hashes: exact, and light to carry.
        collect_set(xxhash64(artist_name)) filter (
            where artist_name is not null
        ) as artist_hashes,

        ----------  the customer as last seen that day
        max_by(level, event_at) as level_at_day_end,
        max_by(first_name, event_at) as first_name,
        max_by(last_name, event_at) as last_name,
        max_by(gender, event_at) as gender,
        max_by(location, event_at) as location,
        max_by(state, event_at) as state,
        max_by(user_agent, event_at) as user_agent,
        max_by(device_type, event_at) as device_type,
        max_by(os_family, event_at) as os_family,
        max_by(browser, event_at) as browser,
        min(registered_at) as registered_at,
        min(event_at) as first_event_at,
        max(event_at) as last_event_at,

        max(batch_id) as batch_id

    from customer_events
    group by customer_id, event_date

)

select * from daily
