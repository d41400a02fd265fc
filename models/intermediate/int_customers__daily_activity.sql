with

events as (

    select * from {{ ref('stg_sparkify__events') }}

),

customer_events as (

    -- Logged-out and guest events belong to nobody; the label's own events
    -- (Cancel, Cancellation Confirmation) must never become activity.
    select *
    from events
    where customer_id is not null and not is_churn_event

),

daily as (

    select
        customer_id,
        event_date as activity_date,
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
        max_by(level, event_at) as level_at_day_end,
        max(event_at) as last_event_at

    from customer_events
    group by customer_id, event_date

)

select * from daily
