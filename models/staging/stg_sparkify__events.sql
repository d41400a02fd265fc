{{
    config(
        materialized='incremental',
        partition_by=['event_date'],
    )
}}

{%- set raw_user_agent = "nullif(userAgent, '')" -%}

{#- Only the event days that a new ingestion batch touched are read and
    rewritten, whole: late events for an old day rewrite that day. -#}
{%- set new_days = dates_with_new_batches(
    source('sparkify', 'events'), 'event_date', '_batch_id'
) %}

with

source as (

    select * from {{ source('sparkify', 'events') }}
    {{ where_new_days('event_date', new_days) }}

),

typed as (

    select
        ----------  ids
        sha2(
            concat_ws(
                '|', ts, sessionId, itemInSession, userId, page, auth
            ),
            256
        ) as event_id,
        nullif(trim(userId), '') as customer_id,
        sessionId as session_id,
        itemInSession as item_in_session,

        ----------  event
        timestamp_millis(ts) as event_at,
        event_date,
        page,
        auth,
        method,
        status as http_status,
        level,

        ----------  customer, as logged on this event
        firstName as first_name,
        lastName as last_name,
        gender,
        location,
        {{ state_from_location('location') }} as state,
        -- Some user agents arrive wrapped in literal double quotes.
        nullif(trim(both '"' from userAgent), '') as user_agent,
        {{ device_type_from_user_agent(raw_user_agent) }} as device_type,
        {{ os_family_from_user_agent(raw_user_agent) }} as os_family,
        {{ browser_from_user_agent(raw_user_agent) }} as browser,
        timestamp_millis(registration) as registered_at,

        ----------  song, only on NextSong
        artist as artist_name,
        song as song_title,
        length as song_length_seconds,

        ----------  flags
        page = 'NextSong' as is_song_play,
        auth = 'Logged In' as is_logged_in,
        page = 'Cancellation Confirmation' as is_cancellation,
        page in ('Submit Upgrade', 'Submit Downgrade') as is_level_change,
        -- The label's own events: never allowed to feed a feature.
        (
            page in ('Cancel', 'Cancellation Confirmation')
            or auth = 'Cancelled'
        ) as is_churn_event,

        ----------  lineage
        _source_file as source_file,
        _batch_id as batch_id,
        _ingested_at as ingested_at

    from source

)

select * from typed
